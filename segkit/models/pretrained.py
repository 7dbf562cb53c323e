"""Initialisation from pretrained weights (``model.pretrained``): torchvision's ImageNet MobileNets, the authors'
slim ImageNet checkpoints (TF), or any segkit checkpoint (e.g. a converted DeepLab model, for fine-tuning).

torchvision: our V3 blocks carry torchvision's module names, so its keys load as they are; torchvision's V2 blocks
name the projection conv and its BatchNorm separately (``conv.2``, ``conv.3``), which ``_v2_key`` translates.
slim (``v3-large_224_1.0_float`` etc.): the TF naming scheme of ``segkit.models.tf_weights``; their [-1, 1] input
scaling is data.normalize="tf", their BatchNorm eps and padding are our MobileNetV3's. Layers whose shape differs
(the RF2 tail, other widths, minimalistic kernels) keep their initialisation and are listed in the report, as are
the source's tensors we have no place for (classifiers).
"""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from segkit.checkpoint import checkpoint_classes
from segkit.data.classes import ClassTable
from segkit.errors import UserError, abbreviate
from segkit.models.tf_checkpoint import read_tf_checkpoint
from segkit.models.tf_weights import is_training_state, tf_names
from segkit.weights import TORCHVISION_IMAGENET, WEIGHTS, weights_path


@dataclass
class LoadReport:
    source: str = "torchvision weights"
    loaded: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)  # kept at initialisation
    missing: list[str] = field(default_factory=list)  # ours, absent from the source: kept at initialisation
    unused: list[str] = field(default_factory=list)  # the source's, with no place in our model
    skipped: list[str] = field(default_factory=list)  # the source's training state (TF: step, slots, shadows)
    other_classes: list[str] = field(default_factory=list)  # classifiers of another class table: kept at init
    # by name: (the shared class names, how many classifier tensors took their rows, the model's class count)
    class_rows: tuple[list[str], int, int] | None = None

    def summary(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors from {self.source}"]
        for title, keys in (("kept at initialisation (shape differs)", self.shape_mismatch),
                            ("kept at initialisation (not in the weights)", self.missing),
                            ("unused from the weights", self.unused),
                            ("skipped (training state: step, optimizer slots, moving averages)", self.skipped),
                            ("kept at initialisation (another class table)", self.other_classes)):
            if keys:
                lines.append(f"{title}: {len(keys)}: {abbreviate(keys)}")
        if self.class_rows is not None:
            names, tensors, total = self.class_rows
            if not tensors:
                lines.append("classifier rows by name: none taken (no classifier of the weights fits this model's)")
            elif not names:
                lines.append("classifier rows by name: none taken (the tables share no class name)")
            else:
                lines.append(f"classifier rows of {len(names)} of {total} classes kept by name: {abbreviate(names)}")
        return "\n".join(lines)


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
    return _state_dict_of(_read_torch_file(path), path)


def _read_torch_file(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, pickle of another kind, ...
        raise UserError(f"could not read pretrained weights {path} ({type(exc).__name__}); "
                        "pass a torchvision state dict saved with torch.save.") from None
    if not isinstance(state, dict):
        raise UserError(f"pretrained weights {path} are not a state dict of tensors.")
    return state


def _state_dict_of(state: dict, path: Path) -> dict:
    if "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a checkpoint wrapping the state dict
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"pretrained weights {path} are not a state dict of tensors.")
    return state


def imagenet_weights(backbone_name: str) -> Path:
    """torchvision's ImageNet weights file for ``backbone_name`` (``model.pretrained=imagenet``), fetched into
    segkit's cache on first use (``segkit.weights``: the mirror, the hash check)."""
    name = TORCHVISION_IMAGENET.get(backbone_name)
    if name is None:
        raise UserError(f"torchvision has no ImageNet weights for {backbone_name}; set model.pretrained to slim's "
                        "TF checkpoint (e.g. v3-large-minimalistic_224_1.0_float.tgz) or leave it empty.")
    return weights_path(name)


def load_tf(model: nn.Module, source) -> LoadReport:
    """Copy a TF checkpoint (slim ImageNet, or the authors' DeepLab: prefix, folder or .tar.gz) into ``model``
    (a Segmentor or a Backbone) by the TF naming scheme, every tensor whose shape fits. Where a checkpoint holds
    moving-average shadows too, the plain variables are taken, as deeplab's own initialisation does."""
    checkpoint = read_tf_checkpoint(source)
    report = LoadReport(source=f"TF checkpoint {checkpoint.prefix}")
    target, updated, used = model.state_dict(), {}, set()
    for key, variable in tf_names(model).items():
        array = checkpoint.tensors.get(variable.name)
        if array is None:
            report.missing.append(key)
            continue
        used.add(variable.name)
        if variable.torch_shape(tuple(array.shape)) != tuple(target[key].shape):
            report.shape_mismatch.append(key)
            continue
        updated[key] = variable.to_torch(array)
        report.loaded.append(key)
    for name in checkpoint.tensors:
        if name not in used:
            (report.skipped if is_training_state(name) else report.unused).append(name)
    model.load_state_dict({**target, **updated})
    return report


def load_segkit(model: nn.Module, state: dict, source: str) -> LoadReport:
    """Copy a segkit checkpoint's weights into ``model``, every tensor whose key and shape fit (fine-tuning with
    another number of classes keeps the new classifiers at initialisation)."""
    report = LoadReport(source=f"segkit checkpoint {source}")
    target, updated = model.state_dict(), {}
    for key, value in state.items():
        if key not in target:
            report.unused.append(key)
        elif target[key].shape != value.shape:
            report.shape_mismatch.append(key)
        else:
            updated[key] = value
            report.loaded.append(key)
    report.missing = [key for key in target if key not in state]
    model.load_state_dict({**target, **updated})
    return report


def is_classifier(key: str) -> bool:
    """Whether a state-dict key is one of the head's per-class tensors (one row per class)."""
    return key.startswith("head.") and "classifier" in key


def copy_class_rows(model: nn.Module, source: dict, source_names, target_names) -> tuple[list[str], int]:
    """Copy into ``model``'s classifiers the rows of ``source``'s (a state dict) whose class ``source_names`` and
    ``target_names`` share, matched by name (road -> road); the other rows keep what they hold. Returns the shared
    names (in ``target_names``' order) and how many classifier tensors took rows: 0 when none of the source's
    classifiers fits the model's (another head width), whatever the names."""
    source_index = {name: i for i, name in enumerate(source_names)}
    shared = [(j, source_index[name]) for j, name in enumerate(target_names) if name in source_index]
    target = model.state_dict()
    classifiers = {}  # module -> its per-class tensors (weight and bias), taken together or not at all
    for key in filter(is_classifier, target):
        classifiers.setdefault(key.rsplit(".", 1)[0], []).append(key)
    updated = {}
    for keys in classifiers.values():
        if not all(key in source and _per_class(source[key], target[key], source_names, target_names)
                   for key in keys):
            continue
        for key in keys:
            value = target[key].clone()
            for j, i in shared:
                value[j] = source[key][i]
            updated[key] = value
    model.load_state_dict({**target, **updated})
    return [target_names[j] for j, _ in shared], len(updated)


def _per_class(source, target, source_names, target_names) -> bool:
    """Whether two tensors are one classifier's of two tables: a row per class, rows of one shape."""
    return (source.shape[0] == len(source_names) and target.shape[0] == len(target_names)
            and source.shape[1:] == target.shape[1:])


def load_pretrained(model: nn.Module, backbone_name: str, spec: str, classes=None,
                    by_name: bool = False) -> LoadReport:
    """Initialise ``model`` (a Segmentor) from ``spec``: a name of ``segkit.weights`` (fetched on first use),
    "imagenet" (torchvision's weights for the backbone), a segkit checkpoint (.pt with model and config), a
    torchvision state dict file, or a TF checkpoint (prefix, .index, folder or .tar.gz/.tgz: slim's ImageNet
    MobileNetV3 or the authors' DeepLab models). Prints the report.

    Classifiers belong to classes, not to a count: where the weights' classes (a segkit checkpoint's table; the
    authors' DeepLab models: Cityscapes') are not ``classes`` (the model's, in order; default Cityscapes'), the
    classifiers keep their initialisation, and with ``by_name`` the rows of the classes both name (road -> road)
    take the weights' rows."""
    if spec in WEIGHTS:  # a name (tools/weights.py list): its file, fetched on first use
        spec = str(weights_path(spec))
    path = Path(spec)
    classes = tuple(classes) if classes is not None else ClassTable.cityscapes().names
    initial = {key: value.clone() for key, value in model.state_dict().items() if is_classifier(key)}
    source, source_names = None, None
    if spec == "imagenet":
        report = load_torchvision(model.backbone, imagenet_weights(backbone_name))
    elif path.is_file() and zipfile.is_zipfile(path):  # torch.save's format
        state = _read_torch_file(path)
        if "model" in state and "config" in state and isinstance(state["model"], dict):
            report = load_segkit(model, state["model"], spec)
            source, source_names = state["model"], checkpoint_classes(state).names
        else:
            report = load_torchvision(model.backbone, _state_dict_of(state, path))
    elif path.exists() or Path(spec + ".index").is_file():
        report = load_tf(model, spec)
        if any(is_classifier(key) for key in report.loaded):  # a DeepLab model: Cityscapes' classifiers
            source = {k: v.clone() for k, v in model.state_dict().items() if k in report.loaded}
            source_names = ClassTable.cityscapes().names
    else:
        raise UserError(f"pretrained weights {spec} do not exist; set model.pretrained to a segkit checkpoint (.pt), "
                        "a torchvision state dict, a TF checkpoint (prefix, folder or .tgz) or imagenet.")
    if source_names is not None and tuple(source_names) != classes:
        report.other_classes = [key for key in report.loaded if is_classifier(key)]
        report.loaded = [key for key in report.loaded if not is_classifier(key)]
        model.load_state_dict({**model.state_dict(), **initial})
        if by_name:
            report.class_rows = (*copy_class_rows(model, source, source_names, classes), len(classes))
    print(report.summary())
    if by_name and source_names is None:
        print(f"model.map_classes_by_name: {spec} carries no class table; nothing mapped by name")
    return report
