"""LR-ASPP on MobileNetV3-Small with RF2, F=128, output stride 16: Table 7 row 11, the paper's small segmentation
model (68.38 val mIoU; the released TF checkpoint 68.99). Same recipe as lraspp_large.py."""
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig

config = Config(
    name="lraspp_small",
    model=ModelConfig(
        backbone="mobilenet_v3_small",
        rf2=True,
        output_stride=16,
        head="lraspp",
        head_channels=128,
        pool_crop=(769, 769),
        pool_stride=(4, 5),
    ),
    data=DataConfig(crop_size=(769, 769), scale_range=(0.5, 2.0), normalize="tf"),
    train=TrainConfig(iterations=90_000, batch_size=8, lr=0.01, momentum=0.9, weight_decay=4e-5, poly_power=0.9),
)
