"""A split of a segmentation data set: image/mask pairs in any layout, masks read through a class table.

The layouts find the pairs (``segkit.data.cityscapes``: leftImg8bit/ + gtFine/ or gtCoarse/; ``segkit.data.folder``:
images/ beside masks/); this module reads them the same way for all: the image as RGB uint8, the mask as class
indices through the data set's ``ClassTable`` (255 = ignore), and ``build_dataset`` picks the layout a config names.

Mask rules (documented for users): a single-channel PNG holds mask values; a palette (P-mode) PNG holds them as
its indices; an RGB colour mask is converted through the table's colours where the layout allows it (the folder
layout), else refused; 16-bit values beyond 255 are unknown.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from segkit.config import DataConfig
from segkit.data.classes import IGNORE_INDEX, ClassTable, class_table
from segkit.data.labels import to_label_ids
from segkit.data.transforms import eval_transform, image_to_tensor, train_transform
from segkit.errors import UserError

MAKE_DATA_HINT = "tools/make_synthetic.py (a synthetic city in this layout)"


@dataclass(frozen=True)
class Sample:
    """One image of the data set and (unless unlabelled) its mask file."""

    name: str  # Cityscapes: CITY_SEQ_FRAME; folder: the file's stem
    city: str  # Cityscapes: the city; folder: the folder below images/{split}/ ("" at the top)
    image_path: Path
    label_path: Path | None
    # How the mask file holds classes: "label_ids" (Cityscapes labelIds, or the table's values), "train_ids"
    # (Cityscapes *_labelTrainIds.png) or "values" (the table's values; RGB colours allowed).
    label_kind: str = "label_ids"
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
        self._lookup = table.lookup()

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The untransformed item: RGB uint8 (H, W, 3) and class indices uint8 (H, W), or None when unlabelled."""
        sample = self.samples[index]
        image = read_image(sample.image_path)
        if sample.label_path is None:
            return image, None
        if sample.label_kind == "values":  # the folder layout: values, palette indices or colours
            label = mask_classes(sample.label_path, self.table, self._lookup)
        else:
            label = self._lookup[read_mask(sample.label_path, sample.label_kind, self.table)]
        if label.shape != image.shape[:2]:
            raise UserError(size_mismatch(sample, label.shape, image.shape[:2]))
        return image, label

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


def build_dataset(config: DataConfig, split: str, data_root: str | os.PathLike | None = None,
                  train: bool | None = None, seed: int | None = None, table: ClassTable | None = None):
    """The dataset a tool needs, in the config's layout and class table (``table`` overrides it, e.g. a
    checkpoint's): training augmentation for ``train`` (default: split == "train"), else none."""
    # Imported here: the layouts' modules import this one.
    from segkit.data.cityscapes import CityscapesDataset
    from segkit.data.folder import FolderDataset

    root = resolve_data_root(data_root, config.root)
    train = (split == "train") if train is None else train
    transform = train_transform(config, jitter=config.color_jitter, seed=seed) if train else eval_transform(config)
    table = table or class_table(config.classes)
    if config.layout == "folder":
        return FolderDataset(root, split, table, transform=transform, normalize=config.normalize,
                             unknown_values=config.unknown_values)
    return CityscapesDataset(root, split, transform=transform, normalize=config.normalize, table=table)


def resolve_data_root(cli_value: str | os.PathLike | None, config_value: str | os.PathLike | None = None) -> Path:
    """The data root: the caller's (a tool's ``--data-root``), else the config's ``data.root``, else
    ``$CITYSCAPES_DATASET``."""
    for value in (cli_value, config_value, os.environ.get("CITYSCAPES_DATASET")):
        if value:
            return Path(value).expanduser()
    raise UserError("no data root given; give data_root=DIR (or set data.root or $CITYSCAPES_DATASET): Cityscapes' "
                    f"folder with leftImg8bit/ and gtFine/, or a folder layout's, or make one with {MAKE_DATA_HINT}.",
                    "data_root")


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


# ---- files --------------------------------------------------------------------------------------------------

def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3): RGBA drops alpha, grayscale is repeated, 16-bit is an error."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot decode image {path} (missing, truncated or not an image); re-download or "
                        "regenerate it.")
    if image.dtype != np.uint8:
        raise UserError(not_8bit(path, 8 * image.dtype.itemsize))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 2:  # gray + alpha
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask_file(path: str | os.PathLike, colours_allowed: bool = False) -> np.ndarray:
    """A mask file's values: (H, W) of its integer dtype; a palette PNG's indices; an RGB(A) mask as (H, W, 3)
    RGB colours where ``colours_allowed``, else one line saying to use single-channel masks."""
    path = Path(path)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise UserError(f"cannot decode mask {path} (missing, truncated or not an image); re-download or "
                        "regenerate it.")
    if mask.ndim == 3:
        from PIL import Image  # palette PNG: OpenCV expands it to colours, PIL keeps the indices (the values)

        with Image.open(path) as pil:
            if pil.mode == "P":
                return np.asarray(pil)
        if not colours_allowed:
            raise UserError(colour_label(path))
        if mask.dtype != np.uint8:
            raise UserError(f"mask {path} is a 16-bit colour image; save colour masks with 8 bits per channel.")
        return cv2.cvtColor(mask[:, :, :3], cv2.COLOR_BGR2RGB)
    return mask


def read_mask(path: str | os.PathLike, kind: str, table: ClassTable) -> np.ndarray:
    """A Cityscapes-layout mask as the table's mask values (uint8, for ``table.lookup()``): labelIds as they are,
    trainIds (``kind="train_ids"``) through their labelIds; values beyond 255 become an ignored one."""
    label = read_mask_file(path)
    if kind == "train_ids":
        return to_label_ids(label)  # ignore (255) becomes labelId 0, "unlabeled"
    if label.dtype != np.uint8:  # 16-bit: values beyond 255 are not in the table
        label = np.where(label < 256, label, table.ignore[0] if table.ignore else 0).astype(np.uint8)
    return label


def mask_classes(path: Path, table: ClassTable, lookup: np.ndarray | None = None) -> np.ndarray:
    """A folder-layout mask as class indices: values through the table, RGB colours through its colours."""
    mask = read_mask_file(path, colours_allowed=True)
    if mask.ndim == 3:
        return table.colors_to_classes(mask)
    lookup = table.lookup() if lookup is None else lookup
    if mask.dtype == np.uint8:
        return lookup[mask]
    classes = lookup[np.clip(mask, 0, 255).astype(np.uint8)]  # 16-bit: values beyond 255 are unknown
    classes[mask > 255] = IGNORE_INDEX
    return classes


def unknown_values(mask: np.ndarray, table: ClassTable, known: np.ndarray) -> dict[int, int]:
    """{mask value: pixels} of the values (or colours, packed 0xRRGGBB) of a mask (``read_mask_file``) the table
    does not know (``known``: ``table.known()``)."""
    if mask.ndim == 3:
        packed = (mask[..., 0].astype(np.int64) << 16) | (mask[..., 1].astype(np.int64) << 8) | mask[..., 2]
        colours = {(r << 16) | (g << 8) | b for r, g, b in table.colors}
        values, counts = np.unique(packed, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts) if int(v) not in colours}
    values, counts = np.unique(mask, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts) if not (0 <= v < 256 and known[int(v)])}


def not_8bit(path, bits: int) -> str:
    return (f"image {path} has {bits} bits per channel; segkit reads 8-bit RGB images, so convert it to 8 bits "
            "first.")


def colour_label(path) -> str:
    return (f"label {path} has colour channels; use the single-channel *_gtFine_labelIds.png files, not the "
            "*_gtFine_color.png visualisations.")


def size_mismatch(sample: Sample, label_hw, image_hw) -> str:
    return (f"label {sample.label_path} is {label_hw[0]}x{label_hw[1]} but its image {sample.image_path} is "
            f"{image_hw[0]}x{image_hw[1]}; regenerate the label at the image's size.")
