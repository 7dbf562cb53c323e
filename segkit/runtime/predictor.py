"""Photos to labels with deploy bundles and no PyTorch: ``BundlePredictor`` (one bundle, photos of its size),
``bundle_for`` (the cached bundle of a checkpoint, photo size, resolution and backend: found without PyTorch, made
with it -- ``segkit.deploy.bundle``, imported only then -- the first time), and ``RuntimePredictor``, a
checkpoint's photos of any size through those bundles, with the interface of ``segkit.predict.Predictor``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from segkit.errors import UserError
from segkit.geometry import check_photo, plan_for
from segkit.hub import home
from segkit.runtime.bundle import Bundle, DamagedBundle, bundle_key, checkpoint_sha256
from segkit.runtime.choice import BUNDLED
from segkit.runtime.labelmap import label_map


@dataclass
class Timing:
    """Milliseconds of the last ``predict``: the photo to its labels (``network_ms``: the graph, normalisation and
    resize inside, then the label map, ``labels_ms`` of it), as ``segkit.predict.Timing`` counts them."""

    network_ms: float = 0.0
    labels_ms: float = 0.0
    preprocess_ms: float = 0.0  # inside the graph

    @property
    def total_ms(self) -> float:
        return self.network_ms


@dataclass
class BundlePredictor:
    """RGB uint8 photos of the bundle's size -> class-index label maps (H, W) uint8, in the bundle's runtime."""

    bundle: Bundle
    threads: int | None = None
    last_timing: Timing = field(default_factory=Timing)

    def __post_init__(self):
        self.run = self.bundle.runner(self.threads)
        self.plan, self.table = self.bundle.plan, self.bundle.table

    @property
    def name(self) -> str:
        return self.bundle.name

    def predict(self, photo: np.ndarray) -> np.ndarray:
        photo = np.asarray(photo)
        if photo.dtype != np.uint8 or photo.shape != (*self.plan.image_size, 3):
            raise UserError(f"this bundle segments {self.plan.image_size[1]}x{self.plan.image_size[0]} RGB uint8 "
                            f"photos, not {photo.dtype} {tuple(photo.shape)}; use a bundle made for this size.")
        start = time.perf_counter()
        logits = self.run(np.ascontiguousarray(photo)[None])
        middle = time.perf_counter()
        labels = label_map(logits, self.plan)
        end = time.perf_counter()
        self.last_timing = Timing(1000 * (end - start), 1000 * (end - middle))
        return labels


class RuntimePredictor:
    """A checkpoint's photos, of any size, to labels through its cached bundles in ``backend`` (one of
    ``BUNDLED``): ``predict``, ``table``, ``backend_name`` and ``last_timing`` as ``segkit.predict.Predictor`` has
    them. The bundles of the last ``KEPT`` photo sizes stay loaded."""

    KEPT = 4

    def __init__(self, checkpoint, backend: str, threads: int | None = None, say=print):
        if backend not in BUNDLED:
            raise UserError(f"backend={backend!r} has no deploy bundle; choose one of {', '.join(BUNDLED)}.",
                            "backend")
        self.checkpoint, self.backend_name, self.threads, self.say = checkpoint, backend, threads, say
        self.loaded: dict[tuple, BundlePredictor] = {}
        self.last_timing = Timing()
        self.table = None

    def predict(self, photo: np.ndarray, resolution: str = "full") -> np.ndarray:
        photo = check_photo(photo, resolution)
        key = (tuple(photo.shape[:2]), resolution)
        predictor = self.loaded.pop(key, None)
        if predictor is None:
            predictor = BundlePredictor(bundle_for(self.checkpoint, key[0], resolution, self.backend_name, self.say),
                                        self.threads)
            while len(self.loaded) >= self.KEPT:
                self.loaded.pop(next(iter(self.loaded)))
        self.loaded[key] = predictor  # last used last
        self.table = predictor.table
        labels = predictor.predict(photo)
        self.last_timing = predictor.last_timing
        return labels


def bundle_for(checkpoint, photo_size: tuple[int, int], resolution: str, backend: str, say=print) -> Bundle:
    """The cached bundle of ``checkpoint`` for photos of ``photo_size`` at ``resolution`` in ``backend`` (one of
    ``BUNDLED``): read and checked without PyTorch where it exists, else made now (PyTorch imported for it)."""
    runtime, precision = BUNDLED[backend]
    sha = checkpoint_sha256(checkpoint)
    key = bundle_key(sha, photo_size, resolution, runtime, precision)
    try:
        bundle = Bundle.read(home() / "bundles" / key, sha, versions=True)
        bundle.touch()
        return bundle
    except DamagedBundle:
        pass
    say(f"making the {backend} bundle for {photo_size[1]}x{photo_size[0]} photos at {resolution} resolution "
        f"(once; kept in {home() / 'bundles'})")
    try:  # PyTorch: only to make a bundle
        from segkit.checkpoint import checkpoint_classes
        from segkit.deploy.bundle import cached_bundle
        from segkit.models import load_model
    except ImportError:
        raise UserError("making a deploy bundle needs PyTorch, which is not installed here; install segkit's [torch] "
                        "extra, or make the bundle elsewhere (tools/export.py --bundle) and run it with python -m "
                        "segkit.runtime.") from None

    model, config, state = load_model(checkpoint)
    plan = plan_for(photo_size, resolution, model.output_stride)
    return cached_bundle(model.eval(), checkpoint, sha, config.data.normalize, checkpoint_classes(state), plan,
                         resolution, runtime, precision)

