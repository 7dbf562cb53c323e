"""The synthetic city in the folder layout (``segkit.data.folder``) with its own class table: a stand-in for a
user's own data -- JPEG photos, masks of the table's values, a table file -- to try the whole path without
Cityscapes::

    OUT/images/{train,val}/CITY/CITY_SEQ_FRAME.jpg
    OUT/masks/{train,val}/CITY/CITY_SEQ_FRAME.png      (the table's mask values)
    OUT/classes.yaml                                   (the class table)

``classes=7`` merges the 19 Cityscapes classes into road, sidewalk, building, vegetation, sky, vehicle and person
(mask values 1..7; 0 = everything else, ignored); ``classes=19`` keeps Cityscapes' classes and labelIds.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import yaml
from cityscapesscripts.helpers.labels import name2label

from segkit.data.classes import ClassTable
from segkit.data.synthetic.scene import generate_scene, image_rng
from segkit.data.synthetic.writer import check_arguments, sample_path
from segkit.errors import UserError
from segkit.fileio import atomic_write_bytes, write_jpeg, write_png

TABLE_FILE = "classes.yaml"
JPEG_QUALITY = 95  # a camera's, so the set looks like a user's photos
UNLABELLED = 0  # the merged table's mask value of everything else (ignored)
# The merged classes in output order, each with the Cityscapes classes it takes in; its colour is the first's.
MERGED = (("road", ("road", "parking")), ("sidewalk", ("sidewalk",)), ("building", ("building", "wall", "fence")),
          ("vegetation", ("vegetation", "terrain")), ("sky", ("sky",)),
          ("vehicle", ("car", "truck", "bus", "train", "motorcycle", "bicycle", "caravan", "trailer")),
          ("person", ("person", "rider")))
CLASS_COUNTS = (7, 19)


def check_classes(classes: int) -> None:
    """One line for a class count the folder city does not offer (before anything is written)."""
    if classes not in CLASS_COUNTS:
        raise UserError(f"classes={classes} is not offered; choose 7 (merged) or 19 (Cityscapes').", "classes")


def folder_table(classes: int = 7) -> ClassTable:
    """The class table of the folder-layout city: the 7 merged classes (values 1..7) or Cityscapes' 19."""
    check_classes(classes)
    if classes == 19:
        return ClassTable.cityscapes()
    return ClassTable.from_dict({"ignore": [UNLABELLED, 255], "classes": [
        {"name": name, "color": list(name2label[members[0]].color), "values": [index + 1]}
        for index, (name, members) in enumerate(MERGED)]}, "the synthetic folder table")


def merged_values() -> np.ndarray:
    """(256,) uint8: Cityscapes labelId -> the 7-class table's mask value (UNLABELLED for the rest)."""
    lookup = np.full(256, UNLABELLED, np.uint8)
    for index, (_, members) in enumerate(MERGED):
        for member in members:
            lookup[name2label[member].id] = index + 1
    return lookup


def mask_values(classes: int) -> np.ndarray:
    """(256,) uint8: labelId -> the mask value the table of ``classes`` gives it (19: the labelId itself)."""
    return merged_values() if classes == 7 else np.arange(256, dtype=np.uint8)


def photo_path(root: str | os.PathLike, split: str, index: int) -> Path:
    return sample_path(root, "images", split, index, ".jpg")


def mask_path(root: str | os.PathLike, split: str, index: int) -> Path:
    """Beside the photo under masks/: same relative path and stem, as the folder layout pairs them."""
    return sample_path(root, "masks", split, index, ".png")


def make_synthetic_folder(out: str | os.PathLike, train: int = 40, val: int = 10, height: int = 1024,
                          width: int = 2048, seed: int = 0, classes: int = 7) -> dict[str, list[float]]:
    """Write the folder-layout city (the same scenes as ``make_synthetic`` with the same seed) and its table;
    returns the seconds per image of each split. Arguments are checked before anything is written."""
    table = folder_table(classes)
    check_arguments(out, train, val, height, width, seed)
    write_table(Path(out) / TABLE_FILE, table)
    lookup = mask_values(classes)
    times = {}
    for split, count in (("train", train), ("val", val)):
        times[split] = []
        for index in range(count):
            start = time.perf_counter()
            write_folder_image(out, split, index, height, width, seed, lookup)
            times[split].append(time.perf_counter() - start)
    return times


def write_folder_image(out: str | os.PathLike, split: str, index: int, height: int, width: int, seed: int,
                       lookup: np.ndarray) -> None:
    """Image ``index`` of a split as a JPEG photo and its mask (labelIds through ``lookup``)."""
    image, label = generate_scene(height, width, image_rng(seed, split, index))
    write_jpeg(photo_path(out, split, index), image, JPEG_QUALITY)
    write_png(mask_path(out, split, index), lookup[label], compression=1)  # makes its folders


def write_table(path: Path, table: ClassTable) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, table_yaml(table).encode())
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror}); choose another output folder.", "out") from None


def table_yaml(table: ClassTable) -> str:
    """The table file as a user would write it: ignore values, then one class (and category) per line in flow
    style. Its ``source`` is left out, so a loaded table names its file (not "cityscapes") in its messages."""
    data = table.to_dict()
    lines = [f"# the synthetic city's {table.num_classes} classes: masks hold each class's values",
             f"ignore: {_flow(data['ignore'])}", "classes:"]
    lines += [f"  - {_flow(entry)}" for entry in data["classes"]]
    if data["categories"]:
        categories = yaml.safe_dump({"categories": data["categories"]}, default_flow_style=None, sort_keys=False,
                                    width=float("inf"))  # block mapping, each category's list on its line
        lines += categories.rstrip("\n").split("\n")
    return "\n".join(lines) + "\n"


def _flow(value) -> str:
    """One YAML line (flow style, never wrapped)."""
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=float("inf")).strip()
