"""Table 7 row 3: MobileNetV2 + RF2, LR-ASPP, F=256.
Paper: 72.97 mIoU, 1.02M params, 12.83B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row03_v2_rf2_lraspp256",
    model=ModelConfig(backbone="mobilenet_v2", width_mult=1.0, rf2=True, head="lraspp", head_channels=256),
)
