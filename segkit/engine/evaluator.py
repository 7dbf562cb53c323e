"""Evaluation over a split: full and half resolution in one pass, TTA, sliding window, timing, official outputs.

One loop, read top to bottom in ``evaluate``: each image is decoded once (a DataLoader streams it, batch 1), every
requested resolution is predicted from that one tensor by a plain callable (images, resolution) -> labels -- a
model's reference prediction (``segkit.inference.model_labels``: the pixel grid, TTA, tiles) or any deploy path --
and scored against the full-size trainId label in one dataset-level confusion matrix per resolution. Each image's
own matrix is what is added to it, and its IoUs are kept (one row of floats per image and resolution:
``ImageScores``), with the predictions of the ``worst`` lowest-scoring images so far (``WorstImages``), so memory
stays bounded over the split. Under ``torch.distributed`` each rank evaluates every world_size-th image, the
matrices are summed and the per-image rows gathered.

Also here: the labelIds PNGs of the official layout (``save_prediction``). What is made of the results -- the
per-class table, the confusion plot, the eval JSON, the official evaluator's cross-check -- is
``segkit.engine.reports``.
"""
from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
class WorstImage:
    """A low-scoring image and the prediction that was scored (class indices uint8 at the ground truth's size)."""

    index: int  # position in the data set
    name: str
    miou: float
    prediction: np.ndarray


class WorstImages:
    """The ``keep`` images of lowest mIoU seen so far (ties: the earlier image), with their predictions.

    Kept while evaluating rather than predicted again at the end: the pictures then show exactly the prediction
    that was scored (a second pass could differ: nondeterministic GPU kernels, another backend's state) and no
    image is decoded or predicted twice; memory is bounded by ``keep`` label maps per resolution."""

    def __init__(self, keep: int):
        self.keep, self.items = keep, []  # sorted by (miou, index)

    def wants(self, miou: float, index: int) -> bool:
        """Whether an image of this score would be kept (an image without labelled pixels, NaN, never is)."""
        if self.keep <= 0 or math.isnan(miou):
            return False
        return len(self.items) < self.keep or (miou, index) < (self.items[-1].miou, self.items[-1].index)

    def add(self, item: WorstImage) -> None:
        keys = [(i.miou, i.index) for i in self.items]
        self.items.insert(bisect.bisect(keys, (item.miou, item.index)), item)
        del self.items[self.keep:]


@dataclass
class ImageScores:
    """Each labelled image's own scores at one resolution, in data set order: IoU per class from the image's own
    confusion matrix, NaN where the class is neither in its ground truth nor predicted on its labelled pixels;
    its mIoU is the mean over the others (NaN for an image without labelled pixels)."""

    index: list[int] = field(default_factory=list)  # positions in the data set
    names: list[str] = field(default_factory=list)  # CITY/NAME (Cityscapes) or SUB/NAME (folder layout)
    iou: list[np.ndarray] = field(default_factory=list)  # per image (classes,) float64 fractions: compact rows
    miou: list[float] = field(default_factory=list)
    worst: list[WorstImage] = field(default_factory=list)  # lowest mIoU first (``evaluate(worst=N)``)

    def add(self, index: int, name: str, scores: Scores) -> None:
        self.index.append(index)
        self.names.append(name)
        self.iou.append(np.asarray(scores.iou, np.float64))
        self.miou.append(scores.miou)


@dataclass
class EvalResult:
    """One resolution's outcome; ``scores``/``confusion``/``per_image`` are None on a split without labels (test)."""

    resolution: str
    scores: Scores | None
    confusion: ConfusionMatrix | None
    ms_per_image: float  # model time: resize, forward(s), upsample, label map (not decoding or saving);
    # the first image of a (rank's) pass is left out as warm-up when there are more
    images: int
    per_image: ImageScores | None = None

    def to_dict(self, class_names=ClassTable.cityscapes().names) -> dict:
        """The eval JSON's block for this resolution (docs/architecture.md#output-formats): percent values and
        ms per image."""
        block = self.scores.to_percent_dict(class_names) if self.scores is not None else {}
        block["ms_per_image"] = self.ms_per_image
        return block


# ---- the loop ----------------------------------------------------------------------------------------------

def evaluate(predict: Predict, dataset, resolutions=("full", "half"), device="cpu", save_dir=None,
             progress: bool = True, workers: int = 2, table: ClassTable | None = None,
             worst: int = 0) -> dict[str, EvalResult]:
    """Score ``predict`` on ``dataset`` at each resolution; ``{resolution: EvalResult}`` in the order given.

    ``dataset`` yields dicts like ``SegmentationDataset`` (normalised ``image``, class-index ``label``,
    ``has_label``, ``name``, ``city``, ``save_as``) and holds its class ``table`` (``table`` overrides it); images
    reach ``predict`` on ``device``. ``save_dir`` receives one PNG of the table's mask values per image and
    resolution as ``save_dir/<resolution>/<save_as>`` (Cityscapes: labelIds, ``CITY/CITY_SEQ_FRAME_leftImg8bit.png``).
    Each result's ``per_image`` holds every labelled image's own IoUs, and the predictions of the ``worst`` images
    of lowest mIoU at that resolution.
    """
    resolutions = _check_resolutions(resolutions)
    table = table or getattr(dataset, "table", None) or ClassTable.cityscapes()
    device = torch.device(device)
    loader = DataLoader(_shard(dataset), batch_size=1, shuffle=False, num_workers=workers,
                        worker_init_fn=worker_init_fn, pin_memory=device.type == "cuda")
    matrices = {r: ConfusionMatrix(table.num_classes, IGNORE_INDEX, device, categories=table.categories)
                for r in resolutions}
    per_image = {r: ImageScores() for r in resolutions}
    lowest = {r: WorstImages(worst) for r in resolutions}
    seconds = {r: 0.0 for r in resolutions}
    rank, world = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed() else (0, 1)
    images, labelled = 0, 0
    show = progress and rank == 0  # one bar, not one per rank
    for batch in tqdm(loader, desc="eval", unit="img", disable=None if show else True):
        image = batch["image"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        has_label = bool(batch["has_label"][0])
        index = rank + images * world  # the data set's position of this rank's image (``_shard``)
        name = "/".join(part for part in (batch.get("city", [""])[0], batch.get("name", [f"#{index}"])[0]) if part)
        for resolution in resolutions:
            start = time.perf_counter()
            prediction = predict(image, resolution).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # kernels are asynchronous: wait before reading the clock
            if images > 0 or len(loader) == 1:  # the first image pays for warm-up (allocations, autotuning)
                seconds[resolution] += time.perf_counter() - start
            if has_label:
                # The image's own matrix, added to the split's: its scores cost one small matrix, no second count.
                own = ConfusionMatrix(table.num_classes, IGNORE_INDEX, device, categories={})
                own.update(label, prediction)
                matrices[resolution].mat += own.mat
                scores = own.compute()
                per_image[resolution].add(index, name, scores)
                if lowest[resolution].wants(scores.miou, index):
                    lowest[resolution].add(WorstImage(index, name, scores.miou,
                                                      prediction[0].to("cpu", torch.uint8).numpy()))
            if save_dir is not None:
                path = Path(save_dir) / resolution / batch["save_as"][0]
                save_prediction(path, prediction[0].cpu().numpy(), tuple(label.shape[-2:]), table)
        images += 1
        labelled += has_label

    timed = images - 1 if images > 1 else images
    for resolution in resolutions:
        per_image[resolution].worst = lowest[resolution].items
    return _results(matrices, _gather_images(per_image, worst), *_sum_over_ranks(images, labelled, timed, seconds,
                                                                                   device))


def _results(matrices: dict, per_image: dict, images: int, labelled: int, timed: int,
             seconds: dict) -> dict[str, EvalResult]:
    """Every rank's counts summed: one ``EvalResult`` per resolution (no scores where no image had a label)."""
    results = {}
    for resolution, matrix in matrices.items():
        matrix.reduce_from_all_processes()
        has_scores = labelled > 0
        results[resolution] = EvalResult(resolution, matrix.compute() if has_scores else None,
                                         matrix if has_scores else None,
                                         1000.0 * seconds[resolution] / max(timed, 1), images,
                                         per_image[resolution] if has_scores else None)
    return results


def _gather_images(per_image: dict[str, ImageScores], worst: int) -> dict[str, ImageScores]:
    """Every rank's per-image rows in data set order, and the ``worst`` lowest of all ranks' kept images."""
    if not distributed():
        return per_image
    parts: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(parts, per_image)
    merged = {}
    for resolution in per_image:
        rows = sorted((row for part in parts for row in zip(
            part[resolution].index, part[resolution].names, part[resolution].iou, part[resolution].miou)),
            key=lambda row: row[0])
        lowest = WorstImages(worst)
        for item in sorted((i for part in parts for i in part[resolution].worst), key=lambda i: (i.miou, i.index)):
            if lowest.wants(item.miou, item.index):
                lowest.add(item)
        merged[resolution] = ImageScores(*(list(column) for column in zip(*rows)), worst=lowest.items) if rows \
            else ImageScores()
    return merged


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


