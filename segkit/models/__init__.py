"""Model zoo: ``build_model(model_config)`` turns a ``ModelConfig`` into a ``Segmentor``."""
from __future__ import annotations

from torch import nn

from segkit.config import ModelConfig
from segkit.models.blocks import Backbone, zero_init_residual
from segkit.models.heads import LRASPP, RASPP, gate_pool_kernel
from segkit.models.mobilenetv2 import mobilenet_v2
from segkit.models.mobilenetv3 import mobilenet_v3
from segkit.models.segmentor import Segmentor

__all__ = ["build_backbone", "build_model", "Segmentor", "LRASPP", "RASPP"]


def build_backbone(config: ModelConfig) -> Backbone:
    common = dict(width_mult=config.width_mult, output_stride=config.output_stride, rf2=config.rf2)
    if config.backbone == "mobilenet_v2":
        return mobilenet_v2(**common)
    variant = "large" if config.backbone.startswith("mobilenet_v3_large") else "small"
    return mobilenet_v3(variant, minimal=config.backbone.endswith("_minimal"), **common)


def build_model(config: ModelConfig) -> Segmentor:
    """Build the segmentor of ``config`` with random weights, then load ImageNet weights if asked."""
    backbone = build_backbone(config)
    pool_kernel = None if config.global_pool else gate_pool_kernel(config.pool_crop, config.output_stride)
    channels = dict(low_channels=backbone.low_channels, high_channels=backbone.high_channels,
                    num_classes=config.num_classes, channels=config.head_channels)
    if config.head == "lraspp":
        skip = True if config.skip is None else config.skip
        head = LRASPP(**channels, pool_kernel=pool_kernel, pool_stride=config.pool_stride, skip=skip)
    else:
        # R-ASPP's image pooling is global (DeepLabv3); the crop-derived pool is LR-ASPP's gate.
        skip = False if config.skip is None else config.skip
        head = RASPP(**channels, pool_kernel=None, skip=skip, dropout=config.dropout)
    model = Segmentor(backbone, head, config.num_classes)
    if config.bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = config.bn_momentum
    if config.zero_init_residual:
        zero_init_residual(model.backbone)
    if config.pretrained:
        from segkit.models.pretrained import load_imagenet

        load_imagenet(model.backbone, config.backbone, config.pretrained)
    return model
