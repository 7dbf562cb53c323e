"""MobileNetV2 segmentation backbone (Sandler et al. 2018, Table 2) for Table 7 rows 1-4, 9 and 10.

As DeepLab's MobileNetV2 feature extractor: the network ends at the 320-channel layer (no 1280 conv), runs at
output stride 32, 16 or 8 by the slim atrous rule, and with ``rf2=True`` halves the filters of the last block.
The low-level feature is the depthwise output of the last stride-8 block (TF ``layer_7``, 192 channels).
"""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from segkit.models.blocks import Backbone, InvertedResidual, atrous_placement, conv_norm_act, make_divisible


@dataclass(frozen=True)
class Stage:
    """One row of MobileNetV2 Table 2: ``n`` bottlenecks with expansion ``t`` and ``c`` outputs; the first
    has stride ``s``."""

    t: int
    c: int
    n: int
    s: int


STEM = 32  # conv2d 3x3, stride 2
STAGES = (
    Stage(1, 16, 1, 1),  # block 1
    Stage(6, 24, 2, 2),  # blocks 2-3
    Stage(6, 32, 3, 2),  # blocks 4-6  <- block 6: low-level feature (depthwise output, 192 ch, stride 8)
    Stage(6, 64, 4, 2),  # blocks 7-10
    Stage(6, 96, 3, 1),  # blocks 11-13
    Stage(6, 160, 3, 2),  # blocks 14-16  <- RF2: outputs 80
    Stage(6, 320, 1, 1),  # block 17      <- RF2: output 160
)
LOW_INDEX = 6
RF2_FROM = 14  # RF2 halves blocks 14-17: the stages after the last stride-2 block, as in MobileNetV3


def mobilenet_v2(width_mult: float = 1.0, output_stride: int = 16, rf2: bool = True) -> Backbone:
    """Build the MobileNetV2 segmentation backbone.

    Widths: every output ``make_divisible(c * width, 8)``, expansions ``make_divisible(t * input, 8)``. RF2
    halves the *rounded* outputs of blocks 14-17, so their expansions (``t`` times the halved input) follow;
    this reproduces Table 7's parameters and MAdds for widths 1.0, 0.5 and 0.35 (rounding before halving
    overshoots width 0.35 by 5 %).
    """
    blocks = [(st.t, st.c, st.s if i == 0 else 1) for st in STAGES for i in range(st.n)]
    placements = atrous_placement([2] + [s for _, _, s in blocks], output_stride)
    # torchvision's BatchNorm defaults (eps 1e-5) so its ImageNet weights load unchanged.
    norm_layer = nn.BatchNorm2d
    in_channels = make_divisible(STEM * width_mult, 8)
    layers: list[nn.Module] = [conv_norm_act(3, in_channels, 3, 2, norm_layer=norm_layer, activation=nn.ReLU6)]
    for index, ((t, c, _), place) in enumerate(zip(blocks, placements[1:]), start=1):
        out_channels = make_divisible(c * width_mult, 8)
        if rf2 and index >= RF2_FROM:
            out_channels //= 2
        expanded = in_channels if t == 1 else make_divisible(in_channels * t, 8)
        layers.append(InvertedResidual(in_channels, expanded, out_channels, 3, place.stride, place.dilation,
                                       use_se=False, activation=nn.ReLU6, norm_layer=norm_layer))
        in_channels = out_channels
    return Backbone(layers, low_index=LOW_INDEX, output_stride=output_stride, tf_scope="MobilenetV2")
