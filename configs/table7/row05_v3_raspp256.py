"""Table 7 row 5: MobileNetV3-Large, R-ASPP, F=256.
Paper: 72.64 mIoU, 3.60M params, 18.43B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row05_v3_raspp256",
    model=ModelConfig(backbone="mobilenet_v3_large", width_mult=1.0, rf2=False, head="raspp", head_channels=256),
)
