"""Predictor: an RGB photo in, a Cityscapes trainId label map out, on the fastest backend of this machine.

    predictor = Predictor.from_checkpoint("runs/lraspp_large/best.pt")      # backend="auto"
    labels = predictor.predict(image)                # (H, W) uint8 trainIds at the image's size
    Image.fromarray(overlay(image, labels))

The backends (``segkit.deploy.backends``) do the work; the Predictor checks the photo, normalises it (unless the
backend takes the photo's bytes itself) and times the call.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from segkit.resolutions import RESOLUTIONS
from segkit.data.labels import colorize
from segkit.data.transforms import image_to_tensor
from segkit.deploy.backends import logits_and_steps, make_backend
from segkit.errors import UserError
from segkit.models import load_model

MIN_PHOTO_SIZE = 32  # pixels, each side: below that the network's strided layers run out of image


def to_input(image: np.ndarray, mode: str) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> normalised (1, 3, H, W) float32, as the data set normalises its images."""
    return image_to_tensor(image, mode)[None]


@dataclass
class Timing:
    """Milliseconds of the last ``predict``: preprocessing (normalise) and the backend (network to labels)."""

    preprocess_ms: float = 0.0
    network_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.network_ms


@dataclass
class Predictor:
    """RGB uint8 image -> trainId label map with one backend; build it with ``from_checkpoint``."""

    backend: object
    normalize: str = "tf"
    num_classes: int = 19
    checkpoint: Path | None = None
    last_timing: Timing = field(default_factory=Timing)

    @classmethod
    def from_model(cls, model: nn.Module, normalize: str = "tf", backend: str = "auto", device=None,
                   threads: int | None = None, checkpoint: Path | None = None) -> "Predictor":
        return cls(make_backend(model, backend, device, threads), normalize, model.num_classes, checkpoint)

    @classmethod
    def from_checkpoint(cls, path, backend: str = "auto", device=None, threads: int | None = None) -> "Predictor":
        model, config, _ = load_model(path)
        return cls.from_model(model, config.data.normalize, backend, device, threads, Path(path))

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def predict(self, image: np.ndarray, resolution: str = "full") -> np.ndarray:
        """trainIds (H, W) uint8 of an RGB uint8 image (H, W, 3), the network run at ``resolution``."""
        image = check_photo(image, resolution)
        start = time.perf_counter()
        if hasattr(self.backend, "predict_photo"):  # the backend normalises inside its graph
            middle = start
            labels = self.backend.predict_photo(image, resolution, self.normalize).numpy()
        else:
            images = to_input(image, self.normalize)
            middle = time.perf_counter()
            labels = self.backend(images, resolution).numpy()
        self.last_timing = Timing(1000 * (middle - start), 1000 * (time.perf_counter() - middle))
        return labels

    def logits(self, image: np.ndarray, resolution: str = "full"):
        """(low-resolution logits (1, C, h, w), the steps ``label_map`` takes from them to the photo's labels):
        ``label_map(*predictor.logits(image))`` are ``predict``'s labels; video smoothing averages the logits."""
        image = check_photo(image, resolution)
        start = time.perf_counter()
        if hasattr(self.backend, "photo_logits"):
            result = self.backend.photo_logits(image, resolution, self.normalize)
        else:
            result = logits_and_steps(self.backend.network, to_input(image, self.normalize), resolution,
                                      self.backend.stride)
        self.last_timing = Timing(0.0, 1000 * (time.perf_counter() - start))
        return result


def check_photo(image, resolution: str) -> np.ndarray:
    """The photo as an array, or one sentence on what is wrong with it (or with ``resolution``)."""
    if resolution not in RESOLUTIONS:
        raise UserError(f"unknown resolution {resolution!r}; choose one of {', '.join(RESOLUTIONS)}.")
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UserError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {tuple(image.shape)}.")
    if min(image.shape[:2]) < MIN_PHOTO_SIZE:
        raise UserError(f"the photo is {image.shape[1]}x{image.shape[0]} pixels; segkit needs at least "
                        f"{MIN_PHOTO_SIZE}x{MIN_PHOTO_SIZE}.")
    return image


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The photo with its colour mask blended in (``alpha`` of the mask), RGB uint8."""
    return cv2.addWeighted(colorize(labels), alpha, np.asarray(image, np.uint8), 1 - alpha, 0.0)
