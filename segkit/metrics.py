"""Dataset-level confusion matrix -> per-class IoU, mIoU, category mIoU and pixel accuracy.

Scores come from ONE matrix accumulated over the whole split, never from per-image averages, and classes absent
from both ground truth and prediction are NaN and left out of the mean -- exactly what cityscapesscripts'
``evalPixelLevelSemanticLabeling`` reports (smp's ``iou_score`` counts such classes as 1; docs/paper.md#known-traps).

Why our trainId matrix equals the official labelId one: the official IoU of a class ignores every pixel whose
ground truth is an ``ignoreInEval`` label (its row is skipped), and those are exactly the labels with trainId
255. A *prediction* of a void label on a valid pixel is, officially, a miss for the true class but a hit or false
positive for no class; we keep such predictions (any value outside ``0..C-1``) in an extra last column so they
count the same way instead of vanishing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from segkit.data.labels import CATEGORY_NAMES, CATEGORY_OF_CLASS, CLASS_NAMES

# The 19 Cityscapes evaluation classes by trainId, and the official categories (all but "void") they fall in.
CITYSCAPES_CLASSES = CLASS_NAMES
CITYSCAPES_CATEGORIES = {name: [int(i) for i in (CATEGORY_OF_CLASS == index).nonzero()[0]]
                         for index, name in enumerate(CATEGORY_NAMES)}


@dataclass
class Scores:
    """Fractions in [0, 1]; NaN where a class (or category) has neither ground truth nor prediction."""

    iou: list[float]  # per class, index = trainId
    miou: float  # mean over classes that are not NaN
    category_iou: dict[str, float]
    category_miou: float
    pixel_acc: float  # correct / evaluated pixels (ignore-labelled pixels excluded)

    def to_percent_dict(self, class_names=CITYSCAPES_CLASSES) -> dict:
        """The eval JSON's per-resolution block (docs/architecture.md#output-formats): percent, classes by name,
        NaN as None (valid JSON); the category keys only where there are categories."""

        def pct(value):
            return None if math.isnan(value) else 100.0 * value

        block = {
            "miou": pct(self.miou),
            "category_miou": pct(self.category_miou),
            "pixel_acc": pct(self.pixel_acc),
            "per_class_iou": {name: pct(v) for name, v in zip(class_names, self.iou, strict=True)},
            "per_category_iou": {name: pct(v) for name, v in self.category_iou.items()},
        }
        if not self.category_iou:  # a class table without categories: no category mIoU to report
            del block["category_miou"], block["per_category_iou"]
        return block


class ConfusionMatrix:
    """Rows: ground truth 0..C-1; columns: prediction 0..C-1 plus one last column for "predicted anything else"."""

    def __init__(self, num_classes=19, ignore_index=255, device=None, categories=None):
        if 0 <= ignore_index < num_classes:
            raise ValueError(f"ignore_index={ignore_index} must lie outside the classes 0..{num_classes - 1}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # {category name: [class indices]}; the Cityscapes categories by default when the classes are Cityscapes'.
        if categories is None:
            categories = CITYSCAPES_CATEGORIES if num_classes == len(CITYSCAPES_CLASSES) else {}
        self.categories = {name: list(ids) for name, ids in categories.items()}
        self.mat = torch.zeros(num_classes, num_classes + 1, dtype=torch.int64, device=device)

    def update(self, target: torch.Tensor, prediction: torch.Tensor) -> None:
        """Add a batch of label maps (any equal shapes, integer trainIds)."""
        if target.shape != prediction.shape:
            raise ValueError(f"target shape {tuple(target.shape)} != prediction shape {tuple(prediction.shape)}")
        n = self.num_classes
        target = target.reshape(-1).to(self.mat.device, torch.int64)
        prediction = prediction.reshape(-1).to(self.mat.device, torch.int64)
        valid = (target >= 0) & (target < n)
        # A target that is neither a class nor ignore_index is almost always labelIds passed for trainIds.
        if ((~valid) & (target != self.ignore_index)).any():
            bad = target[(~valid) & (target != self.ignore_index)][0].item()
            raise ValueError(f"target holds {bad}, neither a class 0..{n - 1} nor ignore_index {self.ignore_index}")
        target, prediction = target[valid], prediction[valid]
        prediction = torch.where((prediction >= 0) & (prediction < n), prediction, n)
        self.mat += torch.bincount(target * (n + 1) + prediction, minlength=n * (n + 1)).reshape(n, n + 1)

    def reduce_from_all_processes(self) -> None:
        """Sum the matrices of all DDP ranks (in place); a no-op without torch.distributed."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(self.mat)

    def compute(self) -> Scores:
        mat = self.mat.to("cpu", torch.float64)  # counts stay exact in float64 below 2**53 pixels
        iou = _iou(mat)
        category_iou = _iou(self._category_matrix(mat))
        correct, total = mat.diagonal().sum(), mat.sum()
        return Scores(
            iou=iou.tolist(),
            miou=_nanmean(iou),
            category_iou=dict(zip(self.categories, category_iou.tolist())),
            category_miou=_nanmean(category_iou),
            pixel_acc=(correct / total).item() if total > 0 else math.nan,
        )

    def _category_matrix(self, mat: torch.Tensor) -> torch.Tensor:
        """Sum the class matrix's rows and columns by category; the last column still means "anything else"."""
        n, k = self.num_classes, len(self.categories)
        select = torch.zeros(n + 1, k + 1, dtype=mat.dtype)  # class column -> category column
        select[:, k] = 1.0
        for j, ids in enumerate(self.categories.values()):
            select[ids, k] = 0.0
            select[ids, j] = 1.0
        return select[:n, :k].T @ mat @ select

    def to_percent_dict(self, class_names=CITYSCAPES_CLASSES) -> dict:
        return self.compute().to_percent_dict(class_names)


def _iou(mat: torch.Tensor) -> torch.Tensor:
    """IoU per row of a (K, K+1) matrix: hits / (ground truth + predicted - hits); 0/0 gives NaN."""
    k = mat.shape[0]
    hits = mat.diagonal()
    union = mat.sum(1) + mat[:, :k].sum(0) - hits
    return hits / union


def _nanmean(values: torch.Tensor) -> float:
    present = values[~values.isnan()]
    return present.mean().item() if present.numel() else math.nan
