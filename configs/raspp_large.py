"""R-ASPP on MobileNetV3-Large with RF2, F=256, output stride 16: Table 7 row 6 (71.91 val mIoU). No low-level
skip, as in the paper's R-ASPP rows (add one with --set model.skip=true)."""
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig

config = Config(
    name="raspp_large",
    model=ModelConfig(backbone="mobilenet_v3_large", rf2=True, output_stride=16, head="raspp", head_channels=256),
    data=DataConfig(crop_size=(769, 769), scale_range=(0.5, 2.0), normalize="tf"),
    train=TrainConfig(iterations=90_000, batch_size=8, lr=0.01, momentum=0.9, weight_decay=4e-5, poly_power=0.9),
)
