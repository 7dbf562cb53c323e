"""What segkit takes from "Searching for MobileNetV3" as published: Table 7 (Cityscapes val), the numbers segkit is
checked against, and the authors' training crop.

Params and MAdds are the whole network, MAdds at 1024x2048; CPU(f) / CPU(h) are seconds on one large core of a
Pixel 3 at 1024x2048 / 512x1024. ``tools/benchmark.py --table7`` prints ours beside these, row by row.
"""
from __future__ import annotations

from dataclasses import dataclass

# (height, width) of the authors' Cityscapes training crops, also their LR-ASPP gate's image_pooling_crop_size
# (docs/paper.md#training-recipes): the default of data.crop_size and of the gate's pool window.
TRAINING_CROP = (769, 769)
# The Cityscapes training classes the paper's models predict (the classes of segkit.data.classes' Cityscapes table).
CITYSCAPES_CLASSES = 19


@dataclass(frozen=True)
class Table7Row:
    n: int
    backbone: str
    width_mult: float
    rf2: bool
    head: str
    head_channels: int  # F
    miou: float
    params: float  # millions
    madds: float  # billions
    cpu_full: float  # seconds
    cpu_half: float  # seconds


V2, V3, V3S = "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"
TABLE7 = (
    Table7Row(1, V2, 1.0, False, "raspp", 256, 72.84, 2.11, 21.29, 4.20, 1.07),
    Table7Row(2, V2, 1.0, True, "raspp", 256, 72.56, 1.15, 13.68, 3.23, 0.819),
    Table7Row(3, V2, 1.0, True, "lraspp", 256, 72.97, 1.02, 12.83, 3.16, 0.808),
    Table7Row(4, V2, 1.0, True, "lraspp", 128, 72.74, 0.98, 12.57, 3.12, 0.797),
    Table7Row(5, V3, 1.0, False, "raspp", 256, 72.64, 3.60, 18.43, 4.17, 1.07),
    Table7Row(6, V3, 1.0, True, "raspp", 256, 71.91, 1.76, 11.24, 3.01, 0.765),
    Table7Row(7, V3, 1.0, True, "lraspp", 256, 72.37, 1.63, 10.33, 2.96, 0.750),
    Table7Row(8, V3, 1.0, True, "lraspp", 128, 72.36, 1.51, 9.74, 2.87, 0.730),
    Table7Row(9, V2, 0.5, True, "lraspp", 128, 68.57, 0.28, 4.00, 1.61, 0.402),
    Table7Row(10, V2, 0.35, True, "lraspp", 128, 66.83, 0.16, 2.54, 1.31, 0.323),
    Table7Row(11, V3S, 1.0, True, "lraspp", 128, 68.38, 0.47, 2.90, 1.38, 0.349),
)
