"""Table 7 row 10: MobileNetV2 0.35 + RF2, LR-ASPP, F=128, with the authors' Cityscapes recipe (segkit.config's
defaults): segkit.config.table7_config builds it from segkit.paper.TABLE7, which also holds the row's published
mIoU, params, MAdds and latency."""
from segkit.config import table7_config

config = table7_config(10)
