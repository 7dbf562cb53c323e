"""Pieces shared by the MobileNetV2 and MobileNetV3 backbones: the inverted-residual block, the slim
output-stride (atrous) rule, and the backbone container that returns ``{"low", "high"}`` features."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

# The authors' gate constant (slim mobilenet_v3 `relu6(x + 3) * 0.16667`, deeplab's q_sigmoid): a literal, not 1/6,
# so a gate saturates at 1.00002. /6 moves the logits of their checkpoints by ~1e-3 (docs/paper.md#mutations).
TF_GATE_SCALE = 0.16667


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without dropping more than 10 % (TF ``_make_divisible``)."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


class TFHardSigmoid(nn.Module):
    """``relu6(x + 3) * 0.16667``: the hard-sigmoid of the SE gates and of the LR-ASPP gate in the TF code."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(x + 3.0) * TF_GATE_SCALE


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF ``padding='SAME'`` along one axis: (before, after), the odd pixel after (bottom/right)."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A strided convolution padded as TF's ``SAME``. On odd sizes (every size on segkit's pixel grid) that is
    PyTorch's symmetric padding; on even sizes TF pads one pixel less on top/left, and symmetric padding would
    shift every feature by a pixel (docs/paper.md#tf-padding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (top, bottom), (left, right) = (
            same_padding(x.shape[-2 + axis], self.kernel_size[axis], self.stride[axis], self.dilation[axis])
            for axis in (0, 1))
        if (top, bottom, left, right) == (self.padding[0],) * 2 + (self.padding[1],) * 2:
            return super().forward(x)
        return F.conv2d(F.pad(x, (left, right, top, bottom)), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


def conv_norm_act(in_channels: int, out_channels: int, kernel: int, stride: int = 1, dilation: int = 1,
                  groups: int = 1, norm_layer: Callable[..., nn.Module] = nn.BatchNorm2d,
                  activation: Callable[..., nn.Module] | None = None) -> Conv2dNormActivation:
    """torchvision's conv + BN + activation (its module names, so its weights load), strided convs TF-``SAME``."""
    layer = Conv2dNormActivation(in_channels, out_channels, kernel, stride=stride, dilation=dilation, groups=groups,
                                 norm_layer=norm_layer, activation_layer=activation)
    if stride > 1:
        conv = layer[0]
        layer[0] = SameConv2d(in_channels, out_channels, kernel, stride=stride, padding=conv.padding,
                              dilation=dilation, groups=groups, bias=conv.bias is not None)
    return layer


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
            layers.append(conv_norm_act(in_channels, expanded, 1, norm_layer=norm_layer, activation=activation))
        layers.append(conv_norm_act(expanded, expanded, kernel, stride, dilation, groups=expanded,
                                    norm_layer=norm_layer, activation=activation))
        self.depthwise_index = len(layers) - 1
        if use_se:
            squeeze = make_divisible(expanded // 4, 8)
            layers.append(SqueezeExcitation(expanded, squeeze, scale_activation=TFHardSigmoid))
        layers.append(conv_norm_act(expanded, out_channels, 1, norm_layer=norm_layer))
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

    ``low_index`` names the block whose depthwise output is the low-level feature (``low_channels`` wide);
    ``tf_scope`` is the variable scope of the same network in the authors' TF checkpoints (``tf_weights``).
    """

    def __init__(self, features: list[nn.Module], low_index: int, output_stride: int, tf_scope: str):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.low_index = low_index
        self.output_stride = output_stride
        self.tf_scope = tf_scope
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
