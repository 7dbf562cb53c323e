"""A run's log: ``log.jsonl``, TensorBoard when it is installed, and ``curves.png``. Written by rank 0 only.

``log.jsonl`` holds one JSON object per line, each with its ``iteration``: the setup a (re)started process uses
(``setup``: device, AMP dtype, memory format, loader workers), training windows (``loss``, ``lr``, ``it_per_s``),
validations (``val_miou``) and, when a process finishes, ``peak_memory``: what the function ``peak_memory``
returned on each rank, in rank order."""
from __future__ import annotations

import contextlib
import json
import resource
import time
from pathlib import Path

import torch


class RunLog:
    """Appends records to ``work_dir/log.jsonl`` (and TensorBoard); averages the training loss over a window of
    ``every`` steps."""

    def __init__(self, work_dir: Path, enabled: bool, every: int):
        self.enabled, self.every = enabled, every
        self.path = Path(work_dir) / "log.jsonl"
        self.tensorboard = None
        self.window_loss, self.window_steps, self.window_start = 0.0, 0, time.perf_counter()
        if enabled:
            with contextlib.suppress(ImportError):  # optional dependency
                from torch.utils.tensorboard import SummaryWriter

                self.tensorboard = SummaryWriter(str(Path(work_dir) / "tensorboard"))

    def step(self, iteration: int, loss: float, lr: float, last: bool) -> dict | None:
        """Count one training step; every ``every`` steps (and at the last) write and return the window's record:
        mean loss, the learning rate the step used, iterations per second."""
        self.window_loss += loss
        self.window_steps += 1
        if iteration % self.every and not last:
            return None
        elapsed = time.perf_counter() - self.window_start
        record = {"iteration": iteration, "loss": self.window_loss / self.window_steps, "lr": lr,
                  "it_per_s": self.window_steps / max(elapsed, 1e-9)}
        self.write(record)
        self.window_loss, self.window_steps, self.window_start = 0.0, 0, time.perf_counter()
        return record

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tensorboard is not None:
            for key, value in record.items():
                if key != "iteration" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(key, value, record["iteration"])

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


GIB = 1024 ** 3


def peak_memory(device: torch.device) -> dict:
    """This process's peak memory so far, in GiB: host RSS, and on CUDA the peak the caching allocator handed out
    (``peak_allocated_gib``) and held (``peak_reserved_gib``); None off CUDA."""
    out = {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,  # Linux: KiB
           "peak_allocated_gib": None, "peak_reserved_gib": None}
    if device.type == "cuda":
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated(device) / GIB
        out["peak_reserved_gib"] = torch.cuda.max_memory_reserved(device) / GIB
    return out


def read_log(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def trim_log(path: Path, iteration: int) -> None:
    """Drop the records after ``iteration``: a resumed run is about to redo them."""
    kept = [record for record in read_log(path) if record["iteration"] <= iteration]
    Path(path).write_text("".join(json.dumps(record) + "\n" for record in kept))


def plot_curves(log_path: Path, out_path: Path) -> None:
    """Loss, learning rate and validation mIoU against iterations, as one PNG."""
    import matplotlib  # only when plotting

    matplotlib.use("Agg")  # files only: no display needed, safe on servers and in workers
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    steps = [r for r in records if "loss" in r]
    evals = [r for r in records if "val_miou" in r]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot([r["iteration"] for r in steps], [r["loss"] for r in steps])
    axes[0].set(title="training loss", xlabel="iteration", yscale="log")
    axes[1].plot([r["iteration"] for r in steps], [r["lr"] for r in steps])
    axes[1].set(title="learning rate", xlabel="iteration")
    axes[2].plot([r["iteration"] for r in evals], [r["val_miou"] for r in evals], marker="o")
    axes[2].set(title="validation mIoU (%)", xlabel="iteration", ylim=(0, 100))
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)
