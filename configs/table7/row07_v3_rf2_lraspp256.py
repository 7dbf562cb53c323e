"""Table 7 row 7: MobileNetV3-Large + RF2, LR-ASPP, F=256.
Paper: 72.37 mIoU, 1.63M params, 10.33B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row07_v3_rf2_lraspp256",
    model=ModelConfig(backbone="mobilenet_v3_large", width_mult=1.0, rf2=True, head="lraspp", head_channels=256),
)
