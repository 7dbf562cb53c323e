"""LR-ASPP on MobileNetV3-Small-minimalistic (3x3 depthwise only, no SE, ReLU everywhere) with RF2, F=128.
Same recipe as lraspp_large.py."""
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig

config = Config(
    name="lraspp_small_minimal",
    model=ModelConfig(backbone="mobilenet_v3_small_minimal", rf2=True, output_stride=16, head="lraspp",
                      head_channels=128),
    data=DataConfig(crop_size=(769, 769), scale_range=(0.5, 2.0), normalize="tf"),
    train=TrainConfig(iterations=90_000, batch_size=8, lr=0.01, momentum=0.9, weight_decay=4e-5, poly_power=0.9),
)
