"""LR-ASPP on MobileNetV3-Small-minimalistic (3x3 depthwise only, no SE, ReLU everywhere) with RF2, F=128, with
the recipe of configs/lraspp_large.py."""
from pathlib import Path

from segkit.config import read_config

config = read_config(Path(__file__).parent / "lraspp_small.py")
config.name = "lraspp_small_minimal"
config.model.backbone = "mobilenet_v3_small_minimal"
