"""Augmentation pipelines (albumentations 2.x) and the one place where images are normalised.

Pipelines work on uint8 RGB (H, W, 3) images and uint8 trainId (H, W) masks; normalisation happens after them
(``image_to_tensor``), so padding can use the normalisation mean and become exactly 0 in the network's input.
Albumentations 2.x traps (docs/paper.md#known-traps): the pad values are ``fill``/``fill_mask`` (the 1.x names are
ignored, which pads masks with 0 = road), and ``RandomScale`` adds 1 to its limits and defaults to p=0.5.
"""
from __future__ import annotations

import os

# albumentations asks PyPI for a newer version on import: none of segkit's business, and on an offline machine
# (a GPU machine or CI without internet access) every process waits for that request to time out.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2
import numpy as np
import torch

from segkit.config import NORMALIZE_MODES, DataConfig
from segkit.data.labels import IGNORE_INDEX
from segkit.errors import UserError


def mean_std(mode: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel (mean, std) in 0..255 pixel units for a ``DataConfig.normalize`` mode."""
    if mode == "tf":  # x / 127.5 - 1, as the authors' TF models (trained from scratch)
        return (127.5, 127.5, 127.5), (127.5, 127.5, 127.5)
    if mode == "imagenet":  # torchvision's ImageNet statistics, for backbones initialised from its weights
        return (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    raise UserError(f"data.normalize={mode!r} is unknown; choose one of {', '.join(NORMALIZE_MODES)}.")


def scale_offset(mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Normalisation as ``x * scale - offset`` in float32 (scale = 1/std, offset = mean/std): for "tf" that is
    the authors' ``x * float32(2/255) - 1``, bit for bit (x / 127.5 - 1 differs by an ulp on 111 of 256 values)."""
    mean, std = (np.asarray(v, dtype=np.float64) for v in mean_std(mode))
    return (1.0 / std).astype(np.float32), (mean / std).astype(np.float32)


def normalize(image: np.ndarray, mode: str) -> np.ndarray:
    """uint8 RGB (H, W, 3) -> float32 (H, W, 3) network input."""
    scale, offset = scale_offset(mode)
    return image.astype(np.float32) * scale - offset


def image_to_tensor(image: np.ndarray, mode: str) -> torch.Tensor:
    """uint8 RGB (H, W, 3) -> normalised float32 tensor (3, H, W): ``normalize`` computed in torch, in place on
    one buffer (the same float32 operations, so the same values, in half the time of numpy's). The tensor keeps
    the photo's interleaved layout (channels_last strides), which oneDNN convolutions read without a reorder."""
    scale, offset = (torch.from_numpy(v).view(3, 1, 1) for v in scale_offset(mode))
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    return tensor.mul_(scale).sub_(offset)


def tensor_to_image(images: torch.Tensor, mode: str) -> np.ndarray:
    """The inverse of ``image_to_tensor`` for a batch of one: normalised (1, 3, H, W) -> uint8 RGB (H, W, 3),
    exact for tensors made from uint8 photos (the float32 error of the normalisation is far below half a level)."""
    scale, offset = (torch.from_numpy(v).view(3, 1, 1) for v in scale_offset(mode))
    pixels = ((images[0].float().cpu() + offset) / scale).round_().clamp_(0, 255)
    return np.ascontiguousarray(pixels.to(torch.uint8).permute(1, 2, 0).numpy())


def train_transform(config: DataConfig, jitter: bool = True, seed: int | None = None) -> A.Compose:
    """Random scale (config.scale_range, always applied), pad to the crop, random crop, flip, photometric jitter.

    A scaled image smaller than the crop is padded bottom/right, as deeplab pads (and as the prediction path pads
    images to the pixel grid), with the mean pixel (0 after normalisation) and the ignore label.

    ``jitter=False`` (``data.color_jitter``) leaves colours untouched (also for tests of geometric alignment).
    ``seed`` makes the sequence reproducible; DataLoader workers are re-seeded by
    ``segkit.data.cityscapes.worker_init_fn``.
    """
    crop_h, crop_w = (int(v) for v in config.crop_size)  # checked by DataConfig
    low, high = (float(v) for v in config.scale_range)
    fill = tuple(mean_std(config.normalize)[0])  # pads become 0 after normalisation
    steps = [
        # RandomScale samples from (1 + low, 1 + high): subtract 1 so the factors are really scale_range.
        A.RandomScale(scale_limit=(low - 1.0, high - 1.0), interpolation=cv2.INTER_LINEAR,
                      mask_interpolation=cv2.INTER_NEAREST, p=1.0),
        A.PadIfNeeded(min_height=crop_h, min_width=crop_w, position="top_left", border_mode=cv2.BORDER_CONSTANT,
                      fill=fill, fill_mask=IGNORE_INDEX),
        A.RandomCrop(height=crop_h, width=crop_w),
        A.HorizontalFlip(p=0.5),
    ]
    if jitter:
        # Modest jitter on the crop (cheaper than on the full image); hue stays small so classes keep their colours.
        steps.append(A.ColorJitter(brightness=(0.75, 1.25), contrast=(0.75, 1.25), saturation=(0.75, 1.25),
                                   hue=(-0.03, 0.03), p=0.8))
    return A.Compose(steps, seed=seed)


def eval_transform(config: DataConfig) -> A.Compose:
    """Nothing geometric at evaluation: full-resolution images as they are (half resolution is the evaluator's)."""
    mean_std(config.normalize)  # fail early on a bad mode
    return A.Compose([])
