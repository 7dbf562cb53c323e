"""A data set in a plain folder layout (mmseg's custom data sets), masks read through the user's class table::

    ROOT/images/{split}/**/NAME.{png,jpg,jpeg}
    ROOT/masks/{split}/**/NAME.png          (the same relative folder and stem)

Masks hold the class table's mask values (single-channel or palette PNG) or its colours (RGB PNG). Every mask is
read once when the data set is built: a mask of another size than its image is an error, values the table does not
know are counted per file and said once (ignored, or refused with data.unknown_values="error").
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from segkit.data.classes import ClassTable
from segkit.data.dataset import (MAKE_DATA_HINT, Sample, SegmentationDataset, read_image, read_mask_file,
                                 unknown_values)
from segkit.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MASK_EXTENSION = ".png"


class FolderDataset(SegmentationDataset):
    """Images and class-index labels of one split (or splits joined by "+") of the folder layout."""

    def __init__(self, root: str | os.PathLike, split: str, table: ClassTable, transform=None, normalize: str = "tf",
                 labels: bool | None = None, check_files: bool = True, unknown_values: str = "ignore"):
        root = Path(root).expanduser()
        has_labels = (root / "masks" / split.split("+")[0]).is_dir() if labels is None else labels
        samples = [s for part in split.split("+") for s in find_folder_samples(root, part, has_labels)]
        super().__init__(root, split, samples, table, transform, normalize, has_labels)
        if check_files and has_labels:
            check_masks(self.samples, table, unknown_values)


def find_folder_samples(root: Path, split: str, with_labels: bool) -> list[Sample]:
    """Pair every image under ``images/{split}`` with the mask of the same relative path and stem; an image
    without a mask, or a mask without an image, is one line."""
    if not root.is_dir():
        raise UserError(f"data_root={str(root)!r} does not exist; point it at the folder holding images/ and "
                        f"masks/, or make one with {MAKE_DATA_HINT} --layout folder.", "data_root")
    image_dir, mask_dir = root / "images" / split, root / "masks" / split
    images = {p.relative_to(image_dir).with_suffix(""): p for p in sorted(image_dir.rglob("*"))
              if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}
    if not images:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {image_dir} for split {split!r}; "
                        f"the folder layout is images/{split}/**/NAME.jpg beside masks/{split}/**/NAME.png.")
    masks = {}
    if with_labels:
        masks = {p.relative_to(mask_dir).with_suffix(""): p for p in sorted(mask_dir.rglob(f"*{MASK_EXTENSION}"))}
        lonely = [key for key in images if key not in masks]
        if lonely:
            raise UserError(f"{len(lonely)} image(s) of split {split!r} have no mask, e.g. {images[lonely[0]]} "
                            f"needs {mask_dir / lonely[0]}{MASK_EXTENSION}; add the masks or remove those images.")
        orphans = [key for key in masks if key not in images]
        if orphans:
            raise UserError(f"{len(orphans)} mask(s) of split {split!r} have no image, e.g. {masks[orphans[0]]} "
                            f"needs {image_dir / orphans[0]}.jpg (or .png); add the images or remove those masks.")
    samples = []
    for key, image_path in images.items():
        folder = key.parent.as_posix() if key.parent != Path(".") else ""
        save_as = f"{folder}/{key.name}.png" if folder else f"{key.name}.png"
        samples.append(Sample(key.name, folder, image_path, masks.get(key), "values", save_as))
    return samples


def check_masks(samples: list[Sample], table: ClassTable, unknown: str = "ignore", report=None) -> dict:
    """Read every mask once: its size against its image's, and the values the table does not know, counted per
    file ({mask path: {value: pixels}}) and said in one line (or refused: ``unknown="error"``)."""
    known, found = table.known(), {}
    for sample in samples:
        mask = read_mask_file(sample.label_path, colours_allowed=True)
        mask_values = unknown_values(mask, table, known)
        mask_shape, image_shape = mask.shape[:2], _image_shape(sample.image_path)
        if mask_shape != image_shape:
            raise UserError(f"mask {sample.label_path} is {mask_shape[0]}x{mask_shape[1]} but its image "
                            f"{sample.image_path} is {image_shape[0]}x{image_shape[1]}; make the mask at the "
                            "image's size.")
        if mask_values:
            found[sample.label_path] = mask_values
    if found:
        first, values = next(iter(found.items()))
        shown = ", ".join(f"{_value(v)}: {n} px" for v, n in sorted(values.items())[:4])
        message = (f"{len(found)} of {len(samples)} masks hold values the class table {table.source or ''} does not "
                   f"know ({sum(sum(v.values()) for v in found.values())} pixels; e.g. {first}: {shown})")
        if unknown == "error":
            raise UserError(f"{message}; add them to the table (or to its ignore list), or set "
                            "data.unknown_values=ignore.", "data.unknown_values")
        (report or _warn)(f"warning: {message}; they are ignored (data.unknown_values=error refuses them).")
    return found


def _image_shape(path: Path) -> tuple[int, int]:
    """(height, width) from the file's header (PIL opens lazily: no JPEG decoding)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except OSError:
        return read_image(path).shape[:2]  # its one-line error


def _value(value: int) -> str:
    return str(value) if value < 256 else f"colour #{value:06x}"


def _warn(line: str) -> None:
    print(line, file=sys.stderr)
