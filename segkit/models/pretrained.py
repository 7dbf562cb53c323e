"""ImageNet initialisation from torchvision's MobileNetV2 / MobileNetV3 classification weights.

Our V3 blocks carry torchvision's module names, so its keys load as they are; torchvision's V2 blocks name the
projection conv and its BatchNorm separately (``conv.2``, ``conv.3``), which ``_v2_key`` translates. Layers
whose shape differs (the RF2 tail, other widths, minimalistic kernels) keep their initialisation and are listed
in the report, as are the classifier weights we do not use.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segkit.errors import UserError


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)  # kept at initialisation
    missing: list[str] = field(default_factory=list)  # ours, absent from the source: kept at initialisation
    unused: list[str] = field(default_factory=list)  # the source's, with no place in our backbone

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from torchvision weights"]
        for title, keys in (("kept at initialisation (shape differs)", self.shape_mismatch),
                            ("kept at initialisation (not in the weights)", self.missing),
                            ("unused from the weights", self.unused)):
            if keys:
                lines.append(f"{title}: {len(keys)}: {_abbreviate(keys)}")
        return "\n".join(lines)


def _abbreviate(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", … (+{len(keys) - limit})" if len(keys) > limit else "")


_V2_BLOCK_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.(.+)$")


def _v2_key(key: str, backbone: nn.Module) -> str:
    """torchvision MobileNetV2 ``features.i.conv.k.*`` -> our ``features.i.block.*`` (same layers, in order)."""
    match = _V2_BLOCK_KEY.match(key)
    if not match:
        return key
    index, k, rest = int(match[1]), int(match[2]), match[3]
    if index >= len(backbone.features) or not hasattr(backbone.features[index], "block"):
        return key
    last = len(backbone.features[index].block) - 1  # our projection Conv2dNormActivation
    if k < last:
        return f"features.{index}.block.{k}.{rest}"
    return f"features.{index}.block.{last}.{k - last}.{rest}"  # conv.{last} -> .0 (conv), conv.{last+1} -> .1 (BN)


def load_torchvision(backbone: nn.Module, state_dict_or_path: dict | str | Path) -> LoadReport:
    """Copy a torchvision ``mobilenet_v3_large/small`` or ``mobilenet_v2`` state dict into ``backbone``."""
    source = _read_state_dict(state_dict_or_path)
    is_v2 = any(_V2_BLOCK_KEY.match(key) for key in source)
    target = backbone.state_dict()
    report, updated, used = LoadReport(), {}, set()
    for key, value in source.items():
        ours = _v2_key(key, backbone) if is_v2 else key
        if ours not in target:
            report.unused.append(key)
            continue
        used.add(ours)
        if target[ours].shape != value.shape:
            report.shape_mismatch.append(ours)
            continue
        updated[ours] = value
        report.loaded.append(ours)
    report.missing = [key for key in target if key not in used]
    backbone.load_state_dict({**target, **updated})
    return report


def _read_state_dict(state_dict_or_path) -> dict:
    if isinstance(state_dict_or_path, dict):
        return state_dict_or_path
    path = Path(state_dict_or_path)
    if not path.is_file():
        raise UserError(f"pretrained weights {path} do not exist; pass a torchvision state dict file "
                        "or model.pretrained=imagenet.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, pickle of another kind, ...
        raise UserError(f"could not read pretrained weights {path} ({type(exc).__name__}); "
                        "pass a torchvision state dict saved with torch.save.") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a checkpoint wrapping the state dict
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"pretrained weights {path} are not a state dict of tensors.")
    return state


def imagenet_state_dict(backbone_name: str) -> dict:
    """torchvision's ImageNet weights for ``backbone_name``, via its weights API (downloads on first use)."""
    from torchvision import models

    weights = {
        "mobilenet_v3_large": models.MobileNet_V3_Large_Weights.IMAGENET1K_V1,
        "mobilenet_v3_small": models.MobileNet_V3_Small_Weights.IMAGENET1K_V1,
        "mobilenet_v2": models.MobileNet_V2_Weights.IMAGENET1K_V1,
    }.get(backbone_name)
    if weights is None:
        raise UserError(f"torchvision has no ImageNet weights for {backbone_name}; "
                        "set model.pretrained to a state dict file or leave it empty.")
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # offline: URLError / OSError / RuntimeError from the hub download
        raise UserError(f"could not download torchvision's {backbone_name} ImageNet weights ({exc}); "
                        "this machine may be offline: download them elsewhere and set model.pretrained=PATH.") from None


def load_imagenet(backbone: nn.Module, backbone_name: str, spec: str) -> LoadReport:
    """``spec`` is "imagenet" (torchvision weights API) or a path to a torchvision state dict."""
    source = imagenet_state_dict(backbone_name) if spec == "imagenet" else spec
    report = load_torchvision(backbone, source)
    print(report.summary())
    return report
