"""Reading segkit checkpoint files safely (the weights-only unpickler), shared by ``segkit.models.from_checkpoint``,
the trainer's resume and the tools.

A checkpoint is a dict saved with ``torch.save``: ``model`` (state dict), ``config`` (plain data), ``iteration``,
and for a resumable one the trainer's state (``segkit.engine.checkpoint``).
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch

from segkit.errors import UserError

REQUIRED_KEYS = ("model", "config", "iteration")


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a segkit checkpoint with the weights-only unpickler; UserError for anything a user can fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; train one with tools/train.py or pass --checkpoint.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "allowed global" in str(e):  # a valid pickle of arbitrary objects: someone else's file
            raise UserError(f"{path} is not a segkit checkpoint (it holds objects other than tensors and plain "
                            f"data, which are not loaded for safety).") from None
        raise UserError(f"checkpoint {path} is truncated or corrupt ({_first_line(e)}); use another one.") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise UserError(f"checkpoint {path} is truncated or corrupt ({_first_line(e)}); use another one.") from None
    missing = [k for k in REQUIRED_KEYS if not (isinstance(state, dict) and k in state)]
    if missing:
        raise UserError(f"{path} is not a segkit checkpoint (it lacks {', '.join(missing)}).")
    return state


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
