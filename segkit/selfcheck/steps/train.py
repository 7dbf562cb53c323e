"""train: tools/train.py on the plan's config, sized for a steady-state rate; what the trainer used (AMP dtype,
memory format, loader workers) and its peak memory come from its own log.jsonl."""
from __future__ import annotations

import shlex
import time

from segkit.selfcheck.context import Check, train_command
from segkit.selfcheck.readings import steady_rate, trained_run
from segkit.selfcheck.report import Step, memory_text, miou_text, precision_text, size_text


def run(check: Check, step: Step, deadline: float) -> None:
    p, work_dir = check.plan, check.work / "train"
    cmd = train_command(check, p.train, work_dir)
    step.commands.append(shlex.join(cmd))
    start_s = time.perf_counter()
    code = check.processes.run(cmd, "train.log", deadline, "tools/train.py")
    wall = time.perf_counter() - start_s
    info = trained_run(work_dir)
    info.update(info.pop("peak_memory")[0], exit=code)
    rate = steady_rate(work_dir / "log.jsonl", info["batch_size"], p.warm_windows)
    check.checkpoint = next((work_dir / n for n in ("best.pt", "last.pt") if (work_dir / n).is_file()), None)
    check.single_rate = rate["images_per_s"]
    step.metrics = {**info, **rate, "iterations": p.train.iterations, "wall_s": wall,
                    "images_per_s_overall": p.train.iterations * info["batch_size"] / wall}
    step.summary = (f"{info['config']} {size_text(info['crop'])} batch {info['batch_size']} "
                    f"{precision_text(info)}, {info['workers']} loader workers: "
                    f"{rate['images_per_s']:.1f} img/s steady ({rate['it_per_s']:.2f} it/s over "
                    f"{rate['steady_steps']} steps; first {rate['warm_steps']} steps "
                    f"{rate['warm_images_per_s']:.1f} img/s), "
                    f"{memory_text(info)}, loss {rate['first_loss']:.2f}->{rate['last_loss']:.2f}, "
                    f"val mIoU {miou_text(info['best_miou'])} (half)")
