"""The model a service serves: a checkpoint's predictor on one worker thread, warmed before the port opens.

The predictor is ``segkit.runtime.predictor.RuntimePredictor`` where the backend has deploy bundles (PyTorch is
imported only to make a photo size's bundle the first time), else ``segkit.predict.Predictor`` (a GPU, the
checkpoint's int8 graphs, ``--backend torch``): the choice ``tools/infer.py`` makes for photos. Everything that
touches the predictor runs on the one worker thread -- made there, warmed there, run there -- since the runtimes
use every core themselves and OpenVINO's plugins want the thread that loaded them.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from segkit.checkpoint import quantized_dir
from segkit.errors import UserError, check_choice
from segkit.resolutions import RESOLUTIONS
from segkit.runtime.bundle import checkpoint_sha256
from segkit.runtime.choice import BACKEND_CHOICES, BUNDLED, bundled_auto

DEFAULT_PHOTO_SIZE = (1024, 2048)  # (height, width): a Cityscapes photo, warmed at every resolution


class ServedModel:
    """A checkpoint's photos to label maps on one worker thread. ``backend``: a name of
    ``segkit.runtime.choice.BACKEND_CHOICES``; ``threads``: the runtime's (default: all cores)."""

    def __init__(self, checkpoint, backend: str = "auto", threads: int | None = None, say=print):
        check_choice("backend", backend, BACKEND_CHOICES, "backend")
        if threads is not None and threads < 1:
            raise UserError(f"threads={threads} must be at least 1.", "threads")
        self.checkpoint = Path(checkpoint)
        self.sha256 = checkpoint_sha256(self.checkpoint)  # also: one sentence when the file is missing
        self.say = say
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="segkit-inference")
        try:
            self.predictor = self.worker.submit(make_predictor, self.checkpoint, backend, threads, say).result()
        except BaseException:
            self.worker.shutdown(wait=False)
            raise
        self.backend = self.predictor.backend_name
        # "segkit.runtime": deploy bundles, no PyTorch; "torch": segkit.predict's Predictor
        self.runtime = "segkit.runtime" if type(self.predictor).__module__.startswith("segkit.runtime") else "torch"
        self._lock = threading.Lock()  # the counts are written on the worker and read by the event loop
        self._served: dict[tuple[int, int, str], int] = {}

    @property
    def table(self):
        """The class table (names, colours): the checkpoint's, known once a photo was predicted (``warm``)."""
        return self.predictor.table

    def warm(self, size: tuple[int, int] = DEFAULT_PHOTO_SIZE) -> None:
        """Photos of ``size`` ready at every resolution: their bundles made or loaded, the runtime's first run paid."""
        for resolution in RESOLUTIONS:
            start = time.perf_counter()
            self.worker.submit(self._predict, np.zeros((*size, 3), np.uint8), resolution, False).result()
            self.say(f"{size[1]}x{size[0]} photos at {resolution} resolution ready "
                     f"({time.perf_counter() - start:.1f} s)")

    def submit(self, photo: np.ndarray, resolution: str) -> Future:
        """The photo's prediction on the worker thread: a future of (labels (H, W) uint8, milliseconds)."""
        return self.worker.submit(self._predict, photo, resolution, True)

    def _predict(self, photo: np.ndarray, resolution: str, count: bool) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        labels = self.predictor.predict(photo, resolution=resolution)
        elapsed = 1000 * (time.perf_counter() - start)
        key = (photo.shape[0], photo.shape[1], resolution)
        with self._lock:
            self._served[key] = self._served.get(key, 0) + int(count)
        return labels, elapsed

    def photo_sizes(self) -> list[dict]:
        """The (height, width, resolution) predicted so far -- warmed or served -- and the requests each served."""
        with self._lock:
            served = dict(self._served)
        return [{"height": h, "width": w, "resolution": r, "requests": n} for (h, w, r), n in served.items()]

    def close(self) -> None:
        self.worker.shutdown(wait=True)


def make_predictor(checkpoint: Path, backend: str, threads: int | None, say=print):
    """``tools/infer.py``'s choice for photos: the runtime where a deploy bundle serves the backend, else the
    PyTorch ``Predictor`` (imported only then)."""
    chosen = bundled_auto(quantized_dir(checkpoint)) if backend == "auto" else backend
    if chosen in BUNDLED:
        from segkit.runtime.predictor import RuntimePredictor

        return RuntimePredictor(checkpoint, chosen, threads, say)
    import torch

    from segkit.predict import Predictor

    if threads is not None:
        torch.set_num_threads(threads)  # the process's PyTorch pool; the runtimes get theirs from the backend
    return Predictor.from_checkpoint(checkpoint, backend=backend, threads=threads)
