"""Segmentor: backbone features -> head logits -> bilinear upsample to the input size."""
from __future__ import annotations

import torch
from torch import nn

from segkit.models.heads import resize

LOW_STRIDE = 8  # the backbones' low-level features: the output of the last stride-8 block

class Segmentor(nn.Module):
    """``Segmentor(x)`` maps images (N, 3, H, W) to logits (N, num_classes, H, W).

    The network runs on the input exactly as given. It is geometrically exact (TF's align_corners resizes map
    cell i of a stride-s map onto pixel s*i) on sizes k * output_stride + 1; the prediction path
    (``segkit.inference``) pads images to such sizes, training crops are chosen on them."""

    def __init__(self, backbone: nn.Module, head: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_classes = num_classes
        init_weights(self)

    @property
    def output_stride(self) -> int:
        """The backbone's total stride: pixel grids for this model are k * output_stride + 1."""
        return self.backbone.output_stride

    @property
    def logits_stride(self) -> int:
        """The stride of ``logits``: the low-level skip's (its features are the last stride-8 block's), else the
        output stride."""
        return LOW_STRIDE if getattr(self.head, "low_classifier", None) is not None else self.output_stride

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits at the head's resolution (``logits_stride``: 1/8 with the low-level skip, else 1/output_stride),
        before the final upsampling: what deploy backends export and label maps are computed from."""
        return self.head(self.backbone(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return resize(self.logits(images), images.shape[-2:])


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
