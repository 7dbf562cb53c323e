"""Deploy bundles: what a runtime needs to segment photos of one size, in one folder, read without PyTorch.

A bundle holds the graph from the photo's uint8 pixels (1, H, W, 3) to the head logits -- normalisation, the
half-resolution resize and the pixel grid inside -- and ``bundle.json``::

    {"format": 1, "checkpoint_sha256": "...", "checkpoint": "runs/demo/best.pt", "classes": {class table},
     "output_stride": 16, "logits_stride": 8, "resolution": "full",
     "plan": {"image_size": [1024, 2048], "network_size": [1024, 2048], "padded_size": [1025, 2049],
              "steps": [["corners", [1025, 2049]], ["crop", [1024, 2048]]]},
     "runtime": "onnxruntime", "precision": "f32", "normalize": "tf",
     "graph": {"files": {"graph.onnx": {"bytes": ..., "sha256": ...}}, "layout": "NCHW"},
     "versions": {"segkit": "0.1.0", "onnxruntime": "1.32.0", "torch": "2.14.1", ...}}

``tools/export.py --bundle DIR`` writes one; the Predictor and ``tools/infer.py`` keep them in
``$SEGKIT_HOME/bundles/`` (``segkit.deploy.bundle``), one per (checkpoint, photo size, resolution, runtime and
precision). ``Bundle.read`` checks a folder before anything runs it: the format, every graph file's size and
SHA-256, and -- for the cache -- the checkpoint's hash and the versions it was made with.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from segkit.data.classes import ClassTable
from segkit.errors import UserError
from segkit.geometry import GridPlan
from segkit.hub import file_sha256

FORMAT = 1
MANIFEST = "bundle.json"


class DamagedBundle(UserError):
    """A bundle that cannot be run as it is: rebuilt where it is a cache entry, one line where a user gave it."""


@dataclass(frozen=True)
class Bundle:
    folder: Path
    meta: dict

    @property
    def plan(self) -> GridPlan:
        plan = self.meta["plan"]
        return GridPlan(tuple(plan["image_size"]), tuple(plan["network_size"]), tuple(plan["padded_size"]))

    @property
    def table(self) -> ClassTable:
        return ClassTable.from_dict(self.meta["classes"], f"{self.folder / MANIFEST}'s class table")

    @property
    def runtime(self) -> str:
        return self.meta["runtime"]

    @property
    def precision(self) -> str:
        return self.meta["precision"]

    @property
    def photo_size(self) -> tuple[int, int]:
        return tuple(self.meta["plan"]["image_size"])

    @property
    def name(self) -> str:
        """How a backend is called that runs this bundle: "onnxruntime", "openvino-bf16", "openvino-int8", ..."""
        return self.runtime if self.precision == "f32" else f"{self.runtime}-{self.precision}"

    @classmethod
    def read(cls, folder, checkpoint_sha256: str | None = None, versions: bool = False) -> "Bundle":
        """The bundle in ``folder``, checked: its format, its graph files (size and SHA-256); with
        ``checkpoint_sha256`` the checkpoint it was made from; with ``versions`` that it was made by this segkit
        for the runtime installed here. A check that fails is a ``DamagedBundle``."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise DamagedBundle(f"{folder} is not a readable deploy bundle ({exc.__class__.__name__}: {exc}); "
                                "export it again (tools/export.py --bundle).") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else "?"
            raise DamagedBundle(f"{folder / MANIFEST} has format {found}, not {FORMAT}; export the bundle again with "
                                "this segkit.")
        for name, record in meta["graph"]["files"].items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != record["bytes"] or file_sha256(path) != record["sha256"]:
                raise DamagedBundle(f"{path} is missing or damaged (its size or SHA-256 is not the one "
                                    f"{MANIFEST} records); export the bundle again.")
        if checkpoint_sha256 is not None and meta.get("checkpoint_sha256") != checkpoint_sha256:
            raise DamagedBundle(f"{folder} was made from another checkpoint than the one asked for.")
        if versions:
            made, here = meta.get("versions", {}), runtime_versions(meta["runtime"])
            changed = [name for name, version in here.items() if made.get(name) != version]
            if changed:
                raise DamagedBundle(f"{folder} was made with other versions of {', '.join(changed)}.")
        return cls(folder, meta)

    def runner(self, threads: int | None = None):
        """A callable from uint8 photos (1, H, W, 3) of the bundle's size to head logits (1, C, h, w) float32."""
        from segkit.runtime.runners import make_runner

        return make_runner(self, threads)

    def touch(self) -> None:
        """Mark the bundle used now (the cache keeps the most recently used)."""
        os.utime(self.folder / MANIFEST)


def runtime_versions(runtime: str) -> dict[str, str]:
    """The versions a bundle of ``runtime`` depends on: segkit's and the runtime package's."""
    from importlib import metadata

    from segkit import __version__

    package = {"onnxruntime": "onnxruntime", "openvino": "openvino", "litert": "ai-edge-litert"}[runtime]
    try:
        version = metadata.version(package)
    except metadata.PackageNotFoundError:
        version = "not installed"
    return {"segkit": __version__, package: version}


def bundle_key(checkpoint_sha: str, photo_size, resolution: str, runtime: str, precision: str) -> str:
    """The name of a bundle's folder in the cache (``$SEGKIT_HOME/bundles/``)."""
    return f"{checkpoint_sha[:16]}_{photo_size[0]}x{photo_size[1]}_{resolution}_{runtime}-{precision}"


def checkpoint_sha256(path) -> str:
    """The SHA-256 of a checkpoint file: what a bundle was made from."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; pass a segkit checkpoint (.pt).", "checkpoint")
    return file_sha256(path)
