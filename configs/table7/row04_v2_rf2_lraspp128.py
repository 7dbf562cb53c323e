"""Table 7 row 4: MobileNetV2 + RF2, LR-ASPP, F=128.
Paper: 72.74 mIoU, 0.98M params, 12.57B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row04_v2_rf2_lraspp128",
    model=ModelConfig(backbone="mobilenet_v2", width_mult=1.0, rf2=True, head="lraspp", head_channels=128),
)
