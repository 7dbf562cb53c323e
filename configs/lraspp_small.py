"""LR-ASPP on MobileNetV3-Small with RF2, F=128, output stride 16: Table 7 row 11, the paper's small segmentation
model (68.38 val mIoU), with the recipe of configs/lraspp_large.py."""
from segkit.config import table7_config

config = table7_config(11)
config.name = "lraspp_small"
