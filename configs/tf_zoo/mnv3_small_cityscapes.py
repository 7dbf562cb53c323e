"""The authors' released MobileNetV3-Small Cityscapes model (DeepLab model zoo,
deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz: 68.99 % val mIoU, no ImageNet pre-training).

Table 7 row 11's network at the zoo's output_stride=32 (docs/paper.md#the-released-models). Convert it with
    python tools/convert_tf.py deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz \\
        --config configs/tf_zoo/mnv3_small_cityscapes.py --out mnv3_small_cityscapes.pt
"""
from segkit.config import table7_config

config = table7_config(11)
config.name = "mnv3_small_cityscapes"
config.model.output_stride = 32
