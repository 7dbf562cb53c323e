"""Evaluation over a split: full and half resolution in one pass, TTA, sliding window, timing, official outputs.

One loop, read top to bottom in ``evaluate``: each image is decoded once (a DataLoader streams it, batch 1), every
requested resolution is predicted from that one tensor by a plain callable (images, resolution) -> labels -- a
model's reference prediction (``segkit.inference.model_labels``: the pixel grid, TTA, tiles) or any deploy path --
and scored against the full-size trainId label in one dataset-level confusion matrix per resolution. Nothing per
image is kept, so memory stays flat over the split. Under ``torch.distributed`` each rank evaluates every
world_size-th image and the matrices are summed.

Also here: the labelIds PNGs of the official layout (``save_prediction``). What is made of the results -- the
per-class table, the confusion plot, the eval JSON, the official evaluator's cross-check -- is
``segkit.engine.reports``.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from segkit.data.dataset import worker_init_fn
from segkit.data.classes import IGNORE_INDEX, ClassTable
from segkit.errors import UserError
from segkit.fileio import write_png
from segkit.engine.distributed import distributed
from segkit.metrics import ConfusionMatrix, Scores
from segkit.resolutions import resolution as find_resolution

Predict = Callable[[torch.Tensor, str], torch.Tensor]  # normalised images (1, 3, H, W), resolution -> labels (1, H, W)


@dataclass
class EvalResult:
    """One resolution's outcome; ``scores``/``confusion`` are None on a split without labels (test)."""

    resolution: str
    scores: Scores | None
    confusion: ConfusionMatrix | None
    ms_per_image: float  # model time: resize, forward(s), upsample, label map (not decoding or saving);
    # the first image of a (rank's) pass is left out as warm-up when there are more
    images: int

    def to_dict(self, class_names=ClassTable.cityscapes().names) -> dict:
        """The eval JSON's block for this resolution (docs/architecture.md#output-formats): percent values and
        ms per image."""
        block = self.scores.to_percent_dict(class_names) if self.scores is not None else {}
        block["ms_per_image"] = self.ms_per_image
        return block


# ---- the loop ----------------------------------------------------------------------------------------------

def evaluate(predict: Predict, dataset, resolutions=("full", "half"), device="cpu", save_dir=None,
             progress: bool = True, workers: int = 2, table: ClassTable | None = None) -> dict[str, EvalResult]:
    """Score ``predict`` on ``dataset`` at each resolution; ``{resolution: EvalResult}`` in the order given.

    ``dataset`` yields dicts like ``SegmentationDataset`` (normalised ``image``, class-index ``label``,
    ``has_label``, ``save_as``) and holds its class ``table`` (``table`` overrides it); images reach ``predict`` on
    ``device``. ``save_dir`` receives one PNG of the table's mask values per image and resolution as
    ``save_dir/<resolution>/<save_as>`` (Cityscapes: labelIds, ``CITY/CITY_SEQ_FRAME_leftImg8bit.png``).
    """
    resolutions = _check_resolutions(resolutions)
    table = table or getattr(dataset, "table", None) or ClassTable.cityscapes()
    device = torch.device(device)
    loader = DataLoader(_shard(dataset), batch_size=1, shuffle=False, num_workers=workers,
                        worker_init_fn=worker_init_fn, pin_memory=device.type == "cuda")
    matrices = {r: ConfusionMatrix(table.num_classes, IGNORE_INDEX, device, categories=table.categories)
                for r in resolutions}
    seconds = {r: 0.0 for r in resolutions}
    images, labelled = 0, 0
    show = progress and (not distributed() or torch.distributed.get_rank() == 0)  # one bar, not one per rank
    for batch in tqdm(loader, desc="eval", unit="img", disable=None if show else True):
        image = batch["image"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        has_label = bool(batch["has_label"][0])
        for resolution in resolutions:
            start = time.perf_counter()
            prediction = predict(image, resolution).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # kernels are asynchronous: wait before reading the clock
            if images > 0 or len(loader) == 1:  # the first image pays for warm-up (allocations, autotuning)
                seconds[resolution] += time.perf_counter() - start
            if has_label:
                matrices[resolution].update(label, prediction)
            if save_dir is not None:
                path = Path(save_dir) / resolution / batch["save_as"][0]
                save_prediction(path, prediction[0].cpu().numpy(), tuple(label.shape[-2:]), table)
        images += 1
        labelled += has_label

    timed = images - 1 if images > 1 else images
    return _results(matrices, *_sum_over_ranks(images, labelled, timed, seconds, device))


def _results(matrices: dict, images: int, labelled: int, timed: int, seconds: dict) -> dict[str, EvalResult]:
    """Every rank's counts summed: one ``EvalResult`` per resolution (no scores where no image had a label)."""
    results = {}
    for resolution, matrix in matrices.items():
        matrix.reduce_from_all_processes()
        has_scores = labelled > 0
        results[resolution] = EvalResult(resolution, matrix.compute() if has_scores else None,
                                         matrix if has_scores else None,
                                         1000.0 * seconds[resolution] / max(timed, 1), images)
    return results


def _check_resolutions(resolutions) -> tuple[str, ...]:
    if isinstance(resolutions, str):
        resolutions = (resolutions,)
    resolutions = tuple(dict.fromkeys(resolutions))
    if not resolutions:
        raise UserError("resolution=() names no resolution; give full, half or both.", "resolution")
    for name in resolutions:
        find_resolution(name)
    return resolutions


def _shard(dataset):
    """This rank's images: every world_size-th from its rank (no padding, unlike DistributedSampler, so no image
    is counted twice)."""
    if not distributed():
        return dataset
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return Subset(dataset, range(rank, len(dataset), world))


def _sum_over_ranks(images, labelled, timed, seconds, device):
    if not distributed():
        return images, labelled, timed, seconds
    keys = list(seconds)
    values = torch.tensor([images, labelled, timed] + [seconds[k] for k in keys], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(values)
    values = values.tolist()
    # Ranks run in parallel: the summed time over the summed images is still the per-image time of one device.
    return int(values[0]), int(values[1]), int(values[2]), dict(zip(keys, values[3:]))


# ---- outputs -----------------------------------------------------------------------------------------------

def save_prediction(path, classes: np.ndarray, expected_size: tuple[int, int], table: ClassTable | None = None) -> None:
    """Write a class-index map as a single-channel PNG of the table's mask values (Cityscapes: labelIds, the
    official evaluator's and test server's form)."""
    if tuple(classes.shape) != tuple(expected_size):
        raise UserError(f"prediction for {path} is {classes.shape[0]}x{classes.shape[1]} but its ground truth "
                        f"is {expected_size[0]}x{expected_size[1]}; the model must return logits at the input size.")
    write_png(path, (table or ClassTable.cityscapes()).to_values(classes.astype(np.uint8)))


