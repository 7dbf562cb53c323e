"""Table 7 row 1: MobileNetV2, R-ASPP, F=256.
Paper: 72.84 mIoU, 2.11M params, 21.29B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row01_v2_raspp256",
    model=ModelConfig(backbone="mobilenet_v2", width_mult=1.0, rf2=False, head="raspp", head_channels=256),
)
