"""Table 7 row 6: MobileNetV3-Large + RF2, R-ASPP, F=256, with the authors' Cityscapes recipe (segkit.config's
defaults): segkit.config.table7_config builds it from segkit.paper.TABLE7, which also holds the row's published
mIoU, params, MAdds and latency."""
from segkit.config import table7_config

config = table7_config(6)
