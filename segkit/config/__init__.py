"""Plain dataclass configs.

A config file is ordinary Python that builds ``config = Config(...)`` (a Table 7 row's: ``table7_config(n)``);
``load_config`` runs it, checks it with ``validate`` and applies ``section.field=value`` overrides, parsed by the
field's type. Sections: ``model``, ``data``, the training recipe in ``loss``, ``optimizer`` and ``schedule``, the
run in ``train``, and ``eval``. Defaults are the authors' recipe (docs/paper.md#training-recipes): LR-ASPP on
MobileNetV3-Large with RF2 at output stride 16, 769x769 crops, cross-entropy, SGD 0.01 with momentum 0.9 and weight
decay 4e-5, poly decay over 90k iterations. Keys that moved keep their old spelling as an alias (``ALIASES``:
``train.lr`` is ``optimizer.lr``), for commands, scripts and checkpoints written before.

``sections`` holds the dataclasses and ``validate``, ``coerce`` the parsing of values by type, ``files`` the
config files and overrides.
"""
from segkit.config.files import apply_override, apply_overrides, load_config, read_config
from segkit.config.sections import (
    ALIASES,
    BACKBONE_NAMES,
    HEADS,
    LAYOUTS,
    LOSS_NAMES,
    NETWORK_FIELDS,
    NORMALIZE_MODES,
    OPTIMIZERS,
    RETIRED,
    SECTIONS,
    SPLITS,
    Config,
    DataConfig,
    EvalConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    ScheduleConfig,
    TrainConfig,
    table7_config,
    validate,
)

__all__ = [
    "ALIASES", "BACKBONE_NAMES", "HEADS", "LAYOUTS", "LOSS_NAMES", "NETWORK_FIELDS", "NORMALIZE_MODES", "OPTIMIZERS",
    "RETIRED", "SECTIONS", "SPLITS", "Config", "DataConfig", "EvalConfig", "LossConfig", "ModelConfig",
    "OptimizerConfig", "ScheduleConfig", "TrainConfig",
    "apply_override", "apply_overrides", "load_config", "read_config", "table7_config", "validate",
]
