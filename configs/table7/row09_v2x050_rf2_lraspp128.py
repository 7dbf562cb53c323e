"""Table 7 row 9: MobileNetV2 0.5 + RF2, LR-ASPP, F=128.
Paper: 68.57 mIoU, 0.28M params, 4.00B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row09_v2x050_rf2_lraspp128",
    model=ModelConfig(backbone="mobilenet_v2", width_mult=0.5, rf2=True, head="lraspp", head_channels=128),
)
