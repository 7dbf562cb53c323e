"""Table 7 row 10: MobileNetV2 0.35 + RF2, LR-ASPP, F=128.
Paper: 66.83 mIoU, 0.16M params, 2.54B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row10_v2x035_rf2_lraspp128",
    model=ModelConfig(backbone="mobilenet_v2", width_mult=0.35, rf2=True, head="lraspp", head_channels=128),
)
