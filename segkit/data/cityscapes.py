"""Cityscapes over the official layout::

    ROOT/leftImg8bit/{split}/CITY/CITY_SEQ_FRAME_leftImg8bit.png
    ROOT/gtFine/{split}/CITY/CITY_SEQ_FRAME_gtFine_labelIds.png   (or *_gtFine_labelTrainIds.png, preferred)

Labels are mapped to trainIds on the fly with ``LABEL_TO_TRAIN``. Existence, pairing, PNG headers (size, bit
depth) and PNG completeness are checked when the dataset is built, so mistakes surface before training starts.

Input rules (documented for users): an RGBA image loses its alpha channel, a grayscale image is repeated to
three channels, a 16-bit image is an error (segkit trains on the 8-bit leftImg8bit images); a label must be a
single-channel (or palette) PNG, and values outside the Cityscapes table become 255 (ignored).
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
import torch
from torch.utils.data import DataLoader, Dataset

from segkit.config import DataConfig
from segkit.data.labels import IGNORE_INDEX, LABEL_TO_TRAIN, NUM_CLASSES
from segkit.data.transforms import eval_transform, image_to_tensor, train_transform
from segkit.errors import UserError

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_IDS_SUFFIX = "_gtFine_labelIds.png"
TRAIN_IDS_SUFFIX = "_gtFine_labelTrainIds.png"
MAKE_DATA_HINT = "tools/make_synthetic.py (a synthetic city in this layout)"


def resolve_data_root(cli_value: str | os.PathLike | None, config_value: str | os.PathLike | None = None) -> Path:
    """The data root: the caller's (a tool's ``--data-root``), else the config's ``data.root``, else
    ``$CITYSCAPES_DATASET``."""
    for value in (cli_value, config_value, os.environ.get("CITYSCAPES_DATASET")):
        if value:
            return Path(value).expanduser()
    raise UserError("no Cityscapes data root given; give data_root=DIR (or set data.root or $CITYSCAPES_DATASET) "
                    f"with leftImg8bit/ and gtFine/ in it, or make a synthetic data set with {MAKE_DATA_HINT}.",
                    "data_root")


@dataclass(frozen=True)
class Sample:
    """One image of the data set and (unless unlabelled) its label file."""

    name: str  # CITY_SEQ_FRAME
    city: str
    image_path: Path
    label_path: Path | None
    label_is_train_ids: bool  # *_labelTrainIds.png rather than *_labelIds.png


class CityscapesDataset(Dataset):
    """Images and trainId labels of one split; items are dicts (see ``__getitem__``).

    ``transform`` is an albumentations pipeline applied to the uint8 RGB image and uint8 trainId mask before
    normalisation (``normalize``: "tf" or "imagenet"). ``labels=None`` reads labels for train/val and not for
    test (the official test labels are placeholders); an unlabelled item has an all-255 label.
    """

    def __init__(self, root: str | os.PathLike, split: str, transform=None, normalize: str = "tf",
                 labels: bool | None = None, check_files: bool = True):
        self.root = Path(root).expanduser()
        self.split = split
        self.transform = transform
        self.normalize = normalize
        self.has_labels = (split != "test") if labels is None else labels
        self.samples = find_samples(self.root, split, self.has_labels)
        if check_files:
            for sample in self.samples:
                check_sample(sample)
            suspect = train_ids_named_label_ids(self.samples)
            if suspect is not None:
                print(f"warning: {suspect} holds only values 0-18 and 255, as trainIds do; if this data set's "
                      f"*{LABEL_IDS_SUFFIX} files hold trainIds, name them *{TRAIN_IDS_SUFFIX} (read as they are): "
                      "as labelIds they are remapped, e.g. trainId 7 (traffic sign) becomes road.", file=sys.stderr)

    def __len__(self) -> int:
        return len(self.samples)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The untransformed item: RGB uint8 (H, W, 3) and trainIds uint8 (H, W), or None when unlabelled."""
        sample = self.samples[index]
        image = read_image(sample.image_path)
        if sample.label_path is None:
            return image, None
        label = read_label(sample.label_path, sample.label_is_train_ids)
        if label.shape != image.shape[:2]:
            raise UserError(_size_mismatch(sample, label.shape, image.shape[:2]))
        return image, label

    def __getitem__(self, index: int) -> dict:
        """``image`` float32 (3, H, W), ``label`` int64 (H, W) trainIds with 255 = ignore, ``has_label``,
        ``name``, ``city``, ``image_path`` (str)."""
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
            "image_path": str(sample.image_path),
        }


def build_dataset(config: DataConfig, split: str, data_root: str | os.PathLike | None = None,
                  train: bool | None = None, seed: int | None = None) -> CityscapesDataset:
    """The dataset a tool needs: training augmentation for ``train`` (default: split == "train"), else none."""
    root = resolve_data_root(data_root, config.root)
    train = (split == "train") if train is None else train
    transform = train_transform(config, jitter=config.color_jitter, seed=seed) if train else eval_transform(config)
    return CityscapesDataset(root, split, transform=transform, normalize=config.normalize)


def find_samples(root: Path, split: str, with_labels: bool) -> list[Sample]:
    """Pair every ``*_leftImg8bit.png`` of the split with its label file (cheap: names only)."""
    if not root.is_dir():
        raise UserError(f"data_root={str(root)!r} does not exist; point it (or $CITYSCAPES_DATASET) at the folder "
                        f"holding leftImg8bit/ and gtFine/, or make one with {MAKE_DATA_HINT}.", "data_root")
    image_dir = root / "leftImg8bit" / split
    image_paths = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not image_paths:
        raise UserError(f"no images {image_dir}/CITY/*{IMAGE_SUFFIX} found for split {split!r}; check that {root} "
                        f"has the official Cityscapes layout (leftImg8bit/{split}/CITY/...), e.g. from "
                        f"{MAKE_DATA_HINT}.")
    samples = []
    for image_path in image_paths:
        city = image_path.parent.name
        name = image_path.name[: -len(IMAGE_SUFFIX)]
        label_path, is_train_ids = None, False
        if with_labels:
            label_dir = root / "gtFine" / split / city
            if (label_dir / f"{name}{TRAIN_IDS_SUFFIX}").is_file():
                label_path, is_train_ids = label_dir / f"{name}{TRAIN_IDS_SUFFIX}", True
            elif (label_dir / f"{name}{LABEL_IDS_SUFFIX}").is_file():
                label_path = label_dir / f"{name}{LABEL_IDS_SUFFIX}"
            else:
                raise UserError(f"image {image_path} has no label {label_dir / (name + LABEL_IDS_SUFFIX)}; add the "
                                f"gtFine label (or remove the image) before using split {split!r}.")
        samples.append(Sample(name, city, image_path, label_path, is_train_ids))
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
        raise UserError(_not_8bit(sample.image_path, image.bit_depth))
    if sample.label_path is not None:
        label = read_png_header(sample.label_path)
        if label.color_type in (2, 6):
            raise UserError(_colour_label(sample.label_path))
        if (label.height, label.width) != (image.height, image.width):
            raise UserError(_size_mismatch(sample, (label.height, label.width), (image.height, image.width)))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as RGB uint8 (H, W, 3): RGBA drops alpha, grayscale is repeated, 16-bit is an error."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot decode image {path} (missing, truncated or not an image); re-download or "
                        "regenerate it.")
    if image.dtype != np.uint8:
        raise UserError(_not_8bit(path, 8 * image.dtype.itemsize))
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 2:  # gray + alpha
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_label(path: str | os.PathLike, train_ids: bool = False) -> np.ndarray:
    """A label file as trainIds uint8 (H, W); ids outside the Cityscapes table become 255 (ignore).

    ``train_ids`` says the file already holds trainIds (``*_labelTrainIds.png``).
    """
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise UserError(f"cannot decode label {path} (missing, truncated or not an image); re-download or "
                        "regenerate it.")
    if label.ndim == 3:
        header = read_png_header(Path(path))
        if header.color_type != 3:
            raise UserError(_colour_label(path))
        from PIL import Image  # palette PNG: OpenCV expands it to colours, PIL keeps the indices (the ids)

        label = np.asarray(Image.open(path))
    if train_ids:
        out = np.where(label < NUM_CLASSES, label, IGNORE_INDEX).astype(np.uint8)
        return out
    if label.dtype != np.uint8:  # 16-bit: ids beyond 255 are not in the table
        label = np.where(label < 256, label, 0).astype(np.uint8)
    return LABEL_TO_TRAIN[label]


def _not_8bit(path, bits: int) -> str:
    return (f"image {path} has {bits} bits per channel; segkit reads 8-bit RGB PNGs (leftImg8bit), so convert it "
            "to 8 bits first.")


def _colour_label(path) -> str:
    return (f"label {path} has colour channels; use the single-channel *{LABEL_IDS_SUFFIX} files, not the "
            "*_gtFine_color.png visualisations.")


def _size_mismatch(sample: Sample, label_hw, image_hw) -> str:
    return (f"label {sample.label_path} is {label_hw[0]}x{label_hw[1]} but its image {sample.image_path} is "
            f"{image_hw[0]}x{image_hw[1]}; regenerate the label at the image's size.")


# ---- loading ------------------------------------------------------------------------------------------------

def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker setup: no OpenCV thread pool per worker, and a distinct augmentation stream.

    Albumentations 2.x keeps its own random generator inside the Compose; forked workers would all inherit the
    same one (and the same again every epoch), so each worker re-seeds it from torch's per-worker seed.
    """
    cv2.setNumThreads(0)
    info = torch.utils.data.get_worker_info()
    dataset = info.dataset
    while not isinstance(dataset, CityscapesDataset) and hasattr(dataset, "dataset"):  # Subset and friends
        dataset = dataset.dataset
    transform = getattr(dataset, "transform", None)
    if hasattr(transform, "set_random_seed"):
        transform.set_random_seed(info.seed % 2**32)


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
