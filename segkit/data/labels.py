"""Cityscapes label tables, derived from ``cityscapesscripts.helpers.labels`` (the official definition).

Three id spaces meet here:
- labelIds (0..33) are what ``gtFine/*_labelIds.png`` holds and what the evaluation server expects;
- trainIds (0..18, 255 = ignore) are what the network predicts;
- categories (flat, construction, ...) group the 19 classes for the official category mIoU.
"""
from __future__ import annotations

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as _CS_LABELS

IGNORE_INDEX = 255
NUM_CLASSES = 19

# The 19 evaluated classes, in trainId order.
_TRAIN_LABELS = sorted((lab for lab in _CS_LABELS if 0 <= lab.trainId < IGNORE_INDEX), key=lambda lab: lab.trainId)
assert [lab.trainId for lab in _TRAIN_LABELS] == list(range(NUM_CLASSES))

CLASS_NAMES: tuple[str, ...] = tuple(lab.name for lab in _TRAIN_LABELS)

# labelId -> trainId for every uint8 value; ids not in the table (and the table's own -1/255 entries) are ignored.
LABEL_TO_TRAIN = np.full(256, IGNORE_INDEX, dtype=np.uint8)
for _lab in _CS_LABELS:
    if 0 <= _lab.id < 256 and 0 <= _lab.trainId < IGNORE_INDEX:
        LABEL_TO_TRAIN[_lab.id] = _lab.trainId

# trainId -> labelId for submissions. Each trainId has exactly one labelId among the 19 classes; the ignore
# value (and any other value) becomes labelId 0 ("unlabeled"), which the evaluator ignores.
TRAIN_TO_LABEL = np.zeros(256, dtype=np.uint8)
for _lab in _TRAIN_LABELS:
    TRAIN_TO_LABEL[_lab.trainId] = _lab.id

# The 7 official categories that contain evaluated classes (categoryId 1..7; 0 is "void").
CATEGORY_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(lab.category for lab in sorted(_TRAIN_LABELS, key=lambda lab: lab.categoryId))
)
# Category index (into CATEGORY_NAMES) of each of the 19 classes: merge a class confusion matrix with it.
CATEGORY_OF_CLASS = np.array([CATEGORY_NAMES.index(lab.category) for lab in _TRAIN_LABELS], dtype=np.int64)

# Official colours of the 19 classes (RGB), and the colour of ignored pixels.
PALETTE = np.array([lab.color for lab in _TRAIN_LABELS], dtype=np.uint8)
IGNORE_COLOR = (0, 0, 0)
_COLOR_TABLE = np.zeros((256, 3), dtype=np.uint8)  # every uint8 value -> RGB: the classes, then black
_COLOR_TABLE[:NUM_CLASSES] = PALETTE
_COLOR_TABLE[IGNORE_INDEX] = IGNORE_COLOR
_CHANNEL_TABLES = [np.ascontiguousarray(_COLOR_TABLE[:, channel]) for channel in range(3)]  # R, G, B for cv2.LUT


def _as_uint8(ids: np.ndarray, outside: int) -> np.ndarray:
    """``ids`` (any integer dtype) as uint8 table indices; values outside 0..255 are no id at all: ``outside``."""
    ids = np.asarray(ids)
    if ids.dtype == np.uint8:
        return ids
    return np.where((ids >= 0) & (ids < 256), ids, outside).astype(np.uint8)


def to_train_ids(label_ids: np.ndarray) -> np.ndarray:
    """Map a labelIds array (any integer dtype) to trainIds (uint8, 255 = ignore); unknown ids become 255."""
    return LABEL_TO_TRAIN[_as_uint8(label_ids, outside=0)]  # 0 = "unlabeled", which maps to ignore


def to_label_ids(train_ids: np.ndarray) -> np.ndarray:
    """Map a trainIds array to labelIds (uint8) for the official evaluator; ignore becomes 0 (unlabeled)."""
    return TRAIN_TO_LABEL[_as_uint8(train_ids, outside=IGNORE_INDEX)]


def colorize(train_ids: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) image of a trainIds map in the official colours; ignore (and unknown ids) is black."""
    ids = _as_uint8(train_ids, outside=IGNORE_INDEX)
    if ids.ndim != 2:
        return _COLOR_TABLE[ids]
    # OpenCV's table lookup: numpy's fancy indexing made colouring the slowest step of a video frame's overlay
    return cv2.merge([cv2.LUT(ids, table) for table in _CHANNEL_TABLES])
