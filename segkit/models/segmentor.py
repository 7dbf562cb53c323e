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

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.backbone(images))
        return resize(logits, images.shape[-2:])
