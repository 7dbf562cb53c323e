"""The authors' released MobileNetV3-Small Cityscapes model (DeepLab model zoo,
deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz: 68.99 % val mIoU, no ImageNet pre-training).

Table 7 row 11's network at the zoo's output_stride=32 (docs/paper.md#the-released-models). Convert it with
    python tools/convert_tf.py deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz \\
        --config configs/tf_zoo/mnv3_small_cityscapes.py --out mnv3_small_cityscapes.pt
"""
from pathlib import Path

from segkit.config import read_config

config = read_config(Path(__file__).parents[1] / "table7" / "row11_v3small_rf2_lraspp128.py")
config.name = "mnv3_small_cityscapes"
config.model.output_stride = 32
