"""segkit: MobileNetV3 segmentation (LR-ASPP / R-ASPP) for Cityscapes, after "Searching for MobileNetV3" §6.4."""
__version__ = "0.1.0"
