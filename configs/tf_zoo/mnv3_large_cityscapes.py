"""The authors' released MobileNetV3-Large Cityscapes model (DeepLab model zoo,
deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz: 72.41 % val mIoU, no ImageNet pre-training).

Its flags (research/deeplab/g3doc/model_zoo.md): mobilenet_v3_large_seg (RF2), output_stride=32, LR-ASPP with
aspp_convs_filters=128, image_pooling_crop_size=769,769, image_pooling_stride=4,5, decoder_output_stride=8 (the
1/8 skip), 19 classes, TF's [-1, 1] input. Convert it with
    python tools/convert_tf.py deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz \
        --config configs/tf_zoo/mnv3_large_cityscapes.py --out mnv3_large_cityscapes.pt
The training section is the authors' Cityscapes recipe (configs/lraspp_large.py), for fine-tuning.
"""
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig

config = Config(
    name="mnv3_large_cityscapes",
    model=ModelConfig(backbone="mobilenet_v3_large", rf2=True, output_stride=32, head="lraspp", head_channels=128,
                      pool_crop=(769, 769), pool_stride=(4, 5)),
    data=DataConfig(crop_size=(769, 769), scale_range=(0.5, 2.0), normalize="tf"),
    train=TrainConfig(iterations=90_000, batch_size=8, lr=0.01, momentum=0.9, weight_decay=4e-5, poly_power=0.9),
)
