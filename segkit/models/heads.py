"""Segmentation heads of Table 7: R-ASPP (MobileNetV2 paper) and LR-ASPP (MobileNetV3 paper, Figure 10).

Both take the backbone's ``{"low", "high"}`` features and return logits at the low-level feature's resolution
(1/8) when the skip is on, else at the high features' resolution; the segmentor upsamples to the input.
Definitions follow the authors' TF code and flags (docs/paper.md#lr-aspp, #r-aspp), not the paper's figure
alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segkit.models.blocks import TFHardSigmoid


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with align_corners=True, as TF 1.x's resize_bilinear in DeepLab."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=True)


def gate_pool_kernel(crop_size: tuple[int, int], output_stride: int) -> tuple[int, int]:
    """The TF pooling kernel for a training crop: (crop - 1) // OS + 1 feature cells, 49 for 769 at OS16."""
    return tuple((c - 1) // output_stride + 1 for c in crop_size)


class GatePool(nn.Module):
    """VALID average pooling with a fixed kernel and stride in feature cells, the kernel clipped to the
    feature map (so a smaller input, e.g. half resolution, falls back to global pooling along that axis).

    Written with ``avg_pool2d`` on a static kernel, not adaptive pooling, so that ONNX exporters accept it.
    ``kernel=None`` is global average pooling (torchvision's LR-ASPP)."""

    def __init__(self, kernel: tuple[int, int] | None, stride: tuple[int, int]):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])  # int(): a static kernel in traced exports
        if self.kernel is None:
            return x.mean(dim=(2, 3), keepdim=True)
        kernel = (min(self.kernel[0], height), min(self.kernel[1], width))
        return F.avg_pool2d(x, kernel, self.stride)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}"


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)
    )


class LRASPP(nn.Module):
    """Lite R-ASPP (TF ``aspp_with_squeeze_and_excitation`` + sum-merge decoder to logits):

    high branch: 1x1 conv F + BN + ReLU on the 1/16 features;
    gate: avg-pool (49x49, stride (4, 5) at OS16) -> 1x1 conv F with bias -> hard-sigmoid (TF's, x 0.16667) ->
    resize -> multiply;
    decoder: resize to 1/8, 1x1 conv to classes, plus a 1x1 conv to classes of the low-level feature.
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        num_classes: int,
        channels: int = 128,
        pool_kernel: tuple[int, int] | None = (49, 49),
        pool_stride: tuple[int, int] = (4, 5),
        skip: bool = True,
    ):
        super().__init__()
        self.cbr = conv_bn_relu(high_channels, channels)
        self.scale = nn.Sequential(
            GatePool(pool_kernel, pool_stride), nn.Conv2d(high_channels, channels, 1, bias=True), TFHardSigmoid()
        )
        self.high_classifier = nn.Conv2d(channels, num_classes, 1)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1) if skip else None

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        high = features["high"]
        x = self.cbr(high) * resize(self.scale(high), high.shape[-2:])
        if self.low_classifier is None:
            return self.high_classifier(x)
        low = features["low"]
        return self.high_classifier(resize(x, low.shape[-2:])) + self.low_classifier(low)


class RASPP(nn.Module):
    """Reduced ASPP (MobileNetV2 paper; DeepLabv3 without the atrous branches):

    a 1x1 conv F + BN + ReLU branch and an image-pooling branch (pool -> 1x1 conv F + BN + ReLU -> resize),
    concatenated (image feature first, as deeplab's ``concat_projection`` reads them), projected by 1x1 conv F +
    BN + ReLU, dropout, 1x1 classifier. With ``skip`` the same sum-merge decoder as LR-ASPP adds a 1x1 conv to
    classes of the low-level feature (not in the paper's rows).
    """

    def __init__(
        self,
        low_channels: int,
        high_channels: int,
        num_classes: int,
        channels: int = 256,
        pool_kernel: tuple[int, int] | None = None,
        pool_stride: tuple[int, int] = (1, 1),
        skip: bool = False,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.branch = conv_bn_relu(high_channels, channels)
        self.image_pool = nn.Sequential(GatePool(pool_kernel, pool_stride), conv_bn_relu(high_channels, channels))
        self.project = nn.Sequential(conv_bn_relu(2 * channels, channels), nn.Dropout(dropout))
        self.high_classifier = nn.Conv2d(channels, num_classes, 1)
        self.low_classifier = nn.Conv2d(low_channels, num_classes, 1) if skip else None

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        high = features["high"]
        pooled = resize(self.image_pool(high), high.shape[-2:])
        x = self.project(torch.cat([pooled, self.branch(high)], dim=1))
        if self.low_classifier is None:
            return self.high_classifier(x)
        low = features["low"]
        return self.high_classifier(resize(x, low.shape[-2:])) + self.low_classifier(low)
