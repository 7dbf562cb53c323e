"""The config sections, plain data, and ``validate``: the one check of a config.

Building a section or setting a field checks nothing; ``validate(config)`` checks every field, once, for all who
make configs (``load_config``, ``apply_overrides``, ``Config.from_dict``, ``table7_config``, and code that builds or
changes one before using it).
The config owns the names a field may take (``BACKBONE_NAMES``, ``HEADS``, ``LOSS_NAMES``, ``LAYOUTS``, ...): the code
that acts on them is built on the config (layers point down) and keys its tables by these names
(``segkit.models.backbones.BACKBONES``, ``segkit.losses.LOSSES``, ``segkit.data.layouts.LAYOUTS``; tests check that
each table holds exactly its names). ``eval.resolutions`` come from ``segkit.resolutions``, a foundation.
"""
from __future__ import annotations

import dataclasses
import difflib
import warnings
from dataclasses import dataclass, field

from segkit.config.coerce import coerce, field_types
from segkit.data.classes import class_table
from segkit.errors import UserError, check_choice
from segkit.paper import TABLE7, TRAINING_CROP
from segkit.resolutions import RESOLUTIONS

# The names each choice may take; the tables of the code that acts on them are keyed by them (module docstring).
BACKBONE_NAMES = ("mobilenet_v3_large", "mobilenet_v3_small", "mobilenet_v3_large_minimal",
                  "mobilenet_v3_small_minimal", "mobilenet_v2")
HEADS = ("lraspp", "raspp")
LOSS_NAMES = ("ce", "ohem")
NORMALIZE_MODES = ("tf", "imagenet")
OPTIMIZERS = ("sgd", "adamw")
SPLITS = ("train", "val", "test")
LAYOUTS = ("cityscapes", "folder")


def _choice(key: str, value, choices) -> None:
    check_choice(key, value, choices, key)


def _positive(key: str, value, zero_ok: bool = False) -> None:
    if value < 0 or (value == 0 and not zero_ok):
        raise UserError(f"{key}={value} must be {'zero or more' if zero_ok else 'positive'}.", key)


@dataclass
class ModelConfig:
    backbone: str = "mobilenet_v3_large"
    width_mult: float = 1.0
    output_stride: int = 16
    rf2: bool = True  # halve the last block's filters (the paper's "RF2")
    head: str = "lraspp"
    head_channels: int = 128  # F in Table 7
    skip: bool | None = None  # low-level skip; None = the paper's choice (on for LR-ASPP, off for R-ASPP)
    num_classes: int | None = None  # None: the data's class table's count (data.classes; Cityscapes': 19)
    # "" = random init, a name of segkit.weights (tools/weights.py list; fetched on first use), "imagenet" =
    # torchvision's weights of the backbone (the same, by backbone), or a path: a segkit checkpoint, a
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
    # Fine-tuning from a checkpoint with other classes (model.pretrained): the classifiers start at initialisation;
    # with this, the rows of the classes both tables name (road -> road) keep their trained weights.
    map_classes_by_name: bool = False

    def network(self) -> dict:
        """The fields that make the network its weights belong to (``NETWORK_FIELDS``), defaults that follow the
        head made explicit: two configs with equal ``network()`` build the same network."""
        fields = {name: getattr(self, name) for name in NETWORK_FIELDS}
        if fields["skip"] is None:
            fields["skip"] = self.head == "lraspp"
        return fields

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
        _choice("model.backbone", self.backbone, BACKBONE_NAMES)
        _choice("model.head", self.head, HEADS)
        if self.output_stride not in (8, 16, 32):
            raise UserError(f"model.output_stride={self.output_stride} is not supported; use 8, 16 or 32.",
                            "model.output_stride")
        _positive("model.width_mult", self.width_mult)
        if self.num_classes is not None:
            _positive("model.num_classes", self.num_classes)


# The ModelConfig fields that define the network a checkpoint's weights belong to (the rest -- pretrained, bn_momentum,
# zero_init_residual, map_classes_by_name -- only say how training starts).
NETWORK_FIELDS = ("backbone", "width_mult", "output_stride", "rf2", "head", "head_channels", "skip", "num_classes",
                  "pool_crop", "pool_stride", "global_pool")


@dataclass
class DataConfig:
    root: str = ""  # empty: --data-root, else $CITYSCAPES_DATASET
    crop_size: tuple[int, int] = TRAINING_CROP  # (height, width) of training crops
    scale_range: tuple[float, float] = (0.5, 2.0)
    # "tf": x * 2/255 - 1 (the authors' models); "imagenet": torchvision mean/std (for torchvision init).
    normalize: str = "tf"
    workers: int = 2
    color_jitter: bool = True  # photometric jitter of training crops (brightness, contrast, saturation, hue)
    # The data set's layout (LAYOUTS; built by segkit.data.layouts): "cityscapes" (leftImg8bit/ + gtFine/ or
    # gtCoarse/) or "folder" (images/{split}/**.{png,jpg} beside masks/{split}/**.png, by relative path and stem).
    layout: str = "cityscapes"
    # The class table (segkit.data.classes): "cityscapes" (the 19 training classes) or a YAML/JSON file's path.
    classes: str = "cityscapes"
    # The training split; "+" mixes splits, e.g. "train+train_extra" (Cityscapes' fine and coarse annotations).
    train_split: str = "train"
    # Mask values the class table does not know: "ignore" them (counted, said once) or refuse them ("error").
    unknown_values: str = "ignore"

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
        if min(self.crop_size) <= 0:
            raise UserError(f"data.crop_size={self.crop_size} must be two positive numbers, e.g. "
                            f"{','.join(map(str, TRAINING_CROP))}.", "data.crop_size")
        low, high = self.scale_range
        if not 0 < low <= high:
            raise UserError(f"data.scale_range={self.scale_range} must be two positive factors, low <= high, "
                            "e.g. 0.5,2.0.", "data.scale_range")
        _choice("data.normalize", self.normalize, NORMALIZE_MODES)
        _positive("data.workers", self.workers, zero_ok=True)
        _choice("data.layout", self.layout, LAYOUTS)
        _choice("data.unknown_values", self.unknown_values, ("ignore", "error"))
        if not self.train_split or any(not part for part in self.train_split.split("+")):
            raise UserError(f"data.train_split={self.train_split!r} must name one or more splits joined by +, e.g. "
                            "train or train+train_extra.", "data.train_split")


@dataclass
class LossConfig:
    name: str = "ce"  # "ce" (cross-entropy, the paper's) or "ohem" (PaddleSeg's recipe)
    class_weights: tuple[float, ...] | None = None
    ohem_thresh: float = 0.7
    ohem_min_kept: int = 100_000
    lovasz_weight: float = 0.0  # smp LovaszLoss added with this weight
    dice_weight: float = 0.0  # smp DiceLoss added with this weight

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
        _choice("loss.name", self.name, LOSS_NAMES)
        if not 0 < self.ohem_thresh <= 1:
            raise UserError(f"loss.ohem_thresh={self.ohem_thresh} must lie in (0, 1].", "loss.ohem_thresh")
        for key in ("ohem_min_kept", "lovasz_weight", "dice_weight"):
            _positive(f"loss.{key}", getattr(self, key), zero_ok=True)
        if self.class_weights is not None and min(self.class_weights, default=1) <= 0:
            raise UserError(f"loss.class_weights must all be positive, got {self.class_weights}.",
                            "loss.class_weights")


@dataclass
class OptimizerConfig:
    name: str = "sgd"  # "sgd" (the paper's recipe) or "adamw" (faster from scratch on tiny budgets)
    lr: float = 0.01
    momentum: float = 0.9  # SGD only
    weight_decay: float = 4e-5  # on convolution weights only, not on BatchNorm parameters and biases

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
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

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
        _positive("schedule.poly_power", self.poly_power)
        _positive("schedule.warmup_iterations", self.warmup_iterations, zero_ok=True)
        if not 0 < self.warmup_ratio <= 1:
            raise UserError(f"schedule.warmup_ratio={self.warmup_ratio} must lie in (0, 1].", "schedule.warmup_ratio")
        if not 0 <= self.min_lr_ratio < 1:
            raise UserError(f"schedule.min_lr_ratio={self.min_lr_ratio} must lie in [0, 1).", "schedule.min_lr_ratio")


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

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
        for key in ("iterations", "batch_size", "log_every", "checkpoint_every"):
            _positive(f"train.{key}", getattr(self, key))
        _positive("train.eval_every", self.eval_every, zero_ok=True)


@dataclass
class EvalConfig:
    resolutions: tuple[str, ...] = ("full", "half")
    split: str = "val"

    def check(self) -> None:
        """This section's own rules (``validate`` runs them)."""
        if not self.resolutions:
            raise UserError(f"eval.resolutions is empty; give one or more of {', '.join(RESOLUTIONS)}.",
                            "eval.resolutions")
        for resolution in self.resolutions:
            _choice("eval.resolutions", resolution, RESOLUTIONS)
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

    def resolved(self) -> Config:
        """Defaults that follow other fields made explicit: the gate's pool window follows the training crop, the
        number of classes the class table (read here: a table file that does not parse is one UserError)."""
        if self.model.pool_crop is None:
            self.model.pool_crop = tuple(self.data.crop_size)
        if self.model.num_classes is None:
            self.model.num_classes = class_table(self.data.classes).num_classes
        return self

    def to_dict(self) -> dict:
        """Plain data (lists, numbers, strings) for checkpoints and JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """The config of a checkpoint (plain data), validated and resolved. Older layouts load too: moved keys
        (``ALIASES``) take their place and retired ones (``RETIRED``) are dropped; any other key no field holds is
        refused."""
        data = current_layout(data)
        sections = {name: section(**data.get(name, {})) for name, section in SECTIONS.items()}
        return validate(cls(name=data.get("name", "segkit"), **sections)).resolved()


# Every section of a Config by its field name, with its class: all but ``name``.
SECTIONS = {f.name: f.default_factory for f in dataclasses.fields(Config) if f.name != "name"}
# Keys that moved, old -> new: accepted by overrides and in checkpoints' configs (written before the recipe
# sections).
ALIASES = {
    "train.optimizer": "optimizer.name", "train.lr": "optimizer.lr", "train.momentum": "optimizer.momentum",
    "train.weight_decay": "optimizer.weight_decay", "train.poly_power": "schedule.poly_power",
    "train.warmup_iterations": "schedule.warmup_iterations", "train.warmup_ratio": "schedule.warmup_ratio",
    "train.min_lr_ratio": "schedule.min_lr_ratio", "train.loss": "loss.name", "train.ohem_thresh": "loss.ohem_thresh",
    "train.ohem_min_kept": "loss.ohem_min_kept", "train.class_weights": "loss.class_weights",
    "train.lovasz_weight": "loss.lovasz_weight", "train.dice_weight": "loss.dice_weight",
    "train.eval_resolutions": "eval.resolutions",
}
# Keys older versions wrote that no field holds now, with the value segkit always uses instead: R-ASPP's dropout
# is TF's 0.1 (segkit.models.heads.RASPP; every checkpoint written before the recipe sections holds
# model.dropout), evaluation runs one image at a time. Config.from_dict drops them, with a warning if a checkpoint
# held another value.
RETIRED = {"model.dropout": 0.1, "eval.batch_size": 1}


def validate(config: Config) -> Config:
    """Check every field of ``config`` and return it: each field as its declared type (plain data such as a JSON
    list becomes that type, a wrong type is one UserError), each section's rules (``check``), then the rules that
    involve two sections."""
    config.name = coerce(config.name, str, "name")
    for name, section in SECTIONS.items():
        values = getattr(config, name)
        if not isinstance(values, section):
            raise UserError(f"{name} must be a {section.__name__}, got {type(values).__name__}.")
        types = field_types(section)
        for f in dataclasses.fields(values):
            setattr(values, f.name, coerce(getattr(values, f.name), types[f.name], f"{name}.{f.name}"))
        values.check()
    weights = config.loss.class_weights
    if weights is not None:
        classes = config.model.num_classes or class_table(config.data.classes).num_classes
        if len(weights) != classes:
            raise UserError(f"loss.class_weights has {len(weights)} values but model.num_classes is {classes}; "
                            "give one weight per class.", "loss.class_weights")
    if config.schedule.warmup_iterations >= config.train.iterations:
        raise UserError(f"schedule.warmup_iterations={config.schedule.warmup_iterations} must be fewer than "
                        f"train.iterations={config.train.iterations}.", "schedule.warmup_iterations")
    return config


def table7_config(n: int) -> Config:
    """The config of Table 7 row ``n`` (``segkit.paper.TABLE7``): the row's network (the row's fields that are
    ``ModelConfig`` fields: backbone, width, RF2, head, F) with the authors' recipe, the defaults. Each
    ``configs/table7/rowNN_*.py`` is this; ``segkit.benchmark.table7`` checks them."""
    rows = {row.n: row for row in TABLE7}
    if n not in rows:
        raise UserError(f"n={n!r} is not a row of Table 7; its rows are {min(rows)} to {max(rows)}.", "n")
    model_fields = {f.name for f in dataclasses.fields(ModelConfig)}
    model = {key: value for key, value in dataclasses.asdict(rows[n]).items() if key in model_fields}
    return validate(Config(model=ModelConfig(**model)))


def valid_keys() -> list[str]:
    """Every ``section.field``, and ``name``."""
    return ["name"] + [f"{name}.{f.name}" for name, section in SECTIONS.items() for f in dataclasses.fields(section)]


def check_key(key: str, where: str = "") -> None:
    """``key`` must be one of ``valid_keys``; else one UserError naming the closest (``where``: in what)."""
    valid = valid_keys()
    if key not in valid:
        close = difflib.get_close_matches(key, valid, n=1)
        hint = f" Did you mean {close[0]}?" if close else f" Valid keys: {', '.join(valid)}."
        raise UserError(f"unknown config key {key!r}{where}.{hint}", key)


def current_layout(data: dict) -> dict:
    """A checkpoint's config (plain data) in today's layout: moved keys renamed (``ALIASES``), retired ones dropped
    (``RETIRED``, with a warning if one held another value than segkit uses), any other unknown key refused."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in data.items()}
    for old, new in ALIASES.items():
        old_section, old_field = old.split(".")
        if isinstance(data.get(old_section), dict) and old_field in data[old_section]:
            value = data[old_section].pop(old_field)
            if old == "train.eval_resolutions" and "eval" in data:
                continue  # both existed: the eval section's own wins
            new_section, new_field = new.split(".")
            data.setdefault(new_section, {})[new_field] = value
    for key, used in RETIRED.items():
        section, name = key.split(".")
        value = data[section].pop(name, used) if isinstance(data.get(section), dict) else used
        if value != used:
            warnings.warn(f"a checkpoint's config sets {key}={value!r}, a setting of older versions that segkit "
                          f"ignores now (it always uses {used!r}).", stacklevel=3)
    for key, value in data.items():
        for name in ([f"{key}.{name}" for name in value] if isinstance(value, dict) else [key]):
            check_key(name, " in the checkpoint's config")
    return data
