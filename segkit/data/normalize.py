"""The one place where photos are normalised: uint8 RGB -> the network's float input (``data.normalize``: "tf" or
"imagenet"), and back. PyTorch is imported by the two functions that make or read tensors."""
from __future__ import annotations

import numpy as np

from segkit.config import NORMALIZE_MODES
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


def image_to_tensor(image: np.ndarray, mode: str):
    """uint8 RGB (H, W, 3) -> normalised float32 tensor (3, H, W): ``normalize`` computed in torch, in place on
    one buffer (the same float32 operations, so the same values, in half the time of numpy's). The tensor keeps
    the photo's interleaved layout (channels_last strides), which oneDNN convolutions read without a reorder."""
    import torch

    scale, offset = (torch.from_numpy(v).view(3, 1, 1) for v in scale_offset(mode))
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    return tensor.mul_(scale).sub_(offset)


def tensor_to_image(images, mode: str) -> np.ndarray:
    """The inverse of ``image_to_tensor`` for a batch of one: normalised (1, 3, H, W) -> uint8 RGB (H, W, 3),
    exact for tensors made from uint8 photos (the float32 error of the normalisation is far below half a level)."""
    import torch

    scale, offset = (torch.from_numpy(v).view(3, 1, 1) for v in scale_offset(mode))
    pixels = ((images[0].float().cpu() + offset) / scale).round_().clamp_(0, 255)
    return np.ascontiguousarray(pixels.to(torch.uint8).permute(1, 2, 0).numpy())
