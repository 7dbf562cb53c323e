"""Table 7 row 8: MobileNetV3-Large + RF2, LR-ASPP, F=128 (the paper's Large model).
Paper: 72.36 mIoU, 1.51M params, 9.74B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row08_v3_rf2_lraspp128",
    model=ModelConfig(backbone="mobilenet_v3_large", width_mult=1.0, rf2=True, head="lraspp", head_channels=128),
)
