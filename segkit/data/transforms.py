"""The training augmentation pipeline (albumentations 2.x), imported only where a training data set is built.

Pipelines work on uint8 RGB (H, W, 3) images and uint8 trainId (H, W) masks; normalisation happens after them
(``segkit.data.normalize.image_to_tensor``), so padding can use the normalisation mean and become exactly 0 in the
network's input. Evaluation has no pipeline: images as they are (half resolution is the evaluator's).
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

from segkit.config import DataConfig
from segkit.data.classes import IGNORE_INDEX
from segkit.data.normalize import mean_std


def train_transform(config: DataConfig, jitter: bool = True, seed: int | None = None) -> A.Compose:
    """Random scale (config.scale_range, always applied), pad to the crop, random crop, flip, photometric jitter.

    A scaled image smaller than the crop is padded bottom/right, as deeplab pads (and as the prediction path pads
    images to the pixel grid), with the mean pixel (0 after normalisation) and the ignore label.

    ``jitter=False`` (``data.color_jitter``) leaves colours untouched (also for tests of geometric alignment).
    ``seed`` makes the sequence reproducible; DataLoader workers are re-seeded by
    ``segkit.data.dataset.worker_init_fn``.
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
