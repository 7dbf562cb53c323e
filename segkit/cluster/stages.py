"""What runs on Ray's workers for ``segkit.cluster``, as plain Python (no Ray imported: Ray calls these, and a test or
a user's own pipeline can call them without it): the decoding stage (``read_photos``), the model's actor
(``Segmenter``), the writing stage (``write_results``), and deploy bundles sent as bytes (``pack_bundles``,
``unpack_bundle``)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import numpy as np

from segkit.deploy.photos import load_photo, write_outputs
from segkit.errors import UserError
from segkit.geometry import check_photo
from segkit.hub import home, locked


def read_photos(batch: dict) -> dict:
    """Stage 1, CPU tasks: ``{"input": paths, "name": output names}`` -> the same with "image" (RGB uint8 (H, W, 3)
    upright, ``load_photo``'s rule; (0, 0, 3) where it could not be read), "error" (why not; "" when read) and
    "read_ms". A bad file is a row with its reason, never an exception: the job goes on."""
    images, errors, times = [], [], []
    for path in batch["input"]:
        start = time.perf_counter()
        try:
            image, error = load_photo(Path(path)), ""
        except UserError as exc:
            image, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 -- whatever a damaged file makes a decoder raise is its reason
            image, error = None, f"{path}: {type(exc).__name__}: {exc}"
        images.append(image if image is not None else np.zeros((0, 0, 3), np.uint8))
        errors.append(error)
        times.append(1000 * (time.perf_counter() - start))
    return {**batch, "image": images, "error": errors, "read_ms": np.array(times)}


class Segmenter:
    """Photos to label maps in a Ray Data actor pool: a callable class for ``Dataset.map_batches``, which loads the
    model once per actor (here, in ``__init__``) and then segments batch after batch::

        import ray
        from segkit.cluster import Segmenter, pack_bundles

        bundles = pack_bundles("runs/demo/best.pt", [(1024, 2048)], backend="onnxruntime")  # on the driver, once
        ds = ray.data.read_images("s3://fleet/frames/", mode="RGB", include_paths=True)
        ds = ds.map_batches(Segmenter, fn_constructor_kwargs={"bundles": bundles}, batch_size=8,
                            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=4), num_cpus=1)
        for row in ds.iter_rows():
            row["path"], row["labels"]               # (H, W) uint8 class indices (Cityscapes: trainIds)

    The model, one of:

    - ``bundles``: deploy bundles, each a folder (``tools/export.py --bundle``; a path the workers see) or
      ``pack_bundle``'s bytes of one; a photo is segmented by the bundle of its size, in ``segkit.runtime`` (no
      PyTorch on the workers). They must be made for ``resolution``.
    - ``checkpoint``: a checkpoint path the workers see, run by ``segkit.predict.Predictor`` with ``backend``
      (default auto) on ``device`` (e.g. "cuda" in an actor given ``num_gpus=1``: Ray shows it its own GPU); the
      workers need PyTorch (the [torch] extra); ``quantized``: its int8 graphs' folder, as ``tools/infer.py
      --quantized`` takes it.

    ``threads``: the runtime's threads (default: the CPUs Ray gave the actor, else all cores).

    The batch, ``batch_format="numpy"``: a dict of numpy arrays with one row per photo --

    - in: "image", RGB uint8 photos, (N, H, W, 3) when all have one size, else an object array of (H, W, 3) arrays
      (what ``ray.data.read_images(..., mode="RGB")`` gives); optionally "error", a str per row, non-empty where the
      photo could not be read (that row is passed through unsegmented). Every other column passes through.
    - out: the same with "labels", (H, W) uint8 class indices per photo ((0, 0) where not segmented), "error" ("" or
      why the photo was not segmented: a one-sentence reason, the job goes on), "network_ms" (float64: photo to
      label map) and "worker" (str: "host/pid" of the actor).

    ``table`` is the model's class table (names, colours, mask values) for writing its outputs
    (``segkit.deploy.photos.write_outputs``).
    """

    def __init__(self, bundles: list | None = None, checkpoint=None, resolution: str = "full", backend: str = "auto",
                 device=None, threads: int | None = None, quantized=None):
        if (bundles is None) == (checkpoint is None):
            raise UserError("Segmenter takes bundles or a checkpoint: give one of them.")
        self.resolution, self.threads = resolution, threads or _assigned_cpus()
        self.worker = f"{socket.gethostname()}/{os.getpid()}"
        self.loaded: dict[tuple, object] = {}
        if checkpoint is not None:
            import torch

            from segkit.predict import Predictor  # PyTorch: this mode only

            if self.threads:
                torch.set_num_threads(self.threads)  # this process's PyTorch pool: the actor's CPUs, not the node's
            self.predictor = Predictor.from_checkpoint(checkpoint, backend, device, self.threads,
                                                       Path(quantized) if quantized else None)
            self.table, self.bundles = self.predictor.table, {}
            return
        from segkit.runtime.bundle import Bundle

        self.predictor = None
        self.bundles = {}
        for item in bundles:
            bundle = Bundle.read(item) if isinstance(item, (str, os.PathLike)) else unpack_bundle(item)
            if bundle.meta["resolution"] != resolution:
                raise UserError(f"the bundle in {bundle.folder} was made for {bundle.meta['resolution']} resolution, "
                                f"not {resolution}; make bundles for {resolution} resolution.")
            self.bundles[bundle.photo_size] = bundle
        self.table = next(iter(self.bundles.values())).table if self.bundles else None

    def __call__(self, batch: dict) -> dict:
        images = batch["image"]
        errors = list(batch["error"]) if "error" in batch else [""] * len(images)
        labels, times = [], []
        for index, image in enumerate(images):
            start = time.perf_counter()
            result = None
            if not errors[index]:
                try:
                    result = self.predict(image)
                except UserError as exc:
                    errors[index] = _with_input(batch, index, str(exc))
                except Exception as exc:  # noqa: BLE001 -- one photo's failure is its row's, the batch goes on
                    errors[index] = _with_input(batch, index, f"{type(exc).__name__}: {exc}")
            labels.append(result if result is not None else np.zeros((0, 0), np.uint8))
            times.append(1000 * (time.perf_counter() - start))
        return {**batch, "labels": labels, "error": errors, "network_ms": np.array(times),
                "worker": np.array([self.worker] * len(images))}

    def predict(self, image: np.ndarray) -> np.ndarray:
        """One RGB uint8 photo (H, W, 3) to its (H, W) uint8 class indices, as ``tools/infer.py`` segments it."""
        if self.predictor is not None:
            return self.predictor.predict(image, resolution=self.resolution)
        image = check_photo(image, self.resolution)
        size = tuple(image.shape[:2])
        predictor = self.loaded.pop(size, None)
        if predictor is None:
            if size not in self.bundles:
                made = ", ".join(f"{w}x{h}" for h, w in self.bundles) or "none"
                raise UserError(f"no bundle for {size[1]}x{size[0]} photos (this job's bundles: {made}).")
            from segkit.runtime.predictor import BundlePredictor, RuntimePredictor

            predictor = BundlePredictor(self.bundles[size], self.threads)
            while len(self.loaded) >= RuntimePredictor.KEPT:  # the sizes used last stay loaded
                self.loaded.pop(next(iter(self.loaded)))
        self.loaded[size] = predictor
        return predictor.predict(image)


def write_results(batch: dict, out_dir: str, table=None, model: str = "") -> dict:
    """Stage 3, CPU tasks: each segmented photo's three outputs (``write_outputs``: atomic, the files of
    ``tools/infer.py``) into ``out_dir``, and one manifest line per row: ``{"status": ..., "record": JSON}``."""
    out_dir = Path(out_dir)
    statuses, records = [], []
    for index, path in enumerate(batch["input"]):
        name, error = str(batch["name"][index]), str(batch["error"][index])
        start = time.perf_counter()
        outputs = []
        if not error:
            try:
                written = write_outputs(out_dir, name, batch["image"][index], batch["labels"][index], table)
                outputs = [path.relative_to(out_dir).as_posix() for path in written]
            except UserError as exc:
                error = str(exc)
            except Exception as exc:  # noqa: BLE001 -- recorded as this photo's failure; the others go on
                error = f"{path}: writing its outputs: {type(exc).__name__}: {exc}"
        record = {"input": str(path), "status": "failed" if error else "ok", "outputs": outputs,
                  "milliseconds": {"read": round(float(batch["read_ms"][index]), 1),
                                   "network": round(float(batch["network_ms"][index]), 1),
                                   "write": round(1000 * (time.perf_counter() - start), 1)},
                  "worker": str(batch["worker"][index]), "model": model}
        if error:
            record["reason"] = error
        statuses.append(record["status"])
        records.append(json.dumps(record))
    return {"status": statuses, "record": records}


def _with_input(batch: dict, index: int, reason: str) -> str:
    """A reason that names its photo: by "input" (``read_photos``' rows) or "path" (``ray.data.read_images``')."""
    key = "input" if "input" in batch else "path" if "path" in batch else None
    return f"{batch[key][index]}: {reason}" if key else reason


def _assigned_cpus() -> int | None:
    """The CPUs Ray gave this actor (its runtime's threads), None outside Ray (the runtimes then take all cores)."""
    if "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized():
        return None
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    return max(1, round(cpus)) if cpus else None


# ---- bundles through the object store --------------------------------------------------------------------------

def pack_bundle(folder) -> dict:
    """A deploy bundle's files as bytes, to send to workers that do not see ``folder``: {"name": the folder's name,
    "files": {file name: bytes}} (``bundle.json`` and the graph's files; OpenVINO's compiled cache stays)."""
    from segkit.runtime.bundle import MANIFEST as BUNDLE_MANIFEST, Bundle

    bundle = Bundle.read(folder)
    names = [BUNDLE_MANIFEST, *bundle.meta["graph"]["files"]]
    return {"name": bundle.folder.name, "files": {name: (bundle.folder / name).read_bytes() for name in names}}


def unpack_bundle(packed: dict):
    """``pack_bundle``'s bytes as a bundle in this machine's cache, ``$SEGKIT_HOME/bundles/NAME`` (kept there, so
    the next actor on this machine, or the next job, finds it), checked by ``Bundle.read``."""
    from segkit.runtime.bundle import MANIFEST as BUNDLE_MANIFEST, Bundle, DamagedBundle

    files = packed["files"]
    sha = json.loads(files[BUNDLE_MANIFEST])["checkpoint_sha256"]
    folder = home() / "bundles" / Path(packed["name"]).name
    with locked(folder):
        try:  # the same bundle, not one of the same name made here by other versions: the driver's graph runs
            if (folder / BUNDLE_MANIFEST).read_bytes() == files[BUNDLE_MANIFEST]:
                return Bundle.read(folder, sha)
        except (OSError, DamagedBundle):
            pass
        staging = folder.with_name(f".{folder.name}.{os.getpid()}.unpacking")
        staging.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (staging / name).write_bytes(data)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    return Bundle.read(folder, sha)


def pack_bundles(checkpoint, sizes, resolution: str = "full", backend: str = "onnxruntime", say=print) -> list[dict]:
    """The checkpoint's bundles for photos of each (height, width) in ``sizes`` at ``resolution`` in ``backend``
    (one of ``segkit.runtime.choice.BUNDLED``), from the cache or made now (PyTorch, the first time), packed for
    ``Segmenter(bundles=...)``."""
    from segkit.runtime.predictor import bundle_for

    return [pack_bundle(bundle_for(checkpoint, tuple(size), resolution, backend, say).folder) for size in sizes]
