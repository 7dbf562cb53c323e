"""What the self-check's runs left behind, read by the parent: the trainer's ``log.jsonl`` and ``config.json``
(what it used and measured) and checkpoints (read on the CPU)."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from segkit.checkpoint import load_checkpoint
from segkit.engine.runlog import read_log
from segkit.selfcheck.processes import StepFailed


def steady_rate(log_path: Path, images_per_step: int, warm_windows: int) -> dict:
    """Images/s from log.jsonl's it_per_s windows, the first ``warm_windows`` (start-up) left out."""
    windows, previous = [], 0
    for record in read_log(log_path):
        if "it_per_s" in record:
            steps = record["iteration"] - previous
            windows.append((steps, steps / record["it_per_s"], record["loss"]))
            previous = record["iteration"]
    if not windows:
        raise StepFailed(f"{log_path} has no it_per_s records")
    warm = min(warm_windows, len(windows) - 1)
    steady = windows[warm:]
    steps, seconds = sum(w[0] for w in steady), sum(w[1] for w in steady)
    warm_steps, warm_seconds = sum(w[0] for w in windows[:warm]), sum(w[1] for w in windows[:warm])
    return {"images_per_s": images_per_step * steps / seconds, "it_per_s": steps / seconds, "steady_steps": steps,
            "warm_steps": warm_steps,
            "warm_images_per_s": images_per_step * warm_steps / warm_seconds if warm_steps else float("nan"),
            "first_loss": windows[0][2], "last_loss": windows[-1][2]}


def trained_run(work_dir: Path) -> dict:
    """What the trainer recorded of the run in ``work_dir``: its config (``config.json``), the setup its last start
    used, the best validation mIoU, and ``peak_memory``, one dict per rank (``log.jsonl``)."""
    config_path, records = work_dir / "config.json", read_log(work_dir / "log.jsonl")
    setups = [r["setup"] for r in records if "setup" in r]
    peaks = [r["peak_memory"] for r in records if "peak_memory" in r]
    if not config_path.is_file() or not setups or not peaks:
        raise StepFailed(f"the trainer left no config.json, or no setup and peak memory in log.jsonl, in {work_dir}")
    config, setup = json.loads(config_path.read_text()), setups[-1]
    return {"config": config["name"], "crop": list(config["data"]["crop_size"]),
            "batch_size": config["train"]["batch_size"], "device": setup["device"], "gpu": setup["gpu"],
            "world_size": setup["world_size"], "amp": setup["amp"], "channels_last": setup["channels_last"],
            "workers": setup["workers"],
            "best_miou": max((r["val_miou"] for r in records if "val_miou" in r), default=None),
            "peak_memory": peaks[-1]}


def checkpoint_iteration(path: Path) -> int:
    return int(load_checkpoint(path)["iteration"])


def compare_weights(a: Path, b: Path) -> dict:
    """How far two checkpoints' weights lie apart: identical, the largest difference, how many tensors differ."""
    sa, sb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    if sa.keys() != sb.keys():
        raise StepFailed("the two runs' checkpoints hold different tensors")
    max_diff, differing = 0.0, 0
    for key in sa:
        x, y = sa[key], sb[key]
        if not torch.equal(x, y):
            differing += 1
            if x.is_floating_point():
                max_diff = max(max_diff, (x.double() - y.double()).abs().max().item())
            else:
                max_diff = max(max_diff, float((x.long() - y.long()).abs().max().item()))
    return {"identical": differing == 0, "max_abs_diff": max_diff, "tensors_differing": differing,
            "tensors": len(sa)}
