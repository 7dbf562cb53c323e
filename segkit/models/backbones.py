"""The backbones segkit builds, by name: ``segkit.config.BACKBONE_NAMES``, the values ``ModelConfig.backbone`` may
take, each with its builder (``segkit.models.build_backbone`` builds from here). Each entry takes ``width_mult``,
``output_stride`` and ``rf2`` and returns the ``Backbone``.
"""
from __future__ import annotations

from functools import partial

from segkit.models.mobilenetv2 import mobilenet_v2
from segkit.models.mobilenetv3 import mobilenet_v3

BACKBONES = {
    "mobilenet_v3_large": partial(mobilenet_v3, "large"),
    "mobilenet_v3_small": partial(mobilenet_v3, "small"),
    "mobilenet_v3_large_minimal": partial(mobilenet_v3, "large", minimal=True),
    "mobilenet_v3_small_minimal": partial(mobilenet_v3, "small", minimal=True),
    "mobilenet_v2": mobilenet_v2,
}
