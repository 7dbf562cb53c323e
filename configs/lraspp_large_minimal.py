"""LR-ASPP on MobileNetV3-Large-minimalistic (3x3 depthwise only, no SE, ReLU everywhere) with RF2, F=128: the
hardware-friendly variant of the paper's Large model, with its recipe (configs/lraspp_large.py)."""
from pathlib import Path

from segkit.config import read_config

config = read_config(Path(__file__).parent / "lraspp_large.py")
config.name = "lraspp_large_minimal"
config.model.backbone = "mobilenet_v3_large_minimal"
