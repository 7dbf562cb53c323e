"""Making deploy bundles (``segkit.runtime.bundle``: the format, read without PyTorch) and keeping them in the
cache, ``$SEGKIT_HOME/bundles/``: one folder per (checkpoint, photo size, resolution, runtime and precision), made
the first time it is asked for -- in a temporary folder, renamed whole -- and at most ``CACHED_BUNDLES`` kept (the
least recently used go). A cached bundle that does not match (checkpoint hash, versions) or is damaged is rebuilt,
never run.

The graph of each runtime starts at the photo's uint8 pixels (``segkit.deploy.export.PhotoLogits``): ONNX for ONNX
Runtime, OpenVINO's IR for OpenVINO (float32 weights: the precision is a compile setting), the phone graph for
LiteRT (``segkit.deploy.litert``).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from torch import nn

from segkit.data.classes import ClassTable
from segkit.errors import UserError
from segkit.fileio import write_json_atomic
from segkit.geometry import GridPlan
from segkit.inference import grid_stride
from segkit.hub import file_sha256, home, locked
from segkit.runtime.bundle import FORMAT, MANIFEST, Bundle, DamagedBundle, bundle_key, runtime_versions

CACHED_BUNDLES = 16  # bundles kept in the cache: a camera's photos share one size, a folder of photos a few
PRECISIONS = {"onnxruntime": ("f32",), "openvino": ("f32", "bf16"), "litert": ("f32",)}


def cached_bundle(model: nn.Module, checkpoint, checkpoint_sha256: str, normalize: str, table: ClassTable,
                  plan: GridPlan, resolution: str, runtime: str, precision: str) -> Bundle:
    """The cached bundle of this (checkpoint, plan, runtime, precision), made from ``model`` on first use."""
    folder = home() / "bundles" / bundle_key(checkpoint_sha256, plan.image_size, resolution, runtime, precision)
    with locked(folder):
        with contextlib.suppress(DamagedBundle):
            bundle = Bundle.read(folder, checkpoint_sha256, versions=True)
            bundle.touch()
            return bundle
        bundle = write_bundle(model, folder, checkpoint, checkpoint_sha256, normalize, table, plan, resolution,
                              runtime, precision)
    _trim(folder.parent)
    return bundle


def write_bundle(model: nn.Module, folder, checkpoint, checkpoint_sha256: str, normalize: str, table: ClassTable,
                 plan: GridPlan, resolution: str, runtime: str, precision: str = "f32") -> Bundle:
    """Write the bundle of ``model`` for ``plan`` into ``folder`` (replacing what is there), whole or not at all."""
    if precision not in PRECISIONS.get(runtime, ()):
        raise ValueError(f"no {runtime} bundle at precision {precision}")
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        files = _write_graph(model, normalize, plan, runtime, staging)
        meta = {"format": FORMAT, "checkpoint_sha256": checkpoint_sha256,
                "checkpoint": str(checkpoint) if checkpoint else None, "classes": table.to_dict(),
                "output_stride": grid_stride(model), "logits_stride": int(getattr(model, "logits_stride",
                                                                                     grid_stride(model))),
                "resolution": resolution, "normalize": normalize, "runtime": runtime, "precision": precision,
                "plan": {"image_size": list(plan.image_size), "network_size": list(plan.network_size),
                         "padded_size": list(plan.padded_size),
                         "steps": [[kind, list(size)] for kind, size in plan.steps]},
                "graph": {"files": {name: {"bytes": (staging / name).stat().st_size,
                                           "sha256": file_sha256(staging / name)} for name in files},
                          "input": "uint8 RGB (1, H, W, 3)",
                          "output": "head logits (1, C, h, w)" if runtime != "litert" else
                                    "head logits channels-last (1, h, w, C)"},
                "versions": {**runtime_versions(runtime), **_build_versions()}}
        write_json_atomic(staging / MANIFEST, meta)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle.read(folder)


def _write_graph(model: nn.Module, normalize: str, plan: GridPlan, runtime: str, folder: Path) -> list[str]:
    """The runtime's graph of ``model`` from uint8 photos to head logits, written into ``folder``: its files."""
    if runtime == "litert":
        from segkit.deploy.litert import tflite_bytes

        (folder / "graph.tflite").write_bytes(tflite_bytes(model, normalize, plan))
        return ["graph.tflite"]
    from segkit.deploy.export import photo_graph

    graph = photo_graph(model, normalize, plan)
    if runtime == "onnxruntime":
        (folder / "graph.onnx").write_bytes(graph)
        return ["graph.onnx"]
    import openvino

    from segkit.runtime.runners import openvino_core

    openvino.save_model(openvino_core().read_model(graph, b""), folder / "graph.xml", compress_to_fp16=False)
    return ["graph.xml", "graph.bin"]


def _build_versions() -> dict[str, str]:
    import torch

    return {"torch": torch.__version__}


def _trim(cache: Path) -> None:
    """Keep the ``CACHED_BUNDLES`` most recently used bundles."""
    bundles = sorted((p for p in cache.iterdir() if (p / MANIFEST).is_file() and not p.name.startswith(".")),
                     key=lambda p: (p / MANIFEST).stat().st_mtime, reverse=True)
    for stale in bundles[CACHED_BUNDLES:]:
        with locked(stale):
            shutil.rmtree(stale, ignore_errors=True)


def export_bundle(model: nn.Module, folder, checkpoint, normalize: str, table: ClassTable, photo_size,
                  resolution: str, backend: str, seed: int = 0) -> tuple[Bundle, float]:
    """``tools/export.py --bundle``: the bundle of ``model`` for photos of ``photo_size`` in ``backend`` (one of
    ``segkit.runtime.choice.BUNDLED``), written to ``folder``, and the percentage of a random photo's pixels whose
    label the runtime gives as PyTorch does."""
    import numpy as np

    from segkit.deploy.backends import TorchBackend
    from segkit.geometry import plan_for
    from segkit.runtime.bundle import checkpoint_sha256
    from segkit.runtime.choice import BUNDLED
    from segkit.runtime.predictor import BundlePredictor

    runtime, precision = BUNDLED[backend]
    plan = plan_for(photo_size, resolution, model.output_stride)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir()) and not (folder / MANIFEST).is_file()):
        raise UserError(f"bundle={str(folder)!r} exists and is not a deploy bundle; choose a new or empty folder "
                        "(a bundle there is replaced whole).", "bundle")
    try:
        bundle = write_bundle(model, folder, checkpoint, checkpoint_sha256(checkpoint), normalize, table, plan,
                              resolution, runtime, precision)
    except OSError as exc:
        raise UserError(f"cannot write bundle={str(folder)!r} ({exc.strerror}); choose another folder.",
                        "bundle") from None
    photo = np.random.default_rng(seed).integers(0, 256, (*photo_size, 3), dtype=np.uint8)
    reference = TorchBackend(model)
    expected = reference.labels(reference.logits(reference.inputs(photo, plan), plan), plan).numpy()
    labels = BundlePredictor(bundle).predict(photo)
    return bundle, 100.0 * float((labels == expected).mean())

