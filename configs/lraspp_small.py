"""LR-ASPP on MobileNetV3-Small with RF2, F=128, output stride 16: Table 7 row 11, the paper's small segmentation
model (68.38 val mIoU), with the recipe of configs/lraspp_large.py."""
from pathlib import Path

from segkit.config import read_config

config = read_config(Path(__file__).parent / "table7" / "row11_v3small_rf2_lraspp128.py")
config.name = "lraspp_small"
