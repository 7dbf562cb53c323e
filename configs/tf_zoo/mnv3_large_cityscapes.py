"""The authors' released MobileNetV3-Large Cityscapes model (DeepLab model zoo,
deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz: 72.41 % val mIoU, no ImageNet pre-training).

Table 7 row 8's network at the zoo's output_stride=32; its other flags are the row's (RF2, LR-ASPP F=128 with the
769x769 / (4, 5) gate, the 1/8 skip, 19 classes, TF's [-1, 1] input; docs/paper.md#the-released-models).
Convert it with
    python tools/convert_tf.py deeplab_mnv3_large_cityscapes_trainfine_2019_11_15.tar.gz \\
        --config configs/tf_zoo/mnv3_large_cityscapes.py --out mnv3_large_cityscapes.pt
The training sections are the authors' Cityscapes recipe, for fine-tuning.
"""
from segkit.config import table7_config

config = table7_config(8)
config.name = "mnv3_large_cityscapes"
config.model.output_stride = 32
