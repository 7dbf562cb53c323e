"""R-ASPP on MobileNetV3-Large with RF2, F=256, output stride 16: Table 7 row 6 (71.91 val mIoU), with the recipe
of configs/lraspp_large.py. No low-level skip, as in the paper's R-ASPP rows (add one with --set model.skip=true)."""
from segkit.config import table7_config

config = table7_config(6)
config.name = "raspp_large"
