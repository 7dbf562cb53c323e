"""Running a segmentor on whole images: full or half resolution, test-time augmentation, label maps.

One place for what evaluation, inference and benchmarks share, so that they measure the same thing: half
resolution = the normalised image area-downsampled by 2 (1024x2048 -> 512x1024), the network run there, and its
logits bilinearly upsampled to the original size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

RESOLUTION_SCALES = {"full": 1.0, "half": 0.5}


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area interpolation when shrinking (a 2x2 mean at half resolution), bilinear when enlarging."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrinking = size[0] <= images.shape[-2] and size[1] <= images.shape[-1]
    if shrinking:
        return F.interpolate(images, size=size, mode="area")
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False)


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: relative scales and horizontal flip; probabilities are averaged."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "TTA":
        """``"flip,0.75,1.0,1.25"`` -> TTA(scales=(0.75, 1.0, 1.25), flip=True); empty/None -> no TTA."""
        if not text:
            return cls()
        flip, scales = False, []
        for item in (part.strip() for part in text.split(",") if part.strip()):
            if item == "flip":
                flip = True
                continue
            try:
                scale = float(item)
            except ValueError:
                raise ValueError(f"TTA item {item!r} is neither 'flip' nor a scale like 0.75") from None
            if scale <= 0:
                raise ValueError(f"TTA scale {scale} must be positive")
            scales.append(scale)
        return cls(scales=tuple(scales) or (1.0,), flip=flip)

    @property
    def is_identity(self) -> bool:
        return self.scales == (1.0,) and not self.flip


@torch.inference_mode()
def predict_scores(model: nn.Module, images: torch.Tensor, resolution: str = "full", tta: TTA = TTA()) -> torch.Tensor:
    """Class scores (N, C, H, W) at the input size: logits without TTA, averaged softmax probabilities with it.

    ``images`` are normalised (N, 3, H, W); the network runs at ``RESOLUTION_SCALES[resolution]`` times the size
    (times each TTA scale)."""
    size = tuple(images.shape[-2:])
    base = RESOLUTION_SCALES[resolution]
    if tta.is_identity:
        return upsample_logits(model(resize_images(images, scaled_size(size, base))), size)
    total = None
    for scale in tta.scales:
        scaled = resize_images(images, scaled_size(size, base * scale))
        views = [scaled, scaled.flip(-1)] if tta.flip else [scaled]
        for index, view in enumerate(views):
            logits = model(view)
            if index == 1:
                logits = logits.flip(-1)
            probs = upsample_logits(logits, size).softmax(dim=1)
            total = probs if total is None else total + probs
    return total / (len(tta.scales) * (2 if tta.flip else 1))


def to_labels(scores: torch.Tensor) -> torch.Tensor:
    """Per-pixel class (N, H, W) uint8; ``max(1).indices`` is several times faster than ``argmax(1)`` on CPU."""
    return scores.max(dim=1).indices.to(torch.uint8)
