"""The colour image and the label image, painted together through the street camera, and colour helpers."""
from __future__ import annotations

import cv2
import numpy as np

CAMERA_HEIGHT = 1.2  # metres above the road
FOCAL = 1.1  # x image width, in pixels (as Cityscapes)
NEAR, FAR = 0.5, 400.0  # depths (metres) between which the ground is drawn


class Canvas:
    """Colour image and label image drawn together, with the street camera's projection."""

    def __init__(self, height: int, width: int, rng: np.random.Generator):
        self.h, self.w, self.rng = height, width, rng
        self.image = np.zeros((height, width, 3), dtype=np.uint8)
        self.label = np.zeros((height, width), dtype=np.uint8)
        self.f = FOCAL * width
        self.horizon = height * rng.uniform(0.40, 0.47)
        self.cx = width * rng.uniform(0.45, 0.55)

    def project(self, points) -> np.ndarray:
        """(X right, Y up, Z forward) metres -> pixel coordinates, int32 (N, 2)."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        z = np.maximum(p[:, 2], 0.3)
        x = self.cx + self.f * p[:, 0] / z
        y = self.horizon + self.f * (CAMERA_HEIGHT - p[:, 1]) / z
        return np.clip(np.stack([x, y], 1), -1e5, 1e5).round().astype(np.int32)

    def px(self, metres: float, z: float) -> float:
        """Size in pixels of ``metres`` at depth ``z``."""
        return self.f * metres / max(z, 0.3)

    def fill(self, points2d, colour, label_id: int) -> None:
        pts = [np.asarray(points2d, dtype=np.int32).reshape(-1, 2)]
        cv2.fillPoly(self.image, pts, rgb(colour))
        cv2.fillPoly(self.label, pts, int(label_id))

    def fill3d(self, points3d, colour, label_id: int) -> None:
        self.fill(self.project(points3d), colour, label_id)

    def floor(self, x0: float, x1: float, colour, label_id: int, z0: float = NEAR, z1: float = FAR) -> None:
        """A strip of the ground plane from ``x0`` to ``x1``, depths ``z0`` to ``z1``."""
        self.fill3d([(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)], colour, label_id)

    def box(self, x0, y0, x1, y1, colour, label_id: int) -> None:
        """Axis-aligned pixel rectangle."""
        self.fill([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour, label_id)

    def ellipse(self, centre, axes, colour, label_id: int, thickness: int = -1) -> None:
        centre = tuple(int(round(v)) for v in centre)
        axes = tuple(max(1, int(round(v))) for v in axes)
        cv2.ellipse(self.image, centre, axes, 0, 0, 360, rgb(colour), thickness)
        cv2.ellipse(self.label, centre, axes, 0, 0, 360, int(label_id), thickness)

    def line(self, p0, p1, colour, label_id: int, thickness: float) -> None:
        p0 = tuple(int(round(v)) for v in p0)
        p1 = tuple(int(round(v)) for v in p1)
        t = max(1, int(round(thickness)))
        cv2.line(self.image, p0, p1, rgb(colour), t)
        cv2.line(self.label, p0, p1, int(label_id), t)


def rgb(colour) -> tuple[int, int, int]:
    return tuple(int(np.clip(c, 0, 255)) for c in colour)


def vary(rng: np.random.Generator, colour, amount: float = 12.0) -> np.ndarray:
    """``colour`` with Gaussian noise per channel: no two objects of a class look the same."""
    return np.clip(np.asarray(colour, dtype=np.float64) + rng.normal(0, amount, 3), 0, 255)


def pick(rng: np.random.Generator, colours, amount: float = 12.0) -> np.ndarray:
    """One of ``colours``, varied."""
    return vary(rng, colours[rng.integers(len(colours))], amount)
