"""Checkpoint files: atomic save, safe load, the newest of a runs folder, and the RNG state for exact resume.

A checkpoint is a dict saved with ``torch.save`` and loadable with ``torch.load(path, weights_only=True)``:
``model`` (state dict), ``config`` (plain data), ``iteration``, ``classes`` (the class table as plain data,
``segkit.data.classes``); a resumable one also holds ``optimizer``,
``scheduler``, ``scaler``, ``rng`` (from ``capture_rng_state``) and the sampler position. Everything in it must
be tensors or plain Python data, or the weights-only loader refuses it. Building the model a checkpoint describes
is ``segkit.models.load_model``. PyTorch is imported by the functions that need it: finding the newest checkpoint
(``tools/infer.py`` with a cached deploy bundle) does not.
"""
from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import numpy as np

from segkit.data.classes import ClassTable
from segkit.errors import UserError
from segkit.fileio import atomic_open

REQUIRED_KEYS = ("model", "config", "iteration")


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load a segkit checkpoint with the weights-only unpickler; UserError for anything a user can fix."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint={str(path)!r} does not exist; train one with tools/train.py.", "checkpoint")
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


def checkpoint_classes(state: dict) -> ClassTable:
    """The class table a checkpoint carries (``classes``, written by the trainer); checkpoints written before
    tables, and the authors' converted models, predict Cityscapes' 19 training classes."""
    if isinstance(state.get("classes"), dict):
        return ClassTable.from_dict(state["classes"], "the checkpoint's class table")
    return ClassTable.cityscapes()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` to ``path`` so that a crash at any moment leaves either the old or the new file, whole."""
    import torch

    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(state, f)


def find_latest_checkpoint(runs_dir="runs", name="best.pt") -> Path | None:
    """The newest ``runs_dir/*/name`` by modification time, or None."""
    candidates = [p for p in Path(runs_dir).glob(f"*/{name}") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def quantized_dir(checkpoint) -> Path:
    """Where a checkpoint's int8 graphs live (``tools/quantize.py``): ``runs/demo/best.pt`` ->
    ``runs/demo/best.int8/``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.int8")


def capture_rng_state() -> dict:
    """Python, NumPy (global), torch CPU and this process's CUDA device generator states, as tensors and plain
    data (every rank of a DDP run captures its own; the trainer gathers them)."""
    import torch

    version, mt_state, gauss_next = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {"keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # the current device: the one this process trains on
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of ``capture_rng_state``. ``state`` holds CPU tensors (checkpoints are loaded on the CPU whatever
    the training device); a CUDA state goes to the current device (older checkpoints: one per device)."""
    import torch

    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        if isinstance(state["cuda"], torch.Tensor):
            torch.cuda.set_rng_state(state["cuda"].cpu())
        else:  # written before per-rank states: every device's, as that process saw them
            for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(cuda_state.cpu(), device)
