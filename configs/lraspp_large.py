"""LR-ASPP on MobileNetV3-Large with RF2, F=128, output stride 16: Table 7 row 8, the paper's segmentation model
(72.36 val mIoU), with the authors' Cityscapes recipe -- segkit.config's defaults: 769x769 crops after scaling
0.5-2.0, SGD momentum 0.9, lr 0.01, poly 0.9 over 90k iterations, weight decay 4e-5, from scratch with TF's [-1, 1]
input. For torchvision's ImageNet initialisation: --set model.pretrained=imagenet data.normalize=imagenet; for
the authors' slim ImageNet checkpoint: --set model.pretrained=v3-large_224_1.0_float.tgz.
"""
from segkit.config import table7_config

config = table7_config(8)
config.name = "lraspp_large"
