"""MobileNetV3-Large and -Small segmentation backbones (Howard et al. 2019, Tables 1 and 2).

As the authors' TF ``mobilenet_v3_large_seg`` / ``_small_seg``: the network ends at the last 1x1 conv (960 / 576
channels, no pooling and no 1280 / 1024 layer), runs at output stride 32, 16 or 8 by the slim atrous rule, and
with ``rf2=True`` halves the filters of the last block ("RF2", docs/paper.md#rf2). The low-level feature is the
depthwise output of the last stride-8 block (TF ``layer_7`` Large, ``layer_4`` Small).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from torch import nn

from segkit.models.blocks import Backbone, InvertedResidual, atrous_placement, conv_norm_act, make_divisible


@dataclass(frozen=True)
class Bneck:
    """One row of Table 1 / Table 2: a bottleneck block."""

    kernel: int
    expanded: int  # "exp size"
    out: int  # "#out"
    se: bool
    activation: str  # "RE" = ReLU, "HS" = h-swish
    stride: int


# Table 1, MobileNetV3-Large. Index 0 is the stem (conv2d 3x3, 16, HS, stride 2); the rows are indices 1-15;
# index 16 is the last 1x1 conv (960, HS).
LARGE_STEM, LARGE_LAST = 16, 960
LARGE = (
    Bneck(3, 16, 16, False, "RE", 1),  # 1
    Bneck(3, 64, 24, False, "RE", 2),  # 2
    Bneck(3, 72, 24, False, "RE", 1),  # 3
    Bneck(5, 72, 40, True, "RE", 2),  # 4
    Bneck(5, 120, 40, True, "RE", 1),  # 5
    Bneck(5, 120, 40, True, "RE", 1),  # 6  <- low-level feature (depthwise output, 120 ch, stride 8)
    Bneck(3, 240, 80, False, "HS", 2),  # 7
    Bneck(3, 200, 80, False, "HS", 1),  # 8
    Bneck(3, 184, 80, False, "HS", 1),  # 9
    Bneck(3, 184, 80, False, "HS", 1),  # 10
    Bneck(3, 480, 112, True, "HS", 1),  # 11
    Bneck(3, 672, 112, True, "HS", 1),  # 12
    Bneck(5, 672, 160, True, "HS", 2),  # 13  <- RF2: 336 / 80
    Bneck(5, 960, 160, True, "HS", 1),  # 14  <- RF2: 480 / 80
    Bneck(5, 960, 160, True, "HS", 1),  # 15  <- RF2: 480 / 80
)
LARGE_LOW_INDEX, LARGE_RF2_FROM = 6, 13

# Table 2, MobileNetV3-Small. Stem 16 HS stride 2; rows are indices 1-11; index 12 is the last 1x1 conv
# (576, HS; the table's SE there is not in the authors' code).
SMALL_STEM, SMALL_LAST = 16, 576
SMALL = (
    Bneck(3, 16, 16, True, "RE", 2),  # 1
    Bneck(3, 72, 24, False, "RE", 2),  # 2
    Bneck(3, 88, 24, False, "RE", 1),  # 3  <- low-level feature (depthwise output, 88 ch, stride 8)
    Bneck(5, 96, 40, True, "HS", 2),  # 4
    Bneck(5, 240, 40, True, "HS", 1),  # 5
    Bneck(5, 240, 40, True, "HS", 1),  # 6
    Bneck(5, 120, 48, True, "HS", 1),  # 7
    Bneck(5, 144, 48, True, "HS", 1),  # 8
    Bneck(5, 288, 96, True, "HS", 2),  # 9  <- RF2: 144 / 48
    Bneck(5, 576, 96, True, "HS", 1),  # 10 <- RF2: 288 / 48
    Bneck(5, 576, 96, True, "HS", 1),  # 11 <- RF2: 288 / 48
)
SMALL_LOW_INDEX, SMALL_RF2_FROM = 3, 9

ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}


def minimalistic(rows: tuple[Bneck, ...]) -> tuple[Bneck, ...]:
    """MobileNetV3-minimalistic: the same channels with every depthwise 3x3, no SE and ReLU everywhere."""
    return tuple(replace(row, kernel=3, se=False, activation="RE") for row in rows)


def mobilenet_v3(
    variant: str = "large",
    width_mult: float = 1.0,
    output_stride: int = 16,
    rf2: bool = True,
    minimal: bool = False,
) -> Backbone:
    """Build the MobileNetV3 segmentation backbone ``variant`` ("large" or "small")."""
    if variant == "large":
        rows, stem, last, low_index, rf2_from = LARGE, LARGE_STEM, LARGE_LAST, LARGE_LOW_INDEX, LARGE_RF2_FROM
    elif variant == "small":
        rows, stem, last, low_index, rf2_from = SMALL, SMALL_STEM, SMALL_LAST, SMALL_LOW_INDEX, SMALL_RF2_FROM
    else:
        raise ValueError(f"unknown MobileNetV3 variant {variant!r}")
    if minimal:
        rows = minimalistic(rows)
    stem_activation = nn.ReLU if minimal else nn.Hardswish
    # BatchNorm as torchvision's (eps 1e-3 like TF; momentum 0.01) so its ImageNet weights load unchanged.
    norm_layer = partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)

    def width(channels: int, index: int = 0) -> int:
        # RF2 halves the width-rounded filters of the last block (rows rf2_from.. and the last conv): the TF
        # seg backbone's reduction, which halves block 13's expansion too (torchvision's reduced_tail does not).
        rounded = make_divisible(channels * width_mult, 8)
        return rounded // 2 if rf2 and index >= rf2_from else rounded

    placements = atrous_placement([2] + [row.stride for row in rows] + [1], output_stride)
    layers: list[nn.Module] = [conv_norm_act(3, width(stem), 3, 2, norm_layer=norm_layer, activation=stem_activation)]
    in_channels = width(stem)
    for index, (row, place) in enumerate(zip(rows, placements[1:-1]), start=1):
        block = InvertedResidual(in_channels, width(row.expanded, index), width(row.out, index), row.kernel,
                                 place.stride, place.dilation, row.se, ACTIVATIONS[row.activation], norm_layer)
        layers.append(block)
        in_channels = block.out_channels
    layers.append(conv_norm_act(in_channels, width(last, len(rows) + 1), 1, norm_layer=norm_layer,
                                activation=stem_activation))
    return Backbone(layers, low_index=low_index, output_stride=output_stride, tf_scope="MobilenetV3")
