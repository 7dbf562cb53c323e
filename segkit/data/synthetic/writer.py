"""The synthetic data set on disk, in the official Cityscapes layout (``segkit.data.cityscapes``)."""
from __future__ import annotations

import os
import time
from pathlib import Path

from segkit.data.cityscapes import IMAGE_SUFFIX, LABEL_IDS_SUFFIX
from segkit.data.synthetic.scene import generate_scene, image_rng
from segkit.errors import UserError
from segkit.fileio import write_png

CITIES = {"train": ("synthberg", "synthdorf", "synthhafen"), "val": ("synthmund", "synthtal")}
FRAME = 19  # Cityscapes annotates the 20th frame of each sequence
MIN_SIZE = 32  # pixels, height and width


def sample_name(split: str, index: int) -> tuple[str, str]:
    """(city, CITY_SEQ_FRAME) of image ``index``: images go round-robin over the split's cities."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{FRAME:06d}"


def sample_path(root: str | os.PathLike, folder: str, split: str, index: int, suffix: str) -> Path:
    """``root/folder/split/CITY/CITY_SEQ_FRAME<suffix>`` of image ``index``: every file of every layout."""
    city, name = sample_name(split, index)
    return Path(root) / folder / split / city / f"{name}{suffix}"


def image_path(root: str | os.PathLike, split: str, index: int) -> Path:
    return sample_path(root, "leftImg8bit", split, index, IMAGE_SUFFIX)


def label_path(root: str | os.PathLike, split: str, index: int) -> Path:
    return sample_path(root, "gtFine", split, index, LABEL_IDS_SUFFIX)


def demo_image(root: str | os.PathLike) -> Path:
    """The image ``make demo`` infers: the first val image of the data set at ``root``."""
    return image_path(root, "val", 0)


def write_image(out: str | os.PathLike, split: str, index: int, height: int = 1024, width: int = 2048,
                seed: int = 0) -> None:
    """Write image ``index`` of a split and its labelIds in the official layout (one job of a parallel writer)."""
    image, label = generate_scene(height, width, image_rng(seed, split, index))
    # Fast compression: the noise of the images makes high levels slow for little gain. write_png makes folders.
    write_png(image_path(out, split, index), image, compression=1)
    write_png(label_path(out, split, index), label, compression=1)


def write_split(out: str | os.PathLike, split: str, count: int, height: int = 1024, width: int = 2048,
                seed: int = 0) -> list[float]:
    """Write ``count`` images of one split in the official layout; returns seconds per image."""
    times = []
    for index in range(count):
        start = time.perf_counter()
        write_image(out, split, index, height, width, seed)
        times.append(time.perf_counter() - start)
    return times


def make_synthetic(out: str | os.PathLike, train: int = 40, val: int = 10, height: int = 1024, width: int = 2048,
                   seed: int = 0) -> dict[str, list[float]]:
    """Write the whole tree (train and val); returns the seconds per image of each split."""
    check_arguments(out, train, val, height, width, seed)
    return {split: write_split(out, split, count, height, width, seed)
            for split, count in (("train", train), ("val", val))}


def check_arguments(out, train: int, val: int, height: int, width: int, seed: int) -> None:
    """One line for a size too small, a negative count or seed, or an output path that is a file."""
    for name, value, default in (("height", height, 1024), ("width", width, 2048)):
        if value < MIN_SIZE:
            raise UserError(f"{name}={value} is too small; use at least {MIN_SIZE} (default {default}).", name)
    for name, value in (("train", train), ("val", val), ("seed", seed)):
        if value < 0:
            raise UserError(f"{name}={value} must not be negative.", name)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"out={str(out)!r} exists and is not a folder; choose another path.", "out")
