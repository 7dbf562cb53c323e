"""LR-ASPP on MobileNetV3-Large with RF2, F=128, output stride 16: Table 7 row 8, the paper's segmentation model
(72.36 val mIoU; the released TF checkpoint 72.41, trained from scratch).

Recipe (../shared/PAPER.md, "Recipes"): TF DeepLab's Cityscapes setting -- 769x769 crops, scale 0.5-2.0, SGD
momentum 0.9, lr 0.01 with per-iteration poly decay (power 0.9), weight decay 4e-5, 90k iterations -- from scratch
with TF's [-1, 1] input scaling. For ImageNet initialisation use --set model.pretrained=imagenet
data.normalize=imagenet.
"""
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig

config = Config(
    name="lraspp_large",
    model=ModelConfig(
        backbone="mobilenet_v3_large",
        rf2=True,
        output_stride=16,
        head="lraspp",
        head_channels=128,
        pool_crop=(769, 769),  # the gate's 49x49 pool (TF image_pooling_crop_size)
        pool_stride=(4, 5),
    ),
    data=DataConfig(crop_size=(769, 769), scale_range=(0.5, 2.0), normalize="tf"),
    train=TrainConfig(iterations=90_000, batch_size=8, lr=0.01, momentum=0.9, weight_decay=4e-5, poly_power=0.9),
)
