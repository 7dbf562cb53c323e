"""Cityscapes label tables as arrays, for code that speaks Cityscapes ids directly (the synthetic city, the
benchmarks, the metric's default categories): views of ``ClassTable.cityscapes()`` (``segkit.data.classes``), the
one place they are derived from ``cityscapesscripts.helpers.labels`` (the official definition).

Three id spaces meet here:
- labelIds (0..33) are what ``gtFine/*_labelIds.png`` holds and what the evaluation server expects;
- trainIds (0..18, 255 = ignore) are what the network predicts;
- categories (flat, construction, ...) group the 19 classes for the official category mIoU.
"""
from __future__ import annotations

import numpy as np

from segkit.data.classes import IGNORE_INDEX, ClassTable

_TABLE = ClassTable.cityscapes()

NUM_CLASSES = _TABLE.num_classes
# The 19 evaluated classes, in trainId order.
CLASS_NAMES: tuple[str, ...] = _TABLE.names
# labelId -> trainId for every uint8 value; ids not in the table (and the table's own -1/255 entries) are ignored.
LABEL_TO_TRAIN = _TABLE.lookup()
# trainId -> labelId for submissions. Each trainId has exactly one labelId among the 19 classes; the ignore
# value (and any other value) becomes labelId 0 ("unlabeled"), which the evaluator ignores.
TRAIN_TO_LABEL = _TABLE.to_values(np.arange(256, dtype=np.uint8))
# The 7 official categories that contain evaluated classes (categoryId 1..7; 0 is "void"), and the category index
# (into CATEGORY_NAMES) of each of the 19 classes: merge a class confusion matrix with it.
CATEGORY_NAMES: tuple[str, ...] = tuple(_TABLE.categories)
CATEGORY_OF_CLASS = np.zeros(NUM_CLASSES, dtype=np.int64)
for _index, _members in enumerate(_TABLE.categories.values()):
    CATEGORY_OF_CLASS[list(_members)] = _index
# Official colours of the 19 classes (RGB); ignored pixels are black.
PALETTE = _TABLE.palette()[:NUM_CLASSES]

__all__ = ["CATEGORY_NAMES", "CATEGORY_OF_CLASS", "CLASS_NAMES", "IGNORE_INDEX", "LABEL_TO_TRAIN", "NUM_CLASSES",
           "PALETTE", "TRAIN_TO_LABEL", "colorize", "to_label_ids", "to_train_ids"]


def to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelIds array (any integer dtype) to trainIds (uint8, 255 = ignore); unknown ids become 255."""
    return _TABLE.to_classes(label_ids)


def to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a trainIds array to labelIds (uint8) for the official evaluator; ignore becomes 0 (unlabeled)."""
    return _TABLE.to_values(train_ids)


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) image of a trainIds map in the official colours; ignore (and unknown ids) is black."""
    return _TABLE.colorize(train_ids)
