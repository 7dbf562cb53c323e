"""Photos in and out: the inputs a user names (files, folders, glob patterns, lists of paths) as image paths,
photos read upright (EXIF orientation, the rule of ``segkit.data.images``), output names that never collide, and the
three outputs of a segmented photo (colour mask, overlay, labelIds PNG). ``tools/infer.py`` is these functions and
a ``segkit.predict.Predictor``."""
from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from segkit.data.classes import ClassTable
from segkit.data.images import read_image
from segkit.errors import UserError, quiet_native_stderr
from segkit.fileio import write_png

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
OUTPUT_SUFFIXES = ("_color.png", "_overlay.png", "_labelIds.png")  # a photo's outputs, in write_outputs' order
LIST_SUFFIX = ".txt"  # an input ending in it is a list of paths, one per line


def expand_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Image paths in the order given (folders searched recursively and sorted, glob patterns expanded, a ``.txt``
    file read as a list of paths: ``read_list``), each file once, and one error line per input that names
    nothing."""
    paths, errors = [], []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() == LIST_SUFFIX and path.is_file():
            listed = read_list(path)
            if not listed:
                errors.append(f"{item}: the list names no files (one path per line)")
            paths += listed
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not found:
                errors.append(f"{item}: folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            paths += found
        elif path.exists() or not glob.has_magic(item):
            paths.append(path)  # a missing plain path is reported when it is read
        else:
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not found:
                errors.append(f"{item}: no file matches this pattern")
            paths += found
    return unique_inputs(paths), errors


def read_list(path: Path) -> list[Path]:
    """The files a text file lists, one path per line (blank lines and lines starting with # skipped), relative
    paths taken from the list's own folder, so that a list kept beside its photos works from anywhere. The lines
    are files as they are -- no folders or patterns -- so that a list of millions costs no look-ups here; a missing
    one is reported when it is read."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the list {path} ({getattr(exc, 'strerror', None) or exc}); give a text file "
                        "with one path per line.") from None
    folder = path.parent
    return [folder / line for line in map(str.strip, lines) if line and not line.startswith("#")]


def unique_inputs(paths: list[Path]) -> list[Path]:
    """The inputs in order, each file once (a file named twice, e.g. by a folder and a glob, is segmented once)."""
    seen, unique = set(), []
    for path in paths:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def load_photo(path: Path) -> np.ndarray:
    """An RGB uint8 photo as an image viewer shows it (``segkit.data.images.read_image``: turned by its EXIF
    orientation), or one sentence."""
    if not path.exists():
        raise UserError(f"{path}: file does not exist")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not an image")
    with quiet_native_stderr():
        try:
            return read_image(path)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None


def output_names(paths: list[Path]) -> list[str]:
    """Output names (stems, possibly with a folder), one per input, all different: the input's stem; where inputs
    share a stem, the stem with the extension (a_png), else with the folder relative to the inputs' common folder
    (day/a), else both."""
    if not paths:
        return []
    absolute = [Path(os.path.abspath(path)) for path in paths]
    root = Path(os.path.commonpath([path.parent for path in absolute]))
    schemes = (lambda p: f"{p.stem}_{p.suffix.lstrip('.')}",
               lambda p: (p.parent.relative_to(root) / p.stem).as_posix(),
               lambda p: (p.parent.relative_to(root) / f"{p.stem}_{p.suffix.lstrip('.')}").as_posix())
    names = [p.stem for p in absolute]
    for scheme in schemes:
        counts = {}
        for name in names:
            counts[name] = counts.get(name, 0) + 1
        clashing = [i for i, name in enumerate(names) if counts[name] > 1]
        if not clashing:
            break
        for i in clashing:
            names[i] = scheme(absolute[i])
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)  # linear: lists of millions
    if repeated:  # only the same file twice gets here, and unique_inputs removes those
        raise UserError(f"two inputs would write the same outputs ({', '.join(repeated)}); pass each file once.")
    return names


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5, table: ClassTable | None = None) -> np.ndarray:
    """The photo with its colour mask (the class table's colours, default Cityscapes') blended in (``alpha`` of the
    mask), RGB uint8."""
    colours = (table or ClassTable.cityscapes()).colorize(labels)
    return cv2.addWeighted(colours, alpha, np.asarray(image, np.uint8), 1 - alpha, 0.0)


def write_outputs(out_dir: Path, name: str, image: np.ndarray, labels: np.ndarray,
                  table: ClassTable | None = None) -> list[Path]:
    """``name``_color.png (the class table's colours), ``name``_overlay.png and ``name``_labelIds.png (single
    channel, the table's mask values: Cityscapes labelIds, what the official tools read) in ``out_dir``; the paths
    written. ``table``: the model's class table (default: Cityscapes')."""
    table = table or ClassTable.cityscapes()
    arrays = (table.colorize(labels), overlay(image, labels, 0.5, table), table.to_values(labels))
    paths = [out_dir / f"{name}{suffix}" for suffix in OUTPUT_SUFFIXES]
    for path, array in zip(paths, arrays):
        write_png(path, array)
    return paths
