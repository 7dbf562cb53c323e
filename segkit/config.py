"""Plain dataclass configs.

A config file is ordinary Python that builds ``config = Config(...)``; ``load_config`` runs it and applies
``--set section.field=value`` overrides, checked against the field's type. Sections: ``model``, ``data``, the
training recipe in ``loss``, ``optimizer`` and ``schedule``, the run in ``train``, and ``eval``. Defaults are the
authors' recipe (docs/paper.md#training-recipes): LR-ASPP on MobileNetV3-Large with RF2 at output stride 16,
769x769 crops, cross-entropy, SGD 0.01 with momentum 0.9 and weight decay 4e-5, poly decay over 90k iterations.
Keys that moved keep their old spelling as an alias (``ALIASES``: ``train.lr`` is ``optimizer.lr``), for
commands, scripts and checkpoints written before.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import runpy
import traceback
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from segkit.errors import UserError
from segkit.resolutions import RESOLUTIONS

BACKBONES = (
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "mobilenet_v3_large_minimal",
    "mobilenet_v3_small_minimal",
    "mobilenet_v2",
)
HEADS = ("lraspp", "raspp")
NORMALIZE_MODES = ("tf", "imagenet")
LOSSES = ("ce", "ohem")
OPTIMIZERS = ("sgd", "adamw")
SPLITS = ("train", "val", "test")
# Keys that moved, old -> new: accepted by --set and in checkpoints' configs (written before the recipe sections).
ALIASES = {
    "train.optimizer": "optimizer.name", "train.lr": "optimizer.lr", "train.momentum": "optimizer.momentum",
    "train.weight_decay": "optimizer.weight_decay", "train.poly_power": "schedule.poly_power",
    "train.warmup_iterations": "schedule.warmup_iterations", "train.warmup_ratio": "schedule.warmup_ratio",
    "train.min_lr_ratio": "schedule.min_lr_ratio", "train.loss": "loss.name", "train.ohem_thresh": "loss.ohem_thresh",
    "train.ohem_min_kept": "loss.ohem_min_kept", "train.class_weights": "loss.class_weights",
    "train.lovasz_weight": "loss.lovasz_weight", "train.dice_weight": "loss.dice_weight",
    "train.eval_resolutions": "eval.resolutions",
}
REMOVED = {"model.dropout"}  # fields of older versions, ignored in checkpoints' configs


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(map(str, choices))}."
        raise UserError(f"{key}={value!r} is unknown; {hint}")


def _positive(key: str, value, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise UserError(f"{key}={value} must be {'zero or more' if zero_ok else 'positive'}.")


def _pair(key: str, value, example: str) -> None:
    if len(value) != 2 or min(value) <= 0:
        raise UserError(f"{key}={value} must be two positive numbers, e.g. {example}.")


@dataclass
class ModelConfig:
    backbone: str = "mobilenet_v3_large"
    width_mult: float = 1.0
    output_stride: int = 16
    rf2: bool = True  # halve the last block's filters (the paper's "RF2")
    head: str = "lraspp"
    head_channels: int = 128  # F in Table 7
    skip: bool | None = None  # low-level skip; None = the paper's choice (on for LR-ASPP, off for R-ASPP)
    num_classes: int = 19
    # "" = random init, "imagenet" = torchvision weights API (downloads), or a path: a segkit checkpoint, a
    # torchvision state dict, or a TF checkpoint (slim ImageNet, the authors' DeepLab models).
    pretrained: str = ""
    # LR-ASPP gate pooling, as the TF flags image_pooling_crop_size / image_pooling_stride. None: the training crop
    # (data.crop_size), as the authors set both to 769x769.
    pool_crop: tuple[int, int] | None = None
    pool_stride: tuple[int, int] = (4, 5)
    global_pool: bool = False  # torchvision-style gate (global average pooling) instead
    # BatchNorm running-average momentum for every layer; None keeps torchvision's (0.01 in MobileNetV3, made for
    # long runs: on a few hundred iterations the running statistics would still lag far behind).
    bn_momentum: float | None = None
    # Zero the last BatchNorm of every residual block, so each block starts as the identity (Goyal et al. 2017,
    # torchvision ResNet's zero_init_residual): faster training from scratch; off in the paper's recipe.
    zero_init_residual: bool = False

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise UserError(f"model.backbone={self.backbone!r} is unknown; choose one of {', '.join(BACKBONES)}.")
        if self.head not in HEADS:
            raise UserError(f"model.head={self.head!r} is unknown; choose one of {', '.join(HEADS)}.")
        if self.output_stride not in (8, 16, 32):
            raise UserError(f"model.output_stride={self.output_stride} is not supported; use 8, 16 or 32.")
        if self.width_mult <= 0:
            raise UserError(f"model.width_mult={self.width_mult} must be positive.")


@dataclass
class DataConfig:
    root: str = ""  # empty: --data-root, else $CITYSCAPES_DATASET
    crop_size: tuple[int, int] = (769, 769)  # (height, width) of training crops
    scale_range: tuple[float, float] = (0.5, 2.0)
    # "tf": x * 2/255 - 1 (the authors' models); "imagenet": torchvision mean/std (for torchvision init).
    normalize: str = "tf"
    workers: int = 2
    color_jitter: bool = True  # photometric jitter of training crops (brightness, contrast, saturation, hue)

    def __post_init__(self):
        _pair("data.crop_size", self.crop_size, "769,769")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise UserError(f"data.scale_range={self.scale_range} must be two positive factors, low <= high, "
                            "e.g. 0.5,2.0.")
        _choice("data.normalize", self.normalize, NORMALIZE_MODES)
        _positive("data.workers", self.workers, zero_ok=True)


@dataclass
class LossConfig:
    name: str = "ce"  # "ce" (cross-entropy, the paper's) or "ohem" (PaddleSeg's recipe)
    class_weights: tuple[float, ...] | None = None
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    lovasz_weight: float = 0.0  # smp LovaszLoss added with this weight
    dice_weight: float = 0.0  # smp DiceLoss added with this weight

    def __post_init__(self):
        _choice("loss.name", self.name, LOSSES)
        if not 0 < self.ohem_thresh <= 1:
            raise UserError(f"loss.ohem_thresh={self.ohem_thresh} must lie in (0, 1].")
        for key in ("ohem_min_kept", "lovasz_weight", "dice_weight"):
            _positive(f"loss.{key}", getattr(self, key), zero_ok=True)
        if self.class_weights is not None and min(self.class_weights, default=1) <= 0:
            raise UserError(f"loss.class_weights must all be positive, got {self.class_weights}.")


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # "sgd" (the paper's recipe) or "adamw" (faster from scratch on tiny budgets)
    lr: float = 0.01
    momentum: float = 0.9  # SGD only
    weight_decay: float = 4e-5  # on convolution weights only, not on BatchNorm parameters and biases

    def __post_init__(self):
        _choice("optimizer.name", self.name, OPTIMIZERS)
        _positive("optimizer.lr", self.lr)
        _positive("optimizer.momentum", self.momentum, zero_ok=True)
        _positive("optimizer.weight_decay", self.weight_decay, zero_ok=True)


@dataclass
class ScheduleConfig:
    """Per-iteration poly decay over train.iterations, optionally after a linear warmup."""

    poly_power: float = 0.9
    warmup_iterations: int = 0
    warmup_ratio: float = 1e-3  # lr factor at the first warmup iteration
    min_lr_ratio: float = 0.0  # poly decays to lr * min_lr_ratio (mmseg: 1e-4 / 1e-2)

    def __post_init__(self):
        _positive("schedule.poly_power", self.poly_power)
        _positive("schedule.warmup_iterations", self.warmup_iterations, zero_ok=True)
        if not 0 < self.warmup_ratio <= 1:
            raise UserError(f"schedule.warmup_ratio={self.warmup_ratio} must lie in (0, 1].")
        if not 0 <= self.min_lr_ratio < 1:
            raise UserError(f"schedule.min_lr_ratio={self.min_lr_ratio} must lie in [0, 1).")


@dataclass
class TrainConfig:
    iterations: int = 90_000
    batch_size: int = 8  # per device
    checkpoint_every: int = 1000
    eval_every: int = 5000  # 0: validate only at the end (at eval.resolutions)
    log_every: int = 20
    seed: int = 0
    # Devices. AMP (bf16 where supported, else fp16 with a grad scaler) applies on CUDA only.
    amp: bool = True
    channels_last: bool = True  # CUDA and CPU
    compile: bool = False  # torch.compile the model (opt-in: long start-up)
    sync_bn: bool = True  # SyncBatchNorm under multi-GPU DDP (CUDA only)
    bn_eval: bool = False  # keep BatchNorm in eval mode (frozen statistics), e.g. for tiny per-device batches

    def __post_init__(self):
        for key in ("iterations", "batch_size", "log_every", "checkpoint_every"):
            _positive(f"train.{key}", getattr(self, key))
        _positive("train.eval_every", self.eval_every, zero_ok=True)


@dataclass
class EvalConfig:
    resolutions: tuple[str, ...] = ("full", "half")
    split: str = "val"

    def __post_init__(self):
        if not self.resolutions:
            raise UserError("eval.resolutions is empty; give one or more of full, half.")
        for resolution in self.resolutions:
            _choice("eval.resolutions", resolution, tuple(RESOLUTIONS))
        _choice("eval.split", self.split, SPLITS)


@dataclass
class Config:
    name: str = "segkit"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        """What involves two sections (each section checks its own fields when it is made or overridden)."""
        weights = self.loss.class_weights
        if weights is not None and len(weights) != self.model.num_classes:
            raise UserError(f"loss.class_weights has {len(weights)} values but model.num_classes is "
                            f"{self.model.num_classes}; give one weight per class.")
        if self.schedule.warmup_iterations >= self.train.iterations:
            raise UserError(f"schedule.warmup_iterations={self.schedule.warmup_iterations} must be fewer than "
                            f"train.iterations={self.train.iterations}.")

    def resolved(self) -> "Config":
        """Defaults that follow other fields made explicit: the gate's pool window follows the training crop."""
        if self.model.pool_crop is None:
            self.model.pool_crop = tuple(self.data.crop_size)
        return self

    def to_dict(self) -> dict:
        """Plain data (lists, numbers, strings) for checkpoints and JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Config":
        """The config of a checkpoint (plain data), older layouts included (``ALIASES``)."""
        data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
        for old, new in ALIASES.items():
            old_section, old_field = old.split(".")
            if old_field in data.get(old_section, {}):
                new_section, new_field = new.split(".")
                value = data[old_section].pop(old_field)
                if old == "train.eval_resolutions" and "eval" in data:
                    continue  # both existed: the eval section's own wins
                data.setdefault(new_section, {})[new_field] = value
        sections = {}
        for f in dataclasses.fields(cls):
            if f.name == "name":
                continue
            section_cls = f.default_factory
            values = data.get(f.name, {})
            kwargs = {}
            for sf in dataclasses.fields(section_cls):
                if sf.name in values:
                    kind = _field_types(section_cls)[sf.name]
                    kwargs[sf.name] = _coerce(values[sf.name], kind, f"{f.name}.{sf.name}")
            sections[f.name] = section_cls(**kwargs)
        return cls(name=data.get("name", "segkit"), **sections).resolved()


def read_config(path: str | Path) -> Config:
    """Run a config file (it must define ``config = Config(...)``) and return its config as written: for config
    files that build on another (``config = read_config(HERE / "table7/row08_...py")``, then change fields)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {path} does not exist; pass a file from configs/, e.g. configs/lraspp_large.py.")
    try:
        namespace = runpy.run_path(str(path))
    except UserError as exc:
        message = str(exc)
        raise UserError(message if message.startswith("config file ") else f"config file {path}: {message}") from None
    except Exception as exc:  # a config file is user code: its mistake is one line, not a traceback
        raise UserError(_config_error(path, exc)) from None
    config = namespace.get("config")
    if not isinstance(config, Config):
        raise UserError(f"config file {path} must define `config = Config(...)` (segkit.config.Config).")
    if config.name == "segkit":
        config.name = path.stem
    return config


def load_config(path: str | Path, overrides: typing.Iterable[str] = ()) -> Config:
    """Run a config file, check every field (also those a file changed after construction), apply ``key=value``
    overrides, and resolve the defaults that follow other fields (``Config.resolved``)."""
    config = read_config(path)
    try:
        for section in (getattr(config, f.name) for f in dataclasses.fields(Config) if f.name != "name"):
            section.__post_init__()
        config.check()
    except UserError as exc:
        raise UserError(f"config file {path}: {exc}") from None
    for item in overrides:
        apply_override(config, item)
    return config.resolved()


def _config_error(path: Path, exc: Exception) -> str:
    """One sentence for an exception raised while running config file ``path``: a misspelt field names the
    closest real one; anything else gives the line of the file."""
    match = re.match(r"(\w+)\.__init__\(\) got an unexpected keyword argument '(\w+)'", str(exc))
    section_types = [_field_types(Config)[f.name] for f in dataclasses.fields(Config) if f.name != "name"]
    sections = {cls.__name__: cls for cls in (Config, *section_types)}
    if isinstance(exc, TypeError) and match and match[1] in sections:
        fields = [f.name for f in dataclasses.fields(sections[match[1]])]
        close = difflib.get_close_matches(match[2], fields, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"its fields are {', '.join(fields)}."
        return f"config file {path}: {match[1]} has no field {match[2]!r}; {hint}"
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if Path(frame.filename) == path]
    where = f" line {lines[-1]}" if lines else ""
    if isinstance(exc, SyntaxError):
        where = f" line {exc.lineno}"
    message = str(exc).splitlines()[0] if str(exc) else ""
    return f"config file {path}{where}: {type(exc).__name__}: {message}; fix the file."


def apply_override(config: Config, item: str) -> None:
    """Apply one ``section.field=value``; the value is parsed by the field's declared type."""
    key, sep, raw = item.partition("=")
    key = ALIASES.get(key.strip(), key.strip())
    valid = _valid_keys()
    if not sep:
        raise UserError(f"override {item!r} must look like key=value, e.g. train.iterations=1000.")
    if key not in valid:
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" Did you mean {close[0]}?" if close else f" Valid keys: {', '.join(valid)}."
        raise UserError(f"unknown config key {key!r}.{hint}")
    if key == "name":
        config.name = raw
        return
    section_name, field_name = key.split(".")
    section = getattr(config, section_name)
    value = _coerce(raw.strip(), _field_types(type(section))[field_name], key, from_text=True)
    setattr(section, field_name, value)
    if hasattr(section, "__post_init__"):
        section.__post_init__()  # re-validate the section
    config.check()


def _valid_keys() -> list[str]:
    keys = ["name"]
    for f in dataclasses.fields(Config):
        if f.name != "name":
            keys += [f"{f.name}.{sf.name}" for sf in dataclasses.fields(f.default_factory)]
    return keys


def _field_types(cls) -> dict:
    return typing.get_type_hints(cls)


def _coerce(value, annotation, key: str, from_text: bool = False):
    """Convert ``value`` (text from --set, or plain data from a checkpoint) to the annotated type."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (from_text and str(value).lower() in ("none", "null")):
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, from_text)
    if origin is tuple:
        item_type = args[0]
        if from_text:  # the forms a user types: 129,257  129x257  (129, 257)  [129, 257]
            text = str(value).strip().strip("()[]")
            if item_type in (int, float):
                text = re.sub(r"(?<=\d)\s*[xX]\s*(?=\d)", ",", text)
            items = [v for v in text.split(",") if v.strip()]
        else:
            items = list(value)
        if args[-1] is not Ellipsis and len(items) != len(args):
            raise UserError(f"{key} takes {len(args)} comma-separated values, got {value!r}.")
        return tuple(_coerce(v.strip() if isinstance(v, str) else v, item_type, key, from_text) for v in items)
    try:
        if annotation is bool:
            if isinstance(value, bool):
                return value
            text = str(value).lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if annotation is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if from_text and "e" in str(value).lower() else int(value)
        if annotation is float:
            return float(value)
        if annotation is str:
            return str(value)
    except (TypeError, ValueError):
        raise UserError(f"{key}={value!r} is not a valid {annotation.__name__}.") from None
    return value
