"""A data set in a plain folder layout (mmseg's custom data sets), masks read through the user's class table::

    ROOT/images/{split}/**/NAME.{png,jpg,jpeg}
    ROOT/masks/{split}/**/NAME.png          (the same relative folder and stem)

Masks hold the class table's mask values (single-channel or palette PNG, any bit depth) or its colours (RGB PNG).
Every mask is read once when the data set is built (``segkit.data.dataset.check_pairs``): a mask of another size
than its (upright) photo is an error, values the table does not know are counted per file and said once
(ignored, or refused with data.unknown_values="error"). A split other than test without its masks/ folder is an
error, not an unlabelled split.
"""
from __future__ import annotations

import os
from pathlib import Path

from segkit.data.classes import ClassTable
from segkit.data.dataset import MAKE_DATA_HINT, Sample, SegmentationDataset, check_pairs
from segkit.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
MASK_EXTENSION = ".png"


class FolderDataset(SegmentationDataset):
    """Images and class-index labels of one split (or splits joined by "+") of the folder layout. ``labels=None``
    requires masks for every split but test, which is labelled where its masks/ folder exists."""

    def __init__(self, root: str | os.PathLike, split: str, table: ClassTable, transform=None, normalize: str = "tf",
                 labels: bool | None = None, check_files: bool = True, unknown_values: str = "ignore"):
        root = Path(root).expanduser()
        parts = split.split("+")
        if labels is None:
            labels = any(part != "test" or (root / "masks" / part).is_dir() for part in parts)
        samples = [s for part in parts for s in find_folder_samples(root, part, labels)]
        super().__init__(root, split, samples, table, transform, normalize, labels)
        if check_files and labels:
            check_pairs(self.samples, table, unknown_values)


def find_folder_samples(root: Path, split: str, with_labels: bool) -> list[Sample]:
    """Pair every image under ``images/{split}`` with the mask of the same relative path and stem; an image
    without a mask, a mask without an image, or no masks folder at all is one line."""
    if not root.is_dir():
        raise UserError(f"data_root={str(root)!r} does not exist; point it at the folder holding images/ and "
                        f"masks/, or make one with {MAKE_DATA_HINT}.", "data_root")
    image_dir, mask_dir = root / "images" / split, root / "masks" / split
    images = {p.relative_to(image_dir).with_suffix(""): p for p in sorted(image_dir.rglob("*"))
              if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}
    if not images:
        raise UserError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {image_dir} for split {split!r}; "
                        f"the folder layout is images/{split}/**/NAME.jpg beside masks/{split}/**/NAME.png.")
    masks = {}
    if with_labels:
        if not mask_dir.is_dir():
            raise UserError(f"split {split!r} has {len(images)} image(s) under {image_dir} but no masks folder "
                            f"{mask_dir} ({_holds(mask_dir.parent)}); put its masks there (same relative paths and "
                            "stems, .png).")
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


def _holds(folder: Path) -> str:
    """What ``folder`` holds, as a phrase for a message about a missing sub-folder."""
    if not folder.is_dir():
        return f"{folder} does not exist"
    names = sorted(p.name for p in folder.iterdir() if p.is_dir())
    return f"{folder} holds {', '.join(names)}" if names else f"{folder} holds no folders"
