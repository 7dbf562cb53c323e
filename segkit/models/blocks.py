"""Pieces shared by the MobileNetV2 and MobileNetV3 backbones: the inverted-residual block, the slim
output-stride (atrous) rule, and the backbone container that returns ``{"low", "high"}`` features."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10 % (TF ``_make_divisible``)."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


@dataclass(frozen=True)
class LayerPlacement:
    stride: int  # the stride the layer really runs with
    dilation: int  # its depthwise rate


def atrous_placement(strides: list[int], output_stride: int) -> list[LayerPlacement]:
    """The slim rule (mobilenet.py): walk the layers keeping the running stride; once it has reached
    ``output_stride``, a stride-2 layer runs with stride 1 at the *current* rate and doubles the rate for the
    layers after it. At OS16 the last stride-2 block therefore keeps rate 1 (torchvision dilates it too)."""
    current_stride, rate, placements = 1, 1, []
    for stride in strides:
        if current_stride == output_stride:
            placements.append(LayerPlacement(stride=1, dilation=rate))
            rate *= stride
        else:
            placements.append(LayerPlacement(stride=stride, dilation=1))
            current_stride *= stride
    if current_stride != output_stride:
        raise ValueError(f"output stride {output_stride} is larger than the network's total stride {current_stride}")
    return placements


class InvertedResidual(nn.Module):
    """MobileNetV2/V3 bottleneck: 1x1 expansion, kxk depthwise, optional squeeze-excite, linear 1x1 projection.

    Module names follow torchvision's MobileNetV3 block (``block.0`` … ``block.3``) so its weights load by name.
    """

    def __init__(
        self,
        in_channels: int,
        expanded: int,
        out_channels: int,
        kernel: int,
        stride: int,
        dilation: int,
        use_se: bool,
        activation: Callable[..., nn.Module],
        norm_layer: Callable[..., nn.Module],
    ):
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expanded != in_channels:  # expansion factor 1 has no expansion conv
            layers.append(Conv2dNormActivation(in_channels, expanded, 1, norm_layer=norm_layer,
                                               activation_layer=activation))
        layers.append(Conv2dNormActivation(expanded, expanded, kernel, stride=stride, dilation=dilation,
                                           groups=expanded, norm_layer=norm_layer, activation_layer=activation))
        self.depthwise_index = len(layers) - 1
        if use_se:
            squeeze = make_divisible(expanded // 4, 8)
            layers.append(SqueezeExcitation(expanded, squeeze, scale_activation=nn.Hardsigmoid))
        layers.append(Conv2dNormActivation(expanded, out_channels, 1, norm_layer=norm_layer, activation_layer=None))
        self.block = nn.Sequential(*layers)
        self.out_channels = out_channels
        self.expanded = expanded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_residual else y

    def forward_with_depthwise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Also return the depthwise output (after BN and activation): the TF ``layer_N/depthwise_output``
        endpoint the LR-ASPP decoder taps."""
        y, depthwise = x, x
        for index, layer in enumerate(self.block):
            y = layer(y)
            if index == self.depthwise_index:
                depthwise = y
        return (x + y if self.use_residual else y), depthwise


def zero_init_residual(module: nn.Module) -> None:
    """Zero the projection BatchNorm's scale in every residual bottleneck of ``module``: each block then starts
    as the identity, so a deep network trains from scratch like a shallow one at first (Goyal et al. 2017)."""
    for block in module.modules():
        if isinstance(block, InvertedResidual) and block.use_residual:
            nn.init.zeros_(block.block[-1][1].weight)


class Backbone(nn.Module):
    """A stack of layers (stem, bottlenecks, last conv) that returns the low-level skip and the final features.

    ``low_index`` names the block whose depthwise output is the low-level feature (``low_channels`` wide).
    """

    def __init__(self, features: list[nn.Module], low_index: int, output_stride: int):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.low_index = low_index
        self.output_stride = output_stride
        self.low_channels = self.features[low_index].expanded
        last = self.features[-1]
        self.high_channels = last.out_channels if isinstance(last, InvertedResidual) else last[0].out_channels

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        low = x
        for index, layer in enumerate(self.features):
            if index == self.low_index:
                x, low = layer.forward_with_depthwise(x)
            else:
                x = layer(x)
        return {"low": low, "high": x}
