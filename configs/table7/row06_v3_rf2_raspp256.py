"""Table 7 row 6: MobileNetV3-Large + RF2, R-ASPP, F=256.
Paper: 71.91 mIoU, 1.76M params, 11.24B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row06_v3_rf2_raspp256",
    model=ModelConfig(backbone="mobilenet_v3_large", width_mult=1.0, rf2=True, head="raspp", head_channels=256),
)
