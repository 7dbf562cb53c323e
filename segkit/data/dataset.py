"""A split of a segmentation data set: image/mask pairs in any layout, masks read through a class table.

The layouts find the pairs (``segkit.data.cityscapes``: leftImg8bit/ + gtFine/ or gtCoarse/; ``segkit.data.folder``:
images/ beside masks/; ``segkit.data.layouts`` picks the one a config names); this module reads them the same way
for all: the photo as RGB uint8 and the mask as class indices through the data set's ``ClassTable`` (255 = ignore),
by the rules of ``segkit.data.images``, and checks every pair once (``check_pairs``) when a data set is built.

How a mask file holds classes (``Sample.label_kind``): "values" -- the table's mask values, or its RGB colours --
(the folder layout), "label_ids" -- the table's values, single-channel only -- (Cityscapes' *_labelIds.png), or
"train_ids" (Cityscapes' *_labelTrainIds.png: the 19 classes' indices themselves). Values beyond 255 (16-bit
masks) and values the table does not know are ignored; ``check_pairs`` counts them and says so once.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segkit.data.classes import IGNORE_INDEX, ClassTable
from segkit.data.images import image_size, read_image, read_mask_file
from segkit.data.normalize import image_to_tensor
from segkit.errors import UserError

MAKE_DATA_HINT = "tools/make_synthetic.py (a synthetic city in either layout)"


@dataclass(frozen=True)
class Sample:
    """One image of the data set and (unless unlabelled) its mask file."""

    name: str  # Cityscapes: CITY_SEQ_FRAME; folder: the file's stem
    city: str  # Cityscapes: the city; folder: the folder below images/{split}/ ("" at the top)
    image_path: Path
    label_path: Path | None
    label_kind: str = "values"  # "values", "label_ids" or "train_ids" (the module's docstring)
    save_as: str = ""  # the prediction's file, relative to --save-dir/<resolution>/

    @property
    def label_is_train_ids(self) -> bool:
        return self.label_kind == "train_ids"


class SegmentationDataset(Dataset):
    """Images and class-index labels of one split; items are dicts (see ``__getitem__``).

    ``transform`` is an albumentations pipeline applied to the uint8 RGB image and uint8 class mask before
    normalisation (``normalize``: "tf" or "imagenet"). An unlabelled item has an all-255 label.
    """

    def __init__(self, root: Path, split: str, samples: list[Sample], table: ClassTable, transform=None,
                 normalize: str = "tf", has_labels: bool = True):
        self.root, self.split, self.samples, self.table = root, split, samples, table
        self.transform, self.normalize, self.has_labels = transform, normalize, has_labels
        self._lookups = {"train_ids": train_id_lookup(table), "values": table.lookup(), "label_ids": table.lookup()}

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The untransformed item: RGB uint8 (H, W, 3) and class indices uint8 (H, W), or None when unlabelled."""
        sample = self.samples[index]
        image = read_image(sample.image_path)
        if sample.label_path is None:
            return image, None
        mask = read_mask_file(sample.label_path, colours_allowed=sample.label_kind == "values")
        if mask.shape[:2] != image.shape[:2]:
            raise UserError(size_mismatch(sample, mask.shape[:2], image.shape[:2]))
        return image, mask_classes(mask, self.table, self._lookups[sample.label_kind])

    def __getitem__(self, index: int) -> dict:
        """``image`` float32 (3, H, W), ``label`` int64 (H, W) class indices with 255 = ignore, ``has_label``,
        ``name``, ``city``, ``save_as``, ``image_path`` (str)."""
        sample = self.samples[index]
        image, label = self.read(index)
        has_label = label is not None
        if label is None:
            label = np.full(image.shape[:2], IGNORE_INDEX, dtype=np.uint8)
        if self.transform is not None:
            out = self.transform(image=image, mask=label)
            image, label = out["image"], out["mask"]
        return {
            "image": image_to_tensor(image, self.normalize),
            "label": torch.from_numpy(np.ascontiguousarray(label)).long(),
            "has_label": has_label,
            "name": sample.name,
            "city": sample.city,
            "save_as": sample.save_as,
            "image_path": str(sample.image_path),
        }


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: no OpenCV thread pool per worker, and a distinct augmentation stream.

    Albumentations 2.x keeps its own random generator inside the Compose; forked workers would all inherit the
    same one (and the same again every epoch), so each worker re-seeds it from torch's per-worker seed.
    """
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset
    while not isinstance(dataset, SegmentationDataset) and hasattr(dataset, "dataset"):  # Subset and friends
        dataset = dataset.dataset
    transform = getattr(dataset, "transform", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(info.seed % 2**32)


# ---- masks as classes -----------------------------------------------------------------------------------------

def train_id_lookup(table: ClassTable) -> np.ndarray:
    """(256,) uint8 for Cityscapes trainIds files: a class index is itself, anything else ignored."""
    lookup = np.full(256, IGNORE_INDEX, np.uint8)
    lookup[: table.num_classes] = np.arange(table.num_classes)
    return lookup


def mask_classes(mask: np.ndarray, table: ClassTable, lookup: np.ndarray) -> np.ndarray:
    """A mask (``read_mask_file``) as class indices uint8: values through ``lookup`` (values beyond 255 ignored),
    RGB colours through the table's colours."""
    if mask.ndim == 3:
        return table.colors_to_classes(mask)
    if mask.dtype == np.uint8:
        return lookup[mask]
    classes = lookup[np.clip(mask, 0, 255).astype(np.uint8)]
    classes[mask > 255] = IGNORE_INDEX
    return classes


def mask_values(mask: np.ndarray) -> dict[int, int]:
    """{value: pixels} of a mask (``read_mask_file``); RGB colours packed as 0xRRGGBB + 256 (beyond any value of
    an 8-bit mask, so the two never meet)."""
    if mask.ndim == 3:
        packed = (mask[..., 0].astype(np.int64) << 16) | (mask[..., 1].astype(np.int64) << 8) | mask[..., 2]
        values, counts = np.unique(packed + 256, return_counts=True)
    elif mask.dtype == np.uint8:
        counts = np.bincount(mask.ravel(), minlength=256)
        values = np.flatnonzero(counts)
        counts = counts[values]
    else:
        values, counts = np.unique(mask, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts)}


def known_values(table: ClassTable, kind: str) -> Callable[[int], bool]:
    """Whether a value of ``mask_values`` means something in a mask of ``kind``: a class or an ignored value."""
    if kind == "train_ids":
        return lambda value: value < table.num_classes or value == IGNORE_INDEX
    known = table.known()
    colours = {((r << 16) | (g << 8) | b) + 256 for r, g, b in table.colors} if kind == "values" else set()
    return lambda value: (value < 256 and bool(known[value])) or value in colours


# ---- checks when a data set is built ----------------------------------------------------------------------------

def check_pairs(samples: list[Sample], table: ClassTable, unknown: str = "ignore", report=None) -> dict:
    """Read every mask once (in threads: decoding releases the GIL): its size against its photo's (upright), and
    the values the table does not know, counted per file -- {mask path: {value: pixels}} -- and said in one line
    (or refused: ``unknown="error"``). Returns {mask path: {value: pixels}} of every mask."""
    labelled = [s for s in samples if s.label_path is not None]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        found = dict(zip((s.label_path for s in labelled), pool.map(_check_pair, labelled)))
    unknown_found = {}
    for sample in labelled:
        is_known = known_values(table, sample.label_kind)
        values = {v: n for v, n in found[sample.label_path].items() if not is_known(v)}
        if values:
            unknown_found[sample.label_path] = values
    if unknown_found:
        first, values = next(iter(unknown_found.items()))
        shown = ", ".join(f"{_value(v)}: {n} px" for v, n in sorted(values.items())[:4])
        pixels = sum(sum(v.values()) for v in unknown_found.values())
        message = (f"{len(unknown_found)} of {len(labelled)} masks hold values the class table {table.source or ''} "
                   f"does not know ({pixels} pixels; e.g. {first}: {shown})")
        if unknown == "error":
            raise UserError(f"{message}; add them to the table (or to its ignore list), or set "
                            "data.unknown_values=ignore.", "data.unknown_values")
        (report or _warn)(f"warning: {message}; they are ignored (data.unknown_values=error refuses them).")
    return found


def _check_pair(sample: Sample) -> dict[int, int]:
    mask = read_mask_file(sample.label_path, colours_allowed=sample.label_kind == "values")
    photo = image_size(sample.image_path)
    if mask.shape[:2] != photo:
        raise UserError(size_mismatch(sample, mask.shape[:2], photo))
    return mask_values(mask)


def _value(value: int) -> str:
    return str(value) if value < 256 else f"colour #{value - 256:06x}"


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def size_mismatch(sample: Sample, label_hw, image_hw) -> str:
    return (f"mask {sample.label_path} is {label_hw[0]}x{label_hw[1]} but its image {sample.image_path} is "
            f"{image_hw[0]}x{image_hw[1]} (upright, as its EXIF orientation shows it); make the mask at the image's "
            "size.")
