"""Cityscapes over the official layout::

    ROOT/leftImg8bit/{split}/CITY/CITY_SEQ_FRAME_leftImg8bit.png
    ROOT/gtFine/{split}/CITY/CITY_SEQ_FRAME_gtFine_labelIds.png   (or *_gtFine_labelTrainIds.png, preferred)
    ROOT/gtCoarse/{split}/CITY/CITY_SEQ_FRAME_gtCoarse_labelIds.png   (where a split has no gtFine: train_extra)

A split name may join splits with "+" ("train+train_extra": the 2975 fine and 19998 coarse training images, shuffled
together). Labels are mapped to the class table's indices on the fly (Cityscapes': labelIds -> trainIds).
Existence, pairing, PNG headers (size, bit depth) and PNG completeness are checked when the dataset is built, so
mistakes surface before training starts.

Input rules (documented for users): an RGBA image loses its alpha channel, a grayscale image is repeated to
three channels, a 16-bit image is an error (segkit trains on the 8-bit leftImg8bit images); a label must be a
single-channel (or palette) PNG, and values outside the class table become 255 (ignored).
"""
from __future__ import annotations

import os
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import DataLoader

from segkit.config import DataConfig
from segkit.data.classes import ClassTable
from segkit.data.dataset import (MAKE_DATA_HINT, Sample, SegmentationDataset, build_dataset, colour_label,
                                 not_8bit, read_image, resolve_data_root, size_mismatch,
                                 worker_init_fn)
from segkit.data.transforms import train_transform
from segkit.errors import UserError

__all__ = ["CityscapesDataset", "build_dataset", "find_samples", "read_image", "resolve_data_root"]

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
ANNOTATIONS = ("gtFine", "gtCoarse")  # the label folders, the fine one first


class CityscapesDataset(SegmentationDataset):
    """Images and class-index labels of one split (or splits joined by "+") of the official layout.

    ``labels=None`` reads labels for every split but test (the official test labels are placeholders);
    ``table`` is the class table (default: Cityscapes' 19 training classes).
    """

    def __init__(self, root: str | os.PathLike, split: str, transform=None, normalize: str = "tf",
                 labels: bool | None = None, check_files: bool = True, table: ClassTable | None = None):
        root = Path(root).expanduser()
        has_labels = (split != "test") if labels is None else labels
        samples = [s for part in split.split("+") for s in find_samples(root, part, has_labels)]
        super().__init__(root, split, samples, table or ClassTable.cityscapes(), transform, normalize, has_labels)
        if check_files:
            for sample in self.samples:
                check_sample(sample)
            suspect = train_ids_named_label_ids(self.samples)
            if suspect is not None:
                print(f"warning: {suspect} holds only values 0-18 and 255, as trainIds do; if this data set's "
                      f"*{LABEL_IDS_SUFFIX} files hold trainIds, name them *{TRAIN_IDS_SUFFIX} (read as they are): "
                      "as labelIds they are remapped, e.g. trainId 7 (traffic sign) becomes road.", file=sys.stderr)


def find_samples(root: Path, split: str, with_labels: bool) -> list[Sample]:
    """Pair every ``*_leftImg8bit.png`` of the split with its label file (cheap: names only): gtFine's, else (a
    split without fine annotations, such as train_extra) gtCoarse's."""
    if not root.is_dir():
        raise UserError(f"data_root={str(root)!r} does not exist; point it (or $CITYSCAPES_DATASET) at the folder "
                        f"holding leftImg8bit/ and gtFine/, or make one with {MAKE_DATA_HINT}.", "data_root")
    image_dir = root / "leftImg8bit" / split
    image_paths = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not image_paths:
        raise UserError(f"no images {image_dir}/CITY/*{IMAGE_SUFFIX} found for split {split!r}; check that {root} "
                        f"has the official Cityscapes layout (leftImg8bit/{split}/CITY/...), e.g. from "
                        f"{MAKE_DATA_HINT}.")
    annotation = next((a for a in ANNOTATIONS if (root / a / split).is_dir()), "gtFine")
    samples = []
    for image_path in image_paths:
        city = image_path.parent.name
        name = image_path.name[: -len(IMAGE_SUFFIX)]
        label_path, kind = None, "label_ids"
        if with_labels:
            label_dir = root / annotation / split / city
            train_ids, label_ids = (label_dir / f"{name}_{annotation}_{kind}.png"
                                    for kind in ("labelTrainIds", "labelIds"))
            if train_ids.is_file():
                label_path, kind = train_ids, "train_ids"
            elif label_ids.is_file():
                label_path = label_ids
            else:
                raise UserError(f"image {image_path} has no label {label_ids}; add the {annotation} label (or "
                                f"remove the image) before using split {split!r}.")
        samples.append(Sample(name, city, image_path, label_path, kind, f"{city}/{name}{IMAGE_SUFFIX}"))
    return samples


# ---- files --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int  # 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA


def read_png_header(path: Path) -> PngHeader:
    """Size and pixel format from the IHDR chunk, and a check that the file ends (IEND): catches truncation."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
            f.seek(max(0, os.fstat(f.fileno()).st_size - 64))
            tail = f.read()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check the file's permissions.") from None
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise UserError(f"{path} is not a PNG file; replace it with the PNG of the official Cityscapes layout.")
    if b"IEND" not in tail:
        raise UserError(f"{path} is truncated (no PNG end marker); re-download or regenerate this file.")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", head[16:26])
    return PngHeader(width, height, bit_depth, color_type)


def train_ids_named_label_ids(samples: list[Sample], limit: int = 5) -> Path | None:
    """The first of the first ``limit`` ``*_labelIds.png`` files that looks like trainIds (every value in 0-18 or
    255: a real labelIds map of a street has sky 23, vegetation 21, cars 26, ...), or None."""
    label_ids = [s.label_path for s in samples if s.label_path is not None and not s.label_is_train_ids][:limit]
    for path in label_ids:
        values = np.unique(cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
        if values.size and np.all((values <= 18) | (values == 255)):
            return path
    return None


def check_sample(sample: Sample) -> None:
    """Cheap checks of one pair from the PNG headers: readable, complete, 8-bit image, same size as its label."""
    image = read_png_header(sample.image_path)
    if image.bit_depth != 8:
        raise UserError(not_8bit(sample.image_path, image.bit_depth))
    if sample.label_path is not None:
        label = read_png_header(sample.label_path)
        if label.color_type in (2, 6):
            raise UserError(colour_label(sample.label_path))
        if (label.height, label.width) != (image.height, image.width):
            raise UserError(size_mismatch(sample, (label.height, label.width), (image.height, image.width)))


def loader_throughput(config: DataConfig, root: str | os.PathLike, batch_size: int = 8, workers: int = 2,
                      seconds: float = 10.0, split: str = "train") -> float:
    """Samples per second of a training DataLoader (train transform at ``config.crop_size``).

    The first batch (worker start-up) is not timed; then batches are drawn for about ``seconds``.
    """
    dataset = CityscapesDataset(root, split, transform=train_transform(config), normalize=config.normalize)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, drop_last=False, num_workers=workers,
                        worker_init_fn=worker_init_fn, persistent_workers=workers > 0)
    samples, start = 0, None
    while True:
        for batch in loader:
            if start is None:
                start = time.perf_counter()
                continue
            samples += batch["image"].shape[0]
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return samples / elapsed
