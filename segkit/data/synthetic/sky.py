"""The sky with clouds, and the far skyline (buildings, tree lines) closing the street at the horizon."""
from __future__ import annotations

import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick
from segkit.data.synthetic.classes import BUILDING, SKY, VEGETATION


def draw_sky(c: Canvas) -> None:
    rng = c.rng
    top = np.array([rng.uniform(40, 90), rng.uniform(100, 150), rng.uniform(170, 230)])
    low = np.clip(top + rng.uniform(40, 90), 0, 255) if rng.random() < 0.8 else np.full(3, rng.uniform(170, 220))
    t = np.linspace(0, 1, c.h, dtype=np.float32)[:, None]
    c.image[:] = (top * (1 - t) + low * t).astype(np.uint8)[:, None, :]
    c.label[:] = SKY
    for _ in range(rng.integers(0, 6)):  # clouds
        y = rng.uniform(0, c.horizon * 0.8)
        x = rng.uniform(0, c.w)
        grey = rng.uniform(200, 250)
        for _ in range(4):
            c.ellipse((x + rng.normal(0, c.w * 0.03), y + rng.normal(0, c.h * 0.01)),
                      (c.w * rng.uniform(0.03, 0.08), c.h * rng.uniform(0.015, 0.04)), (grey, grey, grey + 5), SKY)


def draw_skyline(c: Canvas) -> None:
    """Far buildings and tree lines closing the street at the horizon."""
    rng = c.rng
    z = rng.uniform(150, 250)
    x = -rng.uniform(60, 120)
    while x < 120:
        width = rng.uniform(10, 30)
        if rng.random() < 0.7:
            h = rng.uniform(8, 35)
            c.fill3d([(x, 0, z), (x + width, 0, z), (x + width, h, z), (x, h, z)],
                     pick(rng, [(150, 145, 140), (120, 110, 105), (170, 160, 150), (100, 105, 115)], 15), BUILDING)
        else:
            _tree_line(c, x, z, width)
        x += width


def _tree_line(c: Canvas, x: float, z: float, width: float) -> None:
    rng = c.rng
    h = rng.uniform(6, 15)
    top = c.project([(x + width / 2, h, z)])[0]
    base = c.project([(x, 0, z), (x + width, 0, z)])
    c.ellipse(((base[0][0] + base[1][0]) / 2, top[1] + c.px(h / 2, z) * 0.5),
              (c.px(width / 2, z), c.px(h / 2, z)), pick(rng, [(60, 90, 40), (80, 110, 50)], 10), VEGETATION)
    c.box(base[0][0], top[1] + c.px(h / 2, z), base[1][0], base[0][1], (70, 100, 45), VEGETATION)
