"""Table 7 row 11: MobileNetV3-Small + RF2, LR-ASPP, F=128 (the paper's Small model).
Paper: 68.38 mIoU, 0.47M params, 2.90B MAdds (Cityscapes val, 1024x2048).
Training recipe: the authors' Cityscapes recipe, segkit.config's defaults."""
from segkit.config import Config, ModelConfig

config = Config(
    name="row11_v3small_rf2_lraspp128",
    model=ModelConfig(backbone="mobilenet_v3_small", width_mult=1.0, rf2=True, head="lraspp", head_channels=128),
)
