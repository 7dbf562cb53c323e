"""Model zoo: ``build_model(model_config)`` turns a ``ModelConfig`` into a ``Segmentor``; ``from_checkpoint(path)``
rebuilds the Segmentor of any segkit checkpoint (trained, or converted from the authors' TF checkpoints)."""
from __future__ import annotations

import dataclasses

from torch import nn

from segkit.checkpoint import load_checkpoint
from segkit.config import HEADS, Config, ModelConfig
from segkit.errors import UserError, abbreviate, check_choice
from segkit.models.backbones import BACKBONES
from segkit.models.blocks import Backbone, zero_init_residual
from segkit.models.heads import LRASPP, RASPP, gate_pool_kernel
from segkit.models.pretrained import load_pretrained
from segkit.models.segmentor import Segmentor
from segkit.paper import CITYSCAPES_CLASSES, TRAINING_CROP

__all__ = ["build_backbone", "build_model", "from_checkpoint", "load_model", "Segmentor", "LRASPP", "RASPP"]


def build_backbone(config: ModelConfig) -> Backbone:
    """The backbone ``config.backbone`` names (``BACKBONES``), at its width, output stride and RF2."""
    check_choice("model.backbone", config.backbone, BACKBONES, "model.backbone")  # a config nobody validated
    build = BACKBONES[config.backbone]
    return build(width_mult=config.width_mult, output_stride=config.output_stride, rf2=config.rf2)


def build_model(config: ModelConfig, classes: tuple[str, ...] | None = None) -> Segmentor:
    """Build the segmentor of ``config`` with random weights, then load ``config.pretrained`` if asked.
    ``classes``: the names of the classes the outputs mean (the data's class table; default Cityscapes'), which
    decide what a segkit checkpoint's classifiers give (``segkit.models.pretrained.load_segkit``)."""
    check_choice("model.head", config.head, HEADS, "model.head")
    backbone = build_backbone(config)
    # An unresolved config (pool_crop None: "the training crop") gets the authors' crop, data.crop_size's default.
    pool_crop = config.pool_crop or TRAINING_CROP
    pool_kernel = None if config.global_pool else gate_pool_kernel(pool_crop, config.output_stride)
    # An unresolved config (num_classes None: "the class table's") gets Cityscapes' 19 classes.
    num_classes = config.num_classes or CITYSCAPES_CLASSES
    channels = dict(low_channels=backbone.low_channels, high_channels=backbone.high_channels,
                    num_classes=num_classes, channels=config.head_channels)
    if config.head == "lraspp":
        skip = True if config.skip is None else config.skip
        head = LRASPP(**channels, pool_kernel=pool_kernel, pool_stride=config.pool_stride, skip=skip)
    else:
        # R-ASPP's image pooling is global (DeepLabv3); the crop-derived pool is LR-ASPP's gate.
        skip = False if config.skip is None else config.skip
        head = RASPP(**channels, pool_kernel=None, skip=skip)
    model = Segmentor(backbone, head, num_classes)
    if config.bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = config.bn_momentum
    if config.zero_init_residual:
        zero_init_residual(model.backbone)
    if config.pretrained:
        load_pretrained(model, config.backbone, config.pretrained, classes, config.map_classes_by_name)
    return model


def load_model(path, map_location="cpu"):
    """Build the segmentor a checkpoint describes and load its weights: ``(model, config, checkpoint)``; weights
    that do not fit it are one UserError naming the differing keys. Pretrained initialisation is never re-run (the
    weights come from the checkpoint)."""
    checkpoint = load_checkpoint(path, map_location=map_location)
    config = Config.from_dict(checkpoint["config"])
    model = build_model(dataclasses.replace(config.model, pretrained=""))
    state = checkpoint["model"]
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        details = []
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", mismatched)):
            if keys:
                details.append(f"{title}: {abbreviate(keys, 3)}")
        raise UserError(f"checkpoint {path} does not fit the {config.model.backbone}/{config.model.head} model "
                        f"({'; '.join(details)}); use the config it was trained with.")
    model.load_state_dict(state)
    return model, config, checkpoint


def from_checkpoint(path) -> Segmentor:
    """The Segmentor of a segkit checkpoint (trained, or converted by tools/convert_tf.py), in eval mode on the CPU."""
    return load_model(path)[0].eval()
