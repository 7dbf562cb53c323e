"""What the thin tools in tools/ share: user errors as one line (exit 2), the default-checkpoint rule and a
checkpoint's model with an optional config file (the device rule is ``segkit.devices.resolve_device``)."""
from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

from segkit.checkpoint import checkpoint_classes, find_latest_checkpoint
from segkit.config import load_config
from segkit.data.classes import class_table
from segkit.errors import UserError, abbreviate
from segkit.weights import WEIGHTS, lookup, weights_path

TRAIN_HINT = ("train one with `python tools/train.py configs/lraspp_large.py` (or `make demo`), or pass --checkpoint, "
              "or --weights NAME (python tools/weights.py list)")
# The library's parameters and the flags that set them in the tools: a UserError about ``device='cuda:3'`` reads
# ``--device 'cuda:3'`` on the command line.
FLAGS = {"device": "--device", "threads": "--threads", "data_root": "--data-root", "checkpoint": "--checkpoint",
         "out": "--out", "bundle": "--bundle", "work_dir": "--work-dir", "resume": "--resume", "backend": "--backend",
         "resolution": "--resolution", "camera": "--camera", "every": "--every", "max_frames": "--max-frames",
         "alpha": "--alpha", "smooth": "--smooth", "show": "--show", "sliding_window": "--sliding-window",
         "train": "--train", "val": "--val", "height": "--height", "width": "--width", "seed": "--seed",
         "opset": "--opset", "calib": "--calib", "calib_images": "--calib-images", "keep_float": "--keep-float",
         "max_drop": "--max-drop", "format": "--format", "classes": "--classes", "weights": "--weights"}


def user_message(exc: BaseException) -> str:
    """The one-line message of a UserError, also when a DataLoader worker re-raised it with its traceback, with
    the flag in place of the library parameter it names (``FLAGS``)."""
    text = str(exc)
    if "Original Traceback" in text:  # torch's ExceptionWrapper: the message is the last traceback line
        last = [line for line in text.splitlines() if line.strip()][-1]
        text = last.split(": ", 1)[1] if last.startswith(("segkit.", "UserError")) else last
    parameter = getattr(exc, "parameter", None)
    if parameter in FLAGS:
        text = re.sub(rf"(?<![\w.]){parameter}=", f"{FLAGS[parameter]} ", text)
    return text


def main_guard(main):
    """Decorate a tool's ``main``: a ``UserError`` prints ``error: <message>`` and exits 2, Ctrl-C exits 130."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as exc:
            print(f"error: {user_message(exc)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper


def resolve_checkpoint(value: str | None, runs: str | Path = "runs", weights: str | None = None,
                       fallback: str | None = None) -> Path:
    """``--checkpoint`` as given, or ``--weights NAME``'s checkpoint (fetched on first use), else the newest
    ``runs/*/best.pt`` (said on stdout), else the named ``fallback`` weights (said), else one clear error."""
    if value and weights:
        raise UserError("give --checkpoint or --weights, not both.")
    if weights:
        lookup(weights, segmentation=True)
        return weights_path(weights)
    if value:
        return Path(value)
    latest = find_latest_checkpoint(runs, "best.pt")
    if latest is None and fallback:
        print(f"no checkpoint given and none in {Path(runs) / '*' / 'best.pt'}: using the authors' {fallback} "
              "(pass --checkpoint or --weights to choose)")
        return weights_path(fallback)
    if latest is None:
        raise UserError(f"no checkpoint given and none found as {Path(runs) / '*' / 'best.pt'} in {Path.cwd()}; "
                        f"{TRAIN_HINT}.")
    print(f"using the newest checkpoint {latest} (pass --checkpoint to choose another)")
    return latest


def add_model_arguments(parser, required: bool = False, default: str = "the newest runs/*/best.pt") -> None:
    """``--checkpoint CKPT`` or ``--weights NAME`` (the authors' models by name, fetched on first use)."""
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--checkpoint", help=f"a segkit checkpoint{'' if required else f' (default: {default})'}")
    names = tuple(name for name, entry in WEIGHTS.items() if entry.segmentation)
    group.add_argument("--weights", choices=names, metavar="NAME",
                       help=f"the authors' model by name, fetched and converted on first use: {', '.join(names)}")


def checkpoint_model(checkpoint, config_path: str | None = None, overrides=()):
    """``(model, config, class table)`` of a checkpoint. What its weights were trained with -- the network, the
    normalisation, the class table -- is the checkpoint's; a CONFIG file adds the rest (the data set, evaluation
    settings) and must agree with the checkpoint on those, else one line naming the first field that differs."""
    from segkit.models import load_model  # PyTorch: only where a tool builds the model

    model, config, state = load_model(checkpoint)
    table = checkpoint_classes(state)
    if not config_path:
        return model, config, table
    file_config = load_config(config_path, overrides)
    trained = {**{f"model.{k}": v for k, v in config.model.network().items()},
               "data.normalize": config.data.normalize}
    given = {**{f"model.{k}": v for k, v in file_config.model.network().items()},
             "data.normalize": file_config.data.normalize}
    for key, value in trained.items():
        if given[key] != value:
            raise UserError(f"config file {config_path} sets {key}={given[key]!r}, but checkpoint {checkpoint} was "
                            f"trained with {key}={value!r}; leave out the config (the checkpoint carries its own) or "
                            "pass the one it was trained with.")
    if _table_content(class_table(file_config.data.classes)) != _table_content(table):
        raise UserError(f"config file {config_path} sets data.classes={file_config.data.classes!r}, another class "
                        f"table than checkpoint {checkpoint} was trained with ({table.num_classes} classes: "
                        f"{abbreviate(list(table.names), 4)}); leave out the config or pass the one it was trained "
                        "with.")
    file_config.model, file_config.data.normalize = config.model, config.data.normalize
    return model, file_config, table


def _table_content(table) -> dict:
    return {key: value for key, value in table.to_dict().items() if key != "source"}
