"""Class tables: what a data set's mask values mean, and what the model's outputs are called and coloured.

A ``ClassTable`` lists the classes in output order (index 0..C-1), each with its name, its RGB colour and the mask
value(s) that map to it, plus the mask values to ignore. Two sources:

- ``ClassTable.cityscapes()``: the 19 training classes from cityscapesscripts (mask values = labelIds; the
  categories give the official category mIoU);
- ``ClassTable.load(path)``: a small YAML or JSON file a user writes for their own data::

      ignore: [255]                  # mask values left out of training and scoring (default [255])
      classes:
        - {name: road, color: [128, 64, 128], values: [0]}
        - {name: vehicle, color: [0, 0, 142], values: [5, 6]}   # several mask values may merge into one class
      categories: {flat: [road]}     # optional: category mIoU over groups of classes

A checkpoint carries its table (``to_dict`` / ``from_dict``), so a model's outputs keep their names and colours.
Values the table does not know are ignored (the data set counts them and says so once).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from segkit.errors import UserError

IGNORE_INDEX = 255  # the class index of ignored pixels, in labels and predictions
CITYSCAPES = "cityscapes"


@dataclass(frozen=True)
class ClassTable:
    names: tuple[str, ...]
    colors: tuple[tuple[int, int, int], ...]  # RGB
    values: tuple[tuple[int, ...], ...]  # mask values of each class
    ignore: tuple[int, ...] = (IGNORE_INDEX,)  # mask values to ignore
    categories: dict[str, tuple[int, ...]] = field(default_factory=dict)  # category -> class indices
    source: str = ""  # "cityscapes" or the file it came from

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def is_cityscapes(self) -> bool:
        return self.source == CITYSCAPES

    # ---- mask values <-> class indices ---------------------------------------------------------------------

    def lookup(self) -> np.ndarray:
        """(256,) uint8: mask value -> class index; ignored and unknown values -> IGNORE_INDEX."""
        table = np.full(256, IGNORE_INDEX, np.uint8)
        for index, values in enumerate(self.values):
            table[list(values)] = index
        return table

    def known(self) -> np.ndarray:
        """(256,) bool: the mask values the table names (a class's or an ignored one)."""
        known = np.zeros(256, bool)
        known[[v for values in self.values for v in values] + list(self.ignore)] = True
        return known

    def to_classes(self, mask: np.ndarray) -> np.ndarray:
        """A mask of values (any integer dtype) as class indices uint8; values beyond 0..255 are unknown."""
        mask = np.asarray(mask)
        if mask.dtype != np.uint8:
            mask = np.where((mask >= 0) & (mask < 256), mask, self.ignore[0] if self.ignore else 0).astype(np.uint8)
        return self.lookup()[mask]

    def to_values(self, classes: np.ndarray) -> np.ndarray:
        """Class indices as the table's mask values (each class's first), ignore as the first ignored value:
        what ``--save-dir`` writes (Cityscapes: labelIds, the official evaluator's input)."""
        table = np.full(256, self.ignore[0] if self.ignore else 0, np.uint8)
        table[: self.num_classes] = [values[0] for values in self.values]
        return table[_as_uint8(classes)]

    def colors_to_classes(self, rgb: np.ndarray) -> np.ndarray:
        """An RGB colour mask (H, W, 3) as class indices; colours not in the table -> IGNORE_INDEX."""
        packed = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
        out = np.full(packed.shape, IGNORE_INDEX, np.uint8)
        for index, (r, g, b) in enumerate(self.colors):
            out[packed == (r << 16 | g << 8 | b)] = index
        return out

    # ---- colours -----------------------------------------------------------------------------------------

    def palette(self) -> np.ndarray:
        """(256, 3) uint8: class index -> RGB; ignore and unknown indices black."""
        table = np.zeros((256, 3), np.uint8)
        table[: self.num_classes] = self.colors
        return table

    def colorize(self, classes: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) of a class-index map; ignore (and indices beyond the table) black."""
        ids = _as_uint8(classes)
        table = self.palette()
        if ids.ndim != 2:
            return table[ids]
        # OpenCV's table lookup: numpy's fancy indexing made colouring the slowest step of a video frame's overlay
        return cv2.merge([cv2.LUT(ids, np.ascontiguousarray(table[:, c])) for c in range(3)])

    # ---- files and checkpoints ---------------------------------------------------------------------------

    def to_dict(self) -> dict:
        names = self.names
        return {"source": self.source, "ignore": list(self.ignore),
                "classes": [{"name": n, "color": list(c), "values": list(v)}
                            for n, c, v in zip(names, self.colors, self.values, strict=True)],
                "categories": {k: [names[i] for i in v] for k, v in self.categories.items()}}

    @classmethod
    def from_dict(cls, data: dict, source: str = "") -> ClassTable:
        """A table from plain data (a file's or a checkpoint's), validated; errors name ``source``."""
        where = source or data.get("source") or "the class table"
        if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not data["classes"]:
            raise UserError(f"{where} has no list of classes; write classes: [{{name, color, values}}, ...].",
                            "data.classes")
        names, colors, values = [], [], []
        for number, entry in enumerate(data["classes"], 1):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
                raise UserError(f"{where}: class {number} has no name; give each class name, color and values.",
                                "data.classes")
            name = entry["name"]
            if "color" not in entry:
                raise UserError(f"{where}: class {name!r} has no color; give it as [R, G, B].", "data.classes")
            color = _color(entry["color"], where, name)
            given = entry.get("values", entry.get("value"))
            if given is None:
                raise UserError(f"{where}: class {name!r} has no values; give the mask value(s) that mean it.",
                                "data.classes")
            names.append(name)
            colors.append(color)
            values.append(_values(given, where, f"class {name!r}"))
        ignore = _values(data.get("ignore", [IGNORE_INDEX]), where, "ignore", empty_ok=True)
        table = cls(tuple(names), tuple(colors), tuple(values), tuple(ignore),
                    _categories(data.get("categories") or {}, names, where), data.get("source") or source)
        table.check(where)
        return table

    def check(self, where: str) -> None:
        """Each name, colour and mask value once; a mask value means one class or ignore, not both."""
        for kind, items in (("name", self.names), ("color", self.colors)):
            seen = set()
            for item in items:
                if item in seen:
                    raise UserError(f"{where}: {kind} {_show(item)} is given to two classes; give each class its "
                                    f"own {kind}.", "data.classes")
                seen.add(item)
        owner = {}
        for name, values in zip(self.names, self.values):
            for value in values:
                if value in owner:
                    raise UserError(f"{where}: mask value {value} is given to {owner[value]!r} and {name!r}; give "
                                    "each value to one class.", "data.classes")
                owner[value] = name
        for value in self.ignore:
            if value in owner:
                raise UserError(f"{where}: mask value {value} is both ignored and class {owner[value]!r}; remove it "
                                "from one.", "data.classes")
        if self.num_classes > IGNORE_INDEX:
            raise UserError(f"{where} has {self.num_classes} classes; segkit's labels hold at most {IGNORE_INDEX}.",
                            "data.classes")

    @classmethod
    def load(cls, path: str | os.PathLike) -> ClassTable:
        """A table file (YAML or JSON), validated; one line naming the file when it does not parse."""
        path = Path(path).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"cannot read the class table {path} ({exc.strerror}); check data.classes.",
                            "data.classes") from None
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as exc:  # the parser's own message, on one line
            reason = " ".join(str(exc).split())[:200]
            raise UserError(f"the class table {path} does not parse ({reason}); fix the file (YAML or JSON).",
                            "data.classes") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def cityscapes(cls) -> ClassTable:
        """The 19 Cityscapes training classes (cityscapesscripts): mask values are labelIds. One shared instance
        (built once: photos, video frames and the evaluator ask for it often)."""
        return _cityscapes_table()


def class_table(spec: str | os.PathLike | ClassTable | dict | None) -> ClassTable:
    """The table a config names: "cityscapes" (or empty), a table file's path, a table, or a checkpoint's dict."""
    if isinstance(spec, ClassTable):
        return spec
    if isinstance(spec, dict):
        return ClassTable.from_dict(spec)
    if not spec or spec == CITYSCAPES:
        return ClassTable.cityscapes()
    return ClassTable.load(spec)


@functools.cache
def _cityscapes_table() -> ClassTable:
    # cityscapesscripts (and the matplotlib it brings) only where Cityscapes' table is asked for: the runtime reads
    # a bundle's own table.
    from cityscapesscripts.helpers.labels import labels as _CS_LABELS

    train = sorted((lab for lab in _CS_LABELS if 0 <= lab.trainId < IGNORE_INDEX), key=lambda lab: lab.trainId)
    assert [lab.trainId for lab in train] == list(range(len(train)))  # trainIds are the output indices
    ignore = tuple(lab.id for lab in _CS_LABELS if 0 <= lab.id < 256 and not 0 <= lab.trainId < IGNORE_INDEX)
    category_names = list(dict.fromkeys(lab.category for lab in sorted(train, key=lambda lab: lab.categoryId)))
    categories = {c: tuple(i for i, lab in enumerate(train) if lab.category == c) for c in category_names}
    return ClassTable(tuple(lab.name for lab in train), tuple(tuple(lab.color) for lab in train),
                      tuple((lab.id,) for lab in train), ignore, categories, CITYSCAPES)


def _as_uint8(ids) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype == np.uint8:
        return ids
    return np.where((ids >= 0) & (ids < 256), ids, IGNORE_INDEX).astype(np.uint8)


def _color(value, where: str, name: str) -> tuple[int, int, int]:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        try:
            return tuple(int(value[i: i + 2], 16) for i in (1, 3, 5))
        except ValueError:
            pass
    elif (isinstance(value, (list, tuple)) and len(value) == 3
          and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value)):
        return tuple(value)
    raise UserError(f"{where}: class {name!r} has color {value!r}; give [R, G, B] with each in 0..255 (or "
                    "'#rrggbb').", "data.classes")


def _values(value, where: str, what: str, empty_ok: bool = False) -> tuple[int, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if (not items and not empty_ok) or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in items):
        raise UserError(f"{where}: {what} has values {value!r}; give mask values in 0..255 (8-bit masks).",
                        "data.classes")
    if len(set(items)) != len(items):
        raise UserError(f"{where}: {what} lists a mask value twice ({value!r}).", "data.classes")
    return tuple(items)


def _categories(data, names: list[str], where: str) -> dict[str, tuple[int, ...]]:
    if not isinstance(data, dict):
        raise UserError(f"{where}: categories must map a category name to its class names.", "data.classes")
    out = {}
    for category, members in data.items():
        members = members if isinstance(members, list) else [members]
        unknown = [m for m in members if m not in names]
        if unknown:
            raise UserError(f"{where}: category {category!r} names {unknown[0]!r}, which is not a class; use the "
                            "classes' names.", "data.classes")
        out[str(category)] = tuple(names.index(m) for m in members)
    return out


def _show(item) -> str:
    return repr(list(item)) if isinstance(item, tuple) else repr(item)
