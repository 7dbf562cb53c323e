"""Checkpoint files: atomic save, safe load, RNG state for exact resume.

A checkpoint is a dict saved with ``torch.save`` and loadable with ``torch.load(path, weights_only=True)``:
``model`` (state dict), ``config`` (plain data), ``iteration``; a resumable one also holds ``optimizer``,
``scheduler``, ``scaler``, ``rng`` (from ``capture_rng_state``) and the sampler position. Everything in it must
be tensors or plain Python data, or the weights-only loader refuses it.
"""
from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

from segkit.errors import UserError
from segkit.fileio import atomic_open

REQUIRED_KEYS = ("model", "config", "iteration")


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` to ``path`` so that a crash at any moment leaves either the old or the new file, whole."""
    with atomic_open(path, "wb", fsync=True) as f:
        torch.save(state, f)


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


def find_latest_checkpoint(runs_dir="runs", name="best.pt") -> Path | None:
    """The newest ``runs_dir/*/name`` by modification time, or None."""
    candidates = [p for p in Path(runs_dir).glob(f"*/{name}") if p.is_file()]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def capture_rng_state() -> dict:
    """Python, NumPy (global), torch CPU and CUDA generator states, as tensors and plain data."""
    version, mt_state, gauss_next = random.getstate()
    _, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state = {
        "python": {"version": version, "state": torch.tensor(mt_state, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy": {"keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "cached_gaussian": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of ``capture_rng_state``; CUDA states are restored for the devices present."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        for device, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state.cpu(), device)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__


def load_model(path, model_config=None, map_location="cpu"):
    """Build the segmentor a checkpoint describes and load its weights: ``(model, config, checkpoint)``.

    ``model_config`` (a ``ModelConfig``) overrides the checkpoint's own; a mismatch is one UserError naming the
    differing keys. ImageNet initialisation is never re-run (the weights come from the checkpoint).
    """
    import dataclasses

    from segkit.config import Config
    from segkit.models import build_model

    checkpoint = load_checkpoint(path, map_location=map_location)
    config = Config.from_dict(checkpoint["config"])
    if model_config is not None:
        config.model = model_config
    model = build_model(dataclasses.replace(config.model, pretrained=""))
    state = checkpoint["model"]
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        details = []
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", mismatched)):
            if keys:
                details.append(f"{title}: {', '.join(keys[:3])}{' …' if len(keys) > 3 else ''}")
        raise UserError(f"checkpoint {path} does not fit the {config.model.backbone}/{config.model.head} model "
                        f"({'; '.join(details)}); use the config it was trained with.")
    model.load_state_dict(state)
    return model, config, checkpoint
