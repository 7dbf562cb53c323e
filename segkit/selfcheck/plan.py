"""What the self-check does: the options of its command line, and the sizes of each step (``full_plan`` for a
GPU, ``quick_plan`` shrinks everything for a CPU: tests, CI)."""
from __future__ import annotations

from dataclasses import dataclass, field

STEPS = ("data", "train", "eval", "predict", "resume", "ddp")


@dataclass
class Options:
    """What the command line chose."""

    device: str  # "cpu" or "cuda"
    quick: bool
    budget_s: float
    json: str | None  # where the JSON report goes
    work_dir: str | None  # None: a temporary folder, removed at the end
    log_dir: str | None  # where every step's log is copied
    workers: int  # data loader workers
    ddp_gloo: bool  # run the ddp step on the CPU too
    steps: list[str]
    cpus: int  # the cores this process may use


@dataclass(frozen=True)
class Run:
    """One training run's size, as ``--set`` overrides of tools/train.py."""

    iterations: int
    checkpoint_every: int
    log_every: int
    crop: tuple[int, int] | None = None  # None: the config's own (769x769)
    batch: int | None = None  # None: the config's own (8)


@dataclass(frozen=True)
class Plan:
    config: str  # the training config, relative to the repository
    train_images: int
    val_images: int
    image_size: tuple[int, int]  # (height, width) of the synthetic images; val "full" resolution = this
    train: Run
    resume: Run
    ddp: Run
    warm_windows: int  # log windows left out of the steady-state rate
    predict_warmup: int
    predict_repeats: int
    min_start_s: float  # a step does not start with less budget than this
    caps: dict = field(default_factory=dict)  # per-step time limits (s)


def full_plan() -> Plan:
    return Plan(config="configs/lraspp_large.py", train_images=16, val_images=10, image_size=(1024, 2048),
                train=Run(300, 300, 20), resume=Run(40, 10, 10, (257, 257), 8), ddp=Run(100, 100, 20),
                warm_windows=2, predict_warmup=3, predict_repeats=20, min_start_s=15.0,
                caps={"data": 60, "train": 150, "eval": 60, "predict": 60, "resume": 120, "ddp": 100})


def quick_plan() -> Plan:
    return Plan(config="configs/lraspp_small.py", train_images=4, val_images=2, image_size=(128, 256),
                train=Run(12, 12, 4, (65, 129), 2), resume=Run(12, 4, 4, (65, 129), 2),
                ddp=Run(8, 8, 4, (65, 129), 2), warm_windows=1, predict_warmup=1, predict_repeats=5,
                min_start_s=2.0, caps={"data": 60, "train": 60, "eval": 60, "predict": 60, "resume": 90, "ddp": 60})
