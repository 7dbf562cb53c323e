"""Table 7 row 2: MobileNetV2 + RF2, R-ASPP, F=256.
Paper: 72.56 mIoU, 1.15M params, 13.68B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row02_v2_rf2_raspp256",
    model=ModelConfig(backbone="mobilenet_v2", width_mult=1.0, rf2=True, head="raspp", head_channels=256),
)
