"""Predictor: an RGB photo in, a label map of the model's classes out, on the fastest backend of this machine.

    from segkit.predict import Predictor, overlay
    predictor = Predictor.from_checkpoint("runs/lraspp_large/best.pt")      # backend="auto"
    predictor = Predictor.from_pretrained("mnv3-large-cityscapes")          # the authors' model, fetched once
    labels = predictor.predict(image)                # (H, W) uint8 class indices (Cityscapes: trainIds)
    Image.fromarray(overlay(image, labels, table=predictor.table))   # the checkpoint's class colours

A prediction is a ``segkit.inference.GridPlan`` (made for the photo's size, the resolution and the model's output
stride) executed by a backend (``segkit.deploy.backends``): the photo to the plan's network input, the network to
the head logits, the logits to the label map. The Predictor checks the photo, makes the plan and times the steps.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segkit.checkpoint import checkpoint_classes, quantized_dir
from segkit.data.classes import ClassTable
from segkit.deploy.backend import Backend, BackendOptions, PhotoInput
from segkit.deploy.backends import make_backend
from segkit.deploy.photos import overlay
from segkit.geometry import MIN_PHOTO_SIZE, check_photo
from segkit.inference import GridPlan, plan_for
from segkit.models import load_model


__all__ = ["MIN_PHOTO_SIZE", "Predictor", "Timing", "check_photo", "overlay"]


@dataclass
class Timing:
    """Milliseconds of the last ``predict``: preprocessing (normalise, resize, pad) and the network to labels."""

    preprocess_ms: float = 0.0
    network_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.network_ms


@dataclass
class Predictor:
    """RGB uint8 image -> class-index label map with one backend; build it with ``from_checkpoint``. ``table`` is
    what the classes are (names, colours, mask values): the checkpoint's, else Cityscapes'."""

    backend: Backend
    normalize: str = "tf"
    num_classes: int = 19
    checkpoint: Path | None = None
    last_timing: Timing = field(default_factory=Timing)
    table: ClassTable = field(default_factory=ClassTable.cityscapes)

    @classmethod
    def from_model(cls, model: nn.Module, normalize: str = "tf", backend: str = "auto", device=None,
                   threads: int | None = None, checkpoint: Path | None = None,
                   quantized: Path | None = None, table: ClassTable | None = None) -> "Predictor":
        """``threads``: the runtimes' thread pool (PyTorch's is the process's: ``torch.set_num_threads``);
        ``quantized``: the folder of the checkpoint's int8 graphs (default: ``runs/x/best.int8/`` beside
        ``checkpoint``), which "auto" takes when they passed their accuracy gate."""
        if quantized is None and checkpoint is not None:
            quantized = quantized_dir(checkpoint)
        options = BackendOptions(device, threads, normalize, quantized, checkpoint, table)
        return cls(make_backend(model, backend, options), normalize, model.num_classes, checkpoint,
                   table=table or ClassTable.cityscapes())

    @classmethod
    def from_checkpoint(cls, path, backend: str = "auto", device=None, threads: int | None = None,
                        quantized: Path | None = None) -> "Predictor":
        model, config, state = load_model(path)
        return cls.from_model(model, config.data.normalize, backend, device, threads, Path(path), quantized,
                              checkpoint_classes(state))

    @classmethod
    def from_pretrained(cls, name: str, backend: str = "auto", device=None, threads: int | None = None) -> "Predictor":
        """The authors' model ``name`` (``segkit.weights``: "mnv3-large-cityscapes", "mnv3-small-cityscapes"),
        fetched and converted into the cache on first use."""
        from segkit.weights import lookup, weights_path

        lookup(name, segmentation=True)
        return cls.from_checkpoint(weights_path(name), backend, device, threads)

    @property
    def backend_name(self) -> str:
        return self.backend.name

    @torch.inference_mode()
    def predict(self, image: np.ndarray, resolution: str = "full") -> np.ndarray:
        """Class indices (H, W) uint8 (Cityscapes: trainIds) of an RGB uint8 image (H, W, 3), the network run at
        ``resolution``."""
        image = check_photo(image, resolution)
        plan = plan_for(image.shape[:2], resolution, self.backend.stride)
        start = time.perf_counter()
        inputs = self.backend.inputs(image, plan)
        middle = time.perf_counter()
        labels = self.backend.labels(self.backend.logits(inputs, plan), plan).numpy()
        # A backend whose graph starts at the photo's pixels (OpenVINO) does no preprocessing of its own.
        preprocess = 0.0 if isinstance(inputs, PhotoInput) else middle - start
        self.last_timing = Timing(1000 * preprocess, 1000 * (time.perf_counter() - middle))
        return labels

    @torch.inference_mode()
    def logits(self, image: np.ndarray, resolution: str = "full") -> tuple[torch.Tensor, GridPlan]:
        """(head logits (1, C, h, w) on the CPU, the plan): ``label_map(*predictor.logits(image))`` are
        ``predict``'s labels (``segkit.deploy.labelmap.label_map``); video smoothing averages the logits."""
        image = check_photo(image, resolution)
        plan = plan_for(image.shape[:2], resolution, self.backend.stride)
        start = time.perf_counter()
        logits = self.backend.logits(self.backend.inputs(image, plan), plan).cpu()
        self.last_timing = Timing(0.0, 1000 * (time.perf_counter() - start))
        return logits, plan

