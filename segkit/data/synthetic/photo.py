"""The camera's share of the picture: the void regions (ego vehicle's bonnet, out-of-roi border, rectification
corners), then texture by class, lighting, a cast shadow, vignetting, blur and sensor noise."""
from __future__ import annotations

import cv2
import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick
from segkit.data.synthetic.classes import (BICYCLE, BUILDING, BUS, CAR, EGO, FENCE, GROUND, LIGHT, MOTORCYCLE,
                                           OUT_OF_ROI, PARKING, PERSON, POLE, RAIL, RECTIFICATION, RIDER, ROAD,
                                           SIDEWALK, SIGN, SKY, STATIC, TERRAIN, TRAIN, TRUCK, VEGETATION, WALL)


def _texture_table(values: dict[int, tuple[float, float, float]]) -> np.ndarray:
    table = np.zeros((256, 3), dtype=np.float32)
    for label_id, amplitudes in values.items():
        table[label_id] = amplitudes
    return table


# Per-class texture: amplitudes of (coarse, medium, fine) noise; vegetation is leafy, sky smooth, cars glossy.
TEXTURE = _texture_table({
    ROAD: (0.05, 0.05, 0.06), SIDEWALK: (0.04, 0.04, 0.04), BUILDING: (0.05, 0.06, 0.03), WALL: (0.05, 0.10, 0.05),
    FENCE: (0.03, 0.03, 0.03), POLE: (0.02, 0.02, 0.02), LIGHT: (0.01, 0.01, 0.02), SIGN: (0.01, 0.01, 0.02),
    VEGETATION: (0.12, 0.30, 0.12), TERRAIN: (0.10, 0.12, 0.05), SKY: (0.03, 0.01, 0.005), PERSON: (0.03, 0.04, 0.03),
    RIDER: (0.03, 0.04, 0.03), CAR: (0.02, 0.02, 0.015), TRUCK: (0.03, 0.03, 0.02), BUS: (0.02, 0.02, 0.015),
    MOTORCYCLE: (0.02, 0.02, 0.02), BICYCLE: (0.02, 0.02, 0.02), EGO: (0.02, 0.02, 0.02), STATIC: (0.05, 0.05, 0.04),
    PARKING: (0.05, 0.05, 0.05), GROUND: (0.08, 0.08, 0.05), TRAIN: (0.02, 0.02, 0.015), RAIL: (0.06, 0.09, 0.08),
})


def draw_void(c: Canvas) -> None:
    """Ego-vehicle bonnet at the bottom, out-of-roi border, sometimes black rectification corners."""
    rng = c.rng
    h, w = c.h, c.w
    top = h * rng.uniform(0.86, 0.93)
    xs = np.linspace(0, w, 24)
    ys = top + (h - top) * 0.6 * ((xs - w / 2) / (w / 2)) ** 2
    bonnet = np.concatenate([np.stack([xs, ys], 1), [(w, h), (0, h)]])
    c.fill(bonnet, pick(rng, [(30, 30, 35), (200, 200, 205), (60, 70, 90)], 8), EGO)
    if rng.random() < 0.3:
        s = w * rng.uniform(0.02, 0.06)
        c.fill([(0, 0), (s, 0), (0, s)], (0, 0, 0), RECTIFICATION)
    b = max(1, int(round(h * 0.004)))
    roi = np.zeros((h, w), dtype=bool)
    roi[:b], roi[-b:], roi[:, :b], roi[:, -b:] = True, True, True, True
    c.label[roi] = OUT_OF_ROI  # the image keeps its content there, as in Cityscapes


def finish(c: Canvas) -> np.ndarray:
    """Texture by class, lighting, cast shadows, vignetting, blur and sensor noise -> RGB uint8."""
    rng = c.rng
    h, w = c.h, c.w
    amp = TEXTURE[c.label]  # (H, W, 3): coarse, medium, fine
    coarse = cv2.resize(rng.standard_normal((max(2, h // 64), max(2, w // 64)), dtype=np.float32), (w, h))
    medium = cv2.resize(rng.standard_normal((max(2, h // 6), max(2, w // 6)), dtype=np.float32), (w, h))
    fine = rng.standard_normal((h, w), dtype=np.float32)
    gain = 1 + amp[..., 0] * coarse + amp[..., 1] * medium + amp[..., 2] * fine
    # lighting: global exposure, colour cast, a cast shadow over part of the ground and facades
    gain *= np.float32(rng.uniform(0.65, 1.25))
    if rng.random() < 0.6:
        gain *= _shadow(c)
    yy, xx = np.ogrid[:h, :w]
    gain *= 1 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2).astype(np.float32)
    cast = np.array(rng.uniform(0.9, 1.1, 3), dtype=np.float32)
    image = c.image.astype(np.float32) * gain[..., None] * cast
    image = cv2.GaussianBlur(image, (0, 0), max(0.5, w / 2048 * rng.uniform(0.6, 1.2)))
    sensor = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(1.0, 4.0))
    image += sensor[..., None]  # luminance noise after the blur, as a camera's
    return np.clip(image, 0, 255).astype(np.uint8)


def _shadow(c: Canvas) -> np.ndarray:
    """Gain (H, W) float32 of a soft-edged shadow from the horizon to the bottom, on one side."""
    rng, h, w = c.rng, c.h, c.w
    shadow = np.ones((h, w), dtype=np.float32)
    x0, x1 = rng.uniform(0, w), rng.uniform(0, w)
    pts = np.array([(x0, c.horizon), (x1, h), (0 if x1 < w / 2 else w, h), (0 if x0 < w / 2 else w, c.horizon)])
    cv2.fillPoly(shadow, [pts.astype(np.int32)], float(rng.uniform(0.5, 0.8)))
    return cv2.GaussianBlur(shadow, (0, 0), max(1.0, w / 400))
