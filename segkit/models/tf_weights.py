"""The authors' TF variable names -> segkit's modules (docs/paper.md#tf-variable-names).

Used to convert their released DeepLab checkpoints (``convert_tf_checkpoint``, strict: every variable placed, every
layer filled; tools/convert_tf.py) and to initialise from slim ImageNet checkpoints (``segkit.models.pretrained``,
lenient: what fits). The scheme, for backbone scope ``S`` (``MobilenetV3`` or ``MobilenetV2``):

    S/Conv                      stem                 features.0
    S/expanded_conv             block 1              features.1
    S/expanded_conv_{i-1}       block i >= 2         features.i     (expand, depthwise, squeeze_excite/Conv,
                                                                      squeeze_excite/Conv_1, project)
    S/Conv_1                    last 1x1 conv        features.-1    (MobileNetV3 only)
    aspp0, image_pooling        LR-ASPP / R-ASPP branches            head.cbr / head.branch, head.scale / image_pool
    concat_projection           R-ASPP projection                    head.project
    decoder/feature_projection0, decoder/decoder_conv0               head.low_classifier, head.high_classifier
    logits/semantic             the classifier without a decoder     head.high_classifier

Kernels are stored HWIO (depthwise: H, W, C, 1), BatchNorm as gamma / beta / moving_mean / moving_variance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from segkit.errors import UserError, abbreviate
from segkit.models.blocks import Backbone, InvertedResidual
from segkit.models.heads import LRASPP
from segkit.models.segmentor import Segmentor
from segkit.paper import CITYSCAPES_CLASSES

if TYPE_CHECKING:  # for annotations only: segkit.config imports the models package (segkit.models.backbones)
    from segkit.config import ModelConfig

BATCHNORM = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
# Saved by training, not part of the network: the step counter, optimizer slots, moving-average shadows.
TRAINING_STATE = re.compile(r"(^|/)(global_step|beta[12]_power)$|/(Momentum|ExponentialMovingAverage|Adam(_1)?|"
                            r"RMSProp(_1)?)$")


@dataclass(frozen=True)
class TFVariable:
    """Where a segkit tensor comes from: the TF variable ``name``, stored in ``layout`` ("conv": H, W, in, out;
    "depthwise": H, W, C, 1; "vector": biases and BatchNorm)."""

    name: str
    layout: str

    def to_torch(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(np.array(array, dtype=np.float32))
        if self.layout == "conv":
            return tensor.permute(3, 2, 0, 1).contiguous()
        if self.layout == "depthwise":
            return tensor.permute(2, 3, 0, 1).contiguous()
        return tensor

    def torch_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if self.layout == "conv" and len(shape) == 4:
            return shape[3], shape[2], shape[0], shape[1]
        if self.layout == "depthwise" and len(shape) == 4:
            return shape[2], shape[3], shape[0], shape[1]
        return tuple(shape)


def is_training_state(name: str) -> bool:
    return bool(TRAINING_STATE.search(name))


# ---- the naming scheme -----------------------------------------------------------------------------------------

def _conv(key: str, scope: str, conv: nn.Conv2d, weights: str = "weights") -> dict[str, TFVariable]:
    names = {f"{key}.weight": TFVariable(f"{scope}/{weights}", "depthwise" if conv.groups > 1 else "conv")}
    if conv.bias is not None:
        names[f"{key}.bias"] = TFVariable(f"{scope}/biases", "vector")
    return names


def _conv_bn(key: str, scope: str, layer: nn.Sequential, weights: str = "weights") -> dict[str, TFVariable]:
    """A conv + BatchNorm (+ activation) Sequential: torchvision's Conv2dNormActivation or the heads' conv_bn_relu."""
    names = _conv(f"{key}.0", scope, layer[0], weights)
    if isinstance(layer[1], nn.BatchNorm2d):
        names.update({f"{key}.1.{ours}": TFVariable(f"{scope}/BatchNorm/{theirs}", "vector")
                      for ours, theirs in BATCHNORM.items()})
    return names


def _block(key: str, scope: str, block: InvertedResidual) -> dict[str, TFVariable]:
    names = {}
    for index, layer in enumerate(block.block):
        if isinstance(layer, SqueezeExcitation):
            names.update(_conv(f"{key}.block.{index}.fc1", f"{scope}/squeeze_excite/Conv", layer.fc1))
            names.update(_conv(f"{key}.block.{index}.fc2", f"{scope}/squeeze_excite/Conv_1", layer.fc2))
        elif index == block.depthwise_index:
            names.update(_conv_bn(f"{key}.block.{index}", f"{scope}/depthwise", layer, "depthwise_weights"))
        else:
            role = "expand" if index < block.depthwise_index else "project"
            names.update(_conv_bn(f"{key}.block.{index}", f"{scope}/{role}", layer))
    return names


def backbone_names(backbone: Backbone, prefix: str = "") -> dict[str, TFVariable]:
    """segkit state-dict key -> TF variable, for every tensor of ``backbone`` but BatchNorm's step counters."""
    scope, names = backbone.tf_scope, {}
    for index, layer in enumerate(backbone.features):
        key = f"{prefix}features.{index}"
        if isinstance(layer, InvertedResidual):
            names.update(_block(key, f"{scope}/expanded_conv" + (f"_{index - 1}" if index > 1 else ""), layer))
        else:
            names.update(_conv_bn(key, f"{scope}/{'Conv' if index == 0 else 'Conv_1'}", layer))
    return names


def head_names(head: nn.Module, prefix: str = "head.") -> dict[str, TFVariable]:
    if isinstance(head, LRASPP):
        names = _conv_bn(f"{prefix}cbr", "aspp0", head.cbr)
        names.update(_conv(f"{prefix}scale.1", "image_pooling", head.scale[1]))
    else:  # RASPP
        names = _conv_bn(f"{prefix}branch", "aspp0", head.branch)
        names.update(_conv_bn(f"{prefix}image_pool.1", "image_pooling", head.image_pool[1]))
        names.update(_conv_bn(f"{prefix}project.0", "concat_projection", head.project[0]))
    if head.low_classifier is None:
        names.update(_conv(f"{prefix}high_classifier", "logits/semantic", head.high_classifier))
    else:
        names.update(_conv(f"{prefix}low_classifier", "decoder/feature_projection0", head.low_classifier))
        names.update(_conv(f"{prefix}high_classifier", "decoder/decoder_conv0", head.high_classifier))
    return names


def tf_names(model: nn.Module) -> dict[str, TFVariable]:
    """segkit state-dict key -> TF variable for a ``Segmentor`` or a ``Backbone``."""
    if isinstance(model, Segmentor):
        return {**backbone_names(model.backbone, "backbone."), **head_names(model.head)}
    return backbone_names(model)


# ---- what a checkpoint holds -----------------------------------------------------------------------------------

def detect_architecture(variables: dict[str, np.ndarray]) -> dict[str, object]:
    """The ``ModelConfig`` fields a checkpoint's variables reveal (output stride and pooling do not show in
    weights): backbone, rf2, head, head_channels, skip, num_classes; a field is left out when it cannot be told."""
    found: dict[str, object] = {}
    if any(name.startswith("MobilenetV3/") for name in variables):
        blocks = {m[1] for name in variables if (m := re.match(r"MobilenetV3/(expanded_conv(_\d+)?)/", name))}
        variant = {15: "large", 11: "small"}.get(len(blocks))
        if variant:
            minimal = not any("/squeeze_excite/" in name for name in variables)
            found["backbone"] = f"mobilenet_v3_{variant}" + ("_minimal" if minimal else "")
            last = variables.get("MobilenetV3/Conv_1/weights")
            if last is not None:  # RF2 halves the last conv: 480 / 288 instead of 960 / 576
                found["rf2"] = int(last.shape[-1]) == {"large": 480, "small": 288}[variant]
    elif any(name.startswith("MobilenetV2/") for name in variables):
        found["backbone"] = "mobilenet_v2"
    if "concat_projection/weights" in variables:
        found["head"] = "raspp"
    elif "image_pooling/biases" in variables:
        found["head"] = "lraspp"
    if "aspp0/weights" in variables:
        found["head_channels"] = int(variables["aspp0/weights"].shape[-1])
    if "head" in found:
        found["skip"] = "decoder/feature_projection0/weights" in variables
    for classifier in ("decoder/decoder_conv0/weights", "logits/semantic/weights"):
        if classifier in variables:
            found["num_classes"] = int(variables[classifier].shape[-1])
    return found


def configured_architecture(config: ModelConfig) -> dict[str, object]:
    """The same fields for a config (``skip=None`` resolved to the head's default and ``num_classes=None`` to
    Cityscapes' 19, as ``build_model`` does)."""
    skip = config.skip if config.skip is not None else config.head == "lraspp"
    return {"backbone": config.backbone, "rf2": config.rf2, "head": config.head,
            "head_channels": config.head_channels, "skip": skip,
            "num_classes": config.num_classes or CITYSCAPES_CLASSES}


def describe(fields: dict[str, object]) -> str:
    parts = [str(fields.get("backbone", "an unknown backbone"))]
    if fields.get("rf2"):
        parts[0] += " + RF2"
    if "head" in fields:
        parts.append(f"{fields['head']} F={fields.get('head_channels', '?')}"
                     + (" with skip" if fields.get("skip") else " without skip"))
    if "num_classes" in fields:
        parts.append(f"{fields['num_classes']} classes")
    return ", ".join(parts)


@dataclass
class Conversion:
    """A converted checkpoint: the segkit state dict, and what was left behind."""

    state_dict: dict[str, torch.Tensor]
    loaded: list[str]  # TF variables placed in the model
    skipped: list[str]  # training state: global_step, optimizer slots, moving-average shadows
    global_step: int


def convert_tf_checkpoint(tensors: dict[str, np.ndarray], model: Segmentor, config: ModelConfig, source: str,
                          known_configs: dict[str, ModelConfig] | None = None) -> Conversion:
    """Map every variable of a TF DeepLab checkpoint onto ``model`` (built from ``config``); a UserError naming
    the mismatch when the checkpoint is another architecture, lacks variables, or holds ones with no place.
    ``known_configs`` (name -> ModelConfig) lets the error name a config that fits."""
    skipped = sorted(name for name in tensors if is_training_state(name))
    variables = {name: array for name, array in tensors.items() if not is_training_state(name)}
    detected, ours = detect_architecture(variables), configured_architecture(config)
    differs = {key: value for key, value in detected.items() if ours[key] != value}
    if differs:
        fits = [name for name, candidate in (known_configs or {}).items()
                if all(configured_architecture(candidate)[key] == value for key, value in detected.items())]
        hint = (f"use {fits[0]}" if fits else
                "set " + " ".join(f"model.{key}={str(value).lower() if isinstance(value, bool) else value}"
                                   for key, value in differs.items()))
        raise UserError(f"{source} holds {describe(detected)}, but the config builds {describe(ours)}; {hint}.")
    names = tf_names(model)
    missing = sorted({variable.name for variable in names.values() if variable.name not in variables})
    if missing:
        raise UserError(f"{source} lacks {len(missing)} variable(s) the {describe(ours)} model needs: "
                        f"{abbreviate(missing)}.")
    expected = model.state_dict()
    mismatched = [f"{variable.name} {list(variables[variable.name].shape)} (needs {list(expected[key].shape)})"
                  for key, variable in names.items()
                  if variable.torch_shape(tuple(variables[variable.name].shape)) != tuple(expected[key].shape)]
    if mismatched:
        raise UserError(f"{source} does not fit the {describe(ours)} model (check model.width_mult and "
                        f"model.head_channels): {abbreviate(mismatched, 4)}.")
    used = {variable.name for variable in names.values()}
    unused = sorted(set(variables) - used)
    if unused:
        raise UserError(f"{source} holds {len(unused)} variable(s) the {describe(ours)} model has no place for "
                        f"(another architecture?): {abbreviate(unused)}.")
    state = dict(expected)
    for key, variable in names.items():
        state[key] = variable.to_torch(variables[variable.name])
    step = tensors.get("global_step")
    return Conversion(state, sorted(used), skipped, int(step) if step is not None and np.size(step) == 1 else 0)


def convert_to_checkpoint(source, config, known_configs: dict[str, ModelConfig] | None = None
                          ) -> tuple[dict, Conversion]:
    """A TF DeepLab checkpoint (prefix, folder or archive: ``read_tf_checkpoint``) as a segkit checkpoint (the
    dict ``save_checkpoint`` writes: ``model``, ``config``, ``iteration``) of the network ``config`` builds,
    converted strictly (``convert_tf_checkpoint``), and the conversion's record."""
    import dataclasses

    from segkit.models import build_model
    from segkit.models.tf_checkpoint import read_tf_checkpoint

    checkpoint = read_tf_checkpoint(source)
    config.model = dataclasses.replace(config.model, pretrained="")  # the weights come from ``source``
    model = build_model(config.model)
    conversion = convert_tf_checkpoint(checkpoint.tensors, model, config.model, str(source), known_configs)
    model.load_state_dict(conversion.state_dict)
    return ({"model": model.state_dict(), "config": config.to_dict(), "iteration": conversion.global_step,
             "converted_from": checkpoint.prefix}, conversion)

