"""A run's log: ``log.jsonl``, TensorBoard event files when tensorboard is installed, and ``curves.png``. Written
by rank 0 only.

``log.jsonl`` holds one JSON object per line, each with its ``iteration``: the setup a (re)started process uses
(``setup``: device, AMP dtype, memory format, loader workers), training windows (``loss``, ``lr``, ``it_per_s``,
``data_time``: seconds per iteration spent waiting for the batch), validations (``val_miou``) and, when a process
finishes, ``peak_memory``: what the function ``peak_memory`` returned on each rank, in rank order.

TensorBoard (``work_dir/tensorboard/``; ``tensorboard --logdir runs`` shows every run): the windows as
``train/loss``, ``train/lr``, ``train/it_per_s``, ``train/data_time``; each validation as ``val/miou`` (the mean
over the resolutions, what ``best.pt`` keeps), ``val/miou_<resolution>``, ``val/iou_<resolution>/<class>`` (percent)
and pictures ``val/overlay_<resolution>/<k>`` (``side_by_side``). tensorboard is imported here, lazily, when a run
starts: inference never imports it.
"""
from __future__ import annotations

import json
import math
import re
import resource
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from segkit.data.classes import ClassTable

TENSORBOARD_DIR = "tensorboard"  # the event files' folder in a run's work_dir
EVENT_FILES = "events.out.tfevents.*"


class RunLog:
    """Appends records to ``work_dir/log.jsonl`` and TensorBoard; averages the training loss and the data time over
    a window of ``every`` steps. ``start``: the iteration a resumed run continues from (0 for a new run)."""

    def __init__(self, work_dir: Path, enabled: bool, every: int, start: int = 0):
        self.enabled, self.every = enabled, every
        self.path = Path(work_dir) / "log.jsonl"
        self.tensorboard = tensorboard_writer(Path(work_dir) / TENSORBOARD_DIR, start) if enabled else None
        self.window_loss, self.window_data, self.window_steps = 0.0, 0.0, 0
        self.window_start = time.perf_counter()

    def step(self, iteration: int, loss: float, lr: float, last: bool, data_time: float = 0.0) -> dict | None:
        """Count one training step (``data_time``: seconds it waited for its batch); every ``every`` steps (and at
        the last) write and return the window's record: mean loss, the learning rate the step used, iterations per
        second, mean data time."""
        self.window_loss += loss
        self.window_data += data_time
        self.window_steps += 1
        if iteration % self.every and not last:
            return None
        elapsed = time.perf_counter() - self.window_start
        record = {"iteration": iteration, "loss": self.window_loss / self.window_steps, "lr": lr,
                  "it_per_s": self.window_steps / max(elapsed, 1e-9), "data_time": self.window_data / self.window_steps}
        self.write(record)
        self.scalars(iteration, {f"train/{key}": record[key] for key in ("loss", "lr", "it_per_s", "data_time")})
        self.window_loss, self.window_data, self.window_steps = 0.0, 0.0, 0
        self.window_start = time.perf_counter()
        return record

    def write(self, record: dict) -> None:
        """One record in ``log.jsonl``."""
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def scalars(self, iteration: int, values: dict[str, float]) -> None:
        """TensorBoard scalars at ``iteration`` (NaN left out: a class absent from the split has no IoU)."""
        if self.tensorboard is None:
            return
        for tag, value in values.items():
            if not math.isnan(value):
                self.tensorboard.add_scalar(tag, value, iteration)

    def pictures(self, iteration: int, pictures: dict[str, np.ndarray]) -> None:
        """TensorBoard images (RGB uint8, H x W x 3) at ``iteration``; written out now, with the scalars before
        them, so that a validation shows up at once rather than after the writer's two minutes."""
        if self.tensorboard is None:
            return
        for tag, picture in pictures.items():
            self.tensorboard.add_image(tag, picture, iteration, dataformats="HWC")
        self.tensorboard.flush()

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def tensorboard_writer(log_dir: Path, start: int = 0):
    """A ``SummaryWriter`` in ``log_dir``, or None (said once) where tensorboard is not installed. A resumed run
    (``start`` > 0) redoes the iterations after its checkpoint: ``purge_step`` tells TensorBoard to drop what the
    interrupted process wrote after ``start``, so the stream continues without doubled steps."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("note: TensorBoard event files need the tensorboard package (pip install tensorboard); training goes "
              "on without them (log.jsonl and curves.png as always).", file=sys.stderr)
        return None
    return SummaryWriter(str(log_dir), purge_step=start + 1 if start else None)


def remove_events(work_dir: Path) -> None:
    """A new run in an old run's folder starts a new event stream, as it starts a new ``log.jsonl``."""
    for path in (Path(work_dir) / TENSORBOARD_DIR).glob(EVENT_FILES):
        path.unlink()


def validation_scalars(results: dict, names) -> dict[str, float]:
    """A validation's TensorBoard scalars, percent: ``val/miou`` (the mean over the resolutions),
    ``val/miou_<resolution>`` and ``val/iou_<resolution>/<class>`` (``results``: the evaluator's, with scores)."""
    values = {"val/miou": float(np.mean([100 * result.scores.miou for result in results.values()]))}
    for resolution, result in results.items():
        values[f"val/miou_{resolution}"] = 100 * result.scores.miou
        for name, iou in zip(names, result.scores.iou, strict=True):
            values[f"val/iou_{resolution}/{tag_name(name)}"] = 100 * iou
    return values


def tag_name(name: str) -> str:
    """A class name as one level of a tag: no slash (it would nest), no spaces (traffic light -> traffic_light)."""
    return re.sub(r"[^\w.-]+", "_", name)


def side_by_side(photo: np.ndarray, prediction: np.ndarray, truth: np.ndarray, table: ClassTable,
                 width: int = 1024) -> np.ndarray:
    """The photo with the predicted colours | the photo with the ground truth's (ignored pixels darkened), RGB
    uint8, shrunk to ``width`` pixels in all (full-size Cityscapes pairs would make large event files).
    (``segkit.deploy.photos.overlay`` blends the same way; the engine does not import the deploy layer.)"""
    photo = np.asarray(photo, np.uint8)
    pair = np.concatenate([cv2.addWeighted(table.colorize(labels), 0.5, photo, 0.5, 0.0)
                           for labels in (prediction, truth)], axis=1)
    if pair.shape[1] > width:
        pair = cv2.resize(pair, (width, max(1, round(pair.shape[0] * width / pair.shape[1]))),
                          interpolation=cv2.INTER_AREA)
    return pair


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
