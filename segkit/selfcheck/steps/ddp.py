"""ddp: torchrun --nproc_per_node 2 tools/train.py, its steady images/s and scaling against the train step, and
each rank's peak memory as the trainer recorded it in log.jsonl."""
from __future__ import annotations

import shlex
import sys
import time

from segkit.selfcheck.context import Check, train_command
from segkit.selfcheck.readings import steady_rate, trained_run
from segkit.selfcheck.report import Step, memory_text

LAUNCHER = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def run(check: Check, step: Step, deadline: float) -> None:
    work_dir = check.work / "ddp"
    cmd = train_command(check, check.plan.ddp, work_dir, launcher=LAUNCHER)
    step.commands.append(shlex.join(cmd))
    start_s = time.perf_counter()
    check.processes.run(cmd, "ddp.log", deadline, "torchrun tools/train.py")
    wall = time.perf_counter() - start_s
    info = trained_run(work_dir)
    ranks, batch = info["peak_memory"], info["batch_size"]
    rate = steady_rate(work_dir / "log.jsonl", batch * info["world_size"], check.plan.warm_windows)
    step.metrics = {**rate, "wall_s": wall, "world_size": info["world_size"], "batch_per_gpu": batch,
                    "peak_allocated_gib": [r["peak_allocated_gib"] for r in ranks],
                    "peak_reserved_gib": [r["peak_reserved_gib"] for r in ranks]}
    scaling = ""
    if check.single_rate:
        step.metrics["scaling_vs_1gpu"] = rate["images_per_s"] / check.single_rate
        scaling = (f", {step.metrics['scaling_vs_1gpu']:.2f}x one "
                   f"{'GPU' if check.options.device == 'cuda' else 'process'}")
    step.summary = (f"{info['world_size']} ranks x batch {batch}: {rate['images_per_s']:.1f} img/s steady"
                    f"{scaling}; per rank: " + "; ".join(memory_text(r) for r in ranks))
