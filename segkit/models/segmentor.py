"""Segmentor: backbone features -> head logits -> bilinear upsample to the input size."""
from __future__ import annotations

import torch
from torch import nn

from segkit.models.heads import resize


class Segmentor(nn.Module):
    """``Segmentor(x)`` maps images (N, 3, H, W) to logits (N, num_classes, H, W)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        init_weights(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(images))
        return resize(logits, images.shape[-2:])


def init_weights(model: nn.Module) -> None:
    """He initialisation (fan-out) for convolutions, unit BatchNorm, as torchvision's MobileNets: PyTorch's
    default conv init shrinks the signal layer after layer, which matters when training from scratch."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
