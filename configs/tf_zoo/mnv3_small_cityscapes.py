"""The authors' released MobileNetV3-Small Cityscapes model (DeepLab model zoo,
deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz: 68.99 % val mIoU, no ImageNet pre-training).

Flags as the Large model's (configs/tf_zoo/mnv3_large_cityscapes.py) with mobilenet_v3_small_seg: RF2,
output_stride=32, LR-ASPP F=128 with the 769x769 / (4, 5) gate, the 1/8 skip, 19 classes. Convert it with
    python tools/convert_tf.py deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz \
        --config configs/tf_zoo/mnv3_small_cityscapes.py --out mnv3_small_cityscapes.pt
"""
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig

config = Config(
    name="mnv3_small_cityscapes",
    model=ModelConfig(backbone="mobilenet_v3_small", rf2=True, output_stride=32, head="lraspp", head_channels=128,
                      pool_crop=(769, 769), pool_stride=(4, 5)),
    data=DataConfig(crop_size=(769, 769), scale_range=(0.5, 2.0), normalize="tf"),
    train=TrainConfig(iterations=90_000, batch_size=8, lr=0.01, momentum=0.9, weight_decay=4e-5, poly_power=0.9),
)
