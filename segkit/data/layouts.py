"""The data set a config names: ``LAYOUTS`` (layout name -> data set class, the names ``data.layout`` offers) and
``build_dataset``, with the data root rule (``resolve_data_root``)."""
from __future__ import annotations

import os
from pathlib import Path

from segkit.config import DataConfig
from segkit.data.cityscapes import CityscapesDataset
from segkit.data.classes import ClassTable, class_table
from segkit.data.dataset import MAKE_DATA_HINT, SegmentationDataset
from segkit.data.folder import FolderDataset
from segkit.errors import UserError

LAYOUTS = {"cityscapes": CityscapesDataset, "folder": FolderDataset}


def build_dataset(config: DataConfig, split: str, data_root: str | os.PathLike | None = None,
                  train: bool | None = None, seed: int | None = None, table: ClassTable | None = None,
                  labels: bool | None = None) -> SegmentationDataset:
    """The dataset a tool needs, in the config's layout and class table (``table`` overrides it, e.g. a
    checkpoint's): training augmentation for ``train`` (default: split == "train"), else none. ``labels``: None
    requires them for every split but test (which has them where the layout holds them), True always, False never.
    """
    root = resolve_data_root(data_root, config.root)
    train = (split == "train") if train is None else train
    transform = None  # evaluation: the images as they are
    if train:
        from segkit.data.transforms import train_transform  # albumentations: only for training

        transform = train_transform(config, jitter=config.color_jitter, seed=seed)
    return LAYOUTS[config.layout](root, split, transform=transform, normalize=config.normalize, labels=labels,
                                  table=table or class_table(config.classes), unknown_values=config.unknown_values)


def resolve_data_root(cli_value: str | os.PathLike | None, config_value: str | os.PathLike | None = None) -> Path:
    """The data root: the caller's (a tool's ``--data-root``), else the config's ``data.root``, else
    ``$CITYSCAPES_DATASET``."""
    for value in (cli_value, config_value, os.environ.get("CITYSCAPES_DATASET")):
        if value:
            return Path(value).expanduser()
    raise UserError("no data root given; give data_root=DIR (or set data.root or $CITYSCAPES_DATASET): Cityscapes' "
                    f"folder with leftImg8bit/ and gtFine/, or a folder layout's, or make one with {MAKE_DATA_HINT}.",
                    "data_root")
