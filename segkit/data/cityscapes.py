"""Cityscapes over the official layout::

    ROOT/leftImg8bit/{split}/CITY/CITY_SEQ_FRAME_leftImg8bit.png
    ROOT/gtFine/{split}/CITY/CITY_SEQ_FRAME_gtFine_labelIds.png   (or only *_gtFine_labelTrainIds.png: below)
    ROOT/gtCoarse/{split}/CITY/CITY_SEQ_FRAME_gtCoarse_labelIds.png   (where a split has no gtFine: train_extra)

A split name may join splits with "+" ("train+train_extra": the 2975 fine and 19998 coarse training images, shuffled
together). Labels are read through the class table (Cityscapes': labelIds -> trainIds). labelIds are the source of
truth: a *_labelTrainIds.png beside them (cityscapesscripts' createTrainIdLabelImgs writes one next to each) is
not read, since it has lost every labelId without a trainId (parking, rail track, caravan, ...) that a table of
your own may name; a trainIds file is read only where it is all there is, and then only for Cityscapes' 19
classes. Existence, pairing, PNG headers (size, bit depth, completeness) and every mask's values are checked when
the dataset is built, so mistakes surface before training starts.

Input rules (``segkit.data.images``, documented for users): photos are read upright (EXIF), an RGBA image loses its
alpha channel, a grayscale image is repeated to three channels, a 16-bit image is an error (segkit trains on the
8-bit leftImg8bit images); a label must be a single-channel (or palette) PNG, and values outside the class table
are counted, said once and ignored.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from segkit.data.classes import ClassTable
from segkit.data.dataset import MAKE_DATA_HINT, Sample, SegmentationDataset, check_pairs
from segkit.data.images import not_8bit, read_png_header
from segkit.errors import UserError

__all__ = ["CityscapesDataset", "find_samples"]

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
ANNOTATIONS = ("gtFine", "gtCoarse")  # the label folders, the fine one first


class CityscapesDataset(SegmentationDataset):
    """Images and class-index labels of one split (or splits joined by "+") of the official layout.

    ``labels=None`` reads labels for every split but test (the official test labels are placeholders);
    ``table`` is the class table (default: Cityscapes' 19 training classes); ``unknown_values``: mask values the
    table does not know are "ignore"d (counted, said once) or an "error".
    """

    def __init__(self, root: str | os.PathLike, split: str, transform=None, normalize: str = "tf",
                 labels: bool | None = None, check_files: bool = True, table: ClassTable | None = None,
                 unknown_values: str = "ignore"):
        root = Path(root).expanduser()
        table = table or ClassTable.cityscapes()
        has_labels = (split != "test") if labels is None else labels
        samples = [s for part in split.split("+") for s in find_samples(root, part, has_labels, table)]
        super().__init__(root, split, samples, table, transform, normalize, has_labels)
        if check_files:
            for sample in self.samples:
                check_image(sample)
            values = check_pairs(self.samples, table, unknown_values)
            suspect = train_ids_named_label_ids(self.samples, values)
            if suspect is not None:
                print(f"warning: {suspect} holds only values 0-18 and 255, as trainIds do; if this data set's "
                      f"*{LABEL_IDS_SUFFIX} files hold trainIds, name them *{TRAIN_IDS_SUFFIX} (read as they are "
                      "where no labelIds file exists): as labelIds they are remapped, e.g. trainId 7 (traffic sign) "
                      "becomes road.", file=sys.stderr)


def find_samples(root: Path, split: str, with_labels: bool, table: ClassTable | None = None) -> list[Sample]:
    """Pair every ``*_leftImg8bit.png`` of the split with its label file (cheap: names only): gtFine's, else (a
    split without fine annotations, such as train_extra) gtCoarse's; labelIds, else trainIds for Cityscapes' own
    classes (``table``, default Cityscapes')."""
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
    table = table or ClassTable.cityscapes()
    samples = []
    for image_path in image_paths:
        city = image_path.parent.name
        name = image_path.name[: -len(IMAGE_SUFFIX)]
        label_path, kind = None, "label_ids"
        if with_labels:
            label_dir = root / annotation / split / city
            label_ids, train_ids = (label_dir / f"{name}_{annotation}_{kind}.png"
                                    for kind in ("labelIds", "labelTrainIds"))
            if label_ids.is_file():
                label_path = label_ids
            elif train_ids.is_file() and table.is_cityscapes:
                label_path, kind = train_ids, "train_ids"
            elif train_ids.is_file():
                raise UserError(f"{train_ids} holds Cityscapes trainIds, which know only Cityscapes' 19 classes; the "
                                f"class table {table.source} reads labelIds: add {label_ids.name} beside it.")
            else:
                raise UserError(f"image {image_path} has no label {label_ids}; add the {annotation} label (or "
                                f"remove the image) before using split {split!r}.")
        samples.append(Sample(name, city, image_path, label_path, kind, f"{city}/{name}{IMAGE_SUFFIX}"))
    return samples


# ---- files --------------------------------------------------------------------------------------------------

def train_ids_named_label_ids(samples: list[Sample], values: dict, limit: int = 5) -> Path | None:
    """The first of the first ``limit`` ``*_labelIds.png`` files that looks like trainIds (every value in 0-18 or
    255: a real labelIds map of a street has sky 23, vegetation 21, cars 26, ...), or None. ``values``: each mask's
    {value: pixels} (``check_pairs``)."""
    label_ids = [s.label_path for s in samples if s.label_path is not None and not s.label_is_train_ids][:limit]
    for path in label_ids:
        found = np.array(list(values[path]))
        if found.size and np.all((found <= 18) | (found == 255)):
            return path
    return None


def check_image(sample: Sample) -> None:
    """Cheap checks of a photo from its PNG header: readable, complete, 8-bit."""
    image = read_png_header(sample.image_path)
    if image.bit_depth != 8:
        raise UserError(not_8bit(sample.image_path, image.bit_depth))
