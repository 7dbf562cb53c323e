"""Building facades along the back of the sidewalks: blocks with cornices, framed windows and shop fronts."""
from __future__ import annotations

import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick, vary
from segkit.data.synthetic.classes import BUILDING
from segkit.data.synthetic.layout import SIDES, Street


def draw_facades(c: Canvas, street: Street) -> None:
    rng = c.rng
    for side in SIDES:
        x = side * (street.frontage(side) + rng.uniform(0, 1.5))
        if not street.buildings[side]:
            continue
        z = rng.uniform(1.0, 4.0)
        blocks = []
        while z < rng.uniform(90, 160):
            length = rng.uniform(8, 30)
            if rng.random() > 0.15:
                blocks.append((z, z + length))
            z += length + (rng.uniform(3, 10) if rng.random() < 0.2 else 0)
        for z0, z1 in reversed(blocks):  # far to near
            _facade(c, x, z0, z1)


def _facade(c: Canvas, x: float, z0: float, z1: float) -> None:
    rng = c.rng
    height = rng.uniform(7, 28)
    wall = pick(rng, [(180, 160, 130), (150, 90, 70), (200, 195, 185), (120, 120, 125), (210, 180, 140),
                      (140, 150, 160), (170, 120, 100)], 18)
    c.fill3d([(x, 0, z0), (x, height, z0), (x, height, z1), (x, 0, z1)], wall, BUILDING)
    cornice = max(0.3, height - rng.uniform(0.4, 1.0))
    c.fill3d([(x, cornice, z0), (x, height, z0), (x, height, z1), (x, cornice, z1)], wall * 0.75, BUILDING)
    glass = pick(rng, [(40, 50, 60), (70, 80, 95), (30, 35, 40), (100, 120, 140)], 10)
    _windows(c, x, z0, z1, cornice, wall * rng.uniform(0.6, 1.3), glass)
    if rng.random() < 0.5:  # shop front / doors on the ground floor
        for zc in np.arange(z0 + 2, z1 - 2, rng.uniform(4, 8)):
            c.fill3d([(x, 0, zc), (x, 2.3, zc), (x, 2.3, zc + 1.2), (x, 0, zc + 1.2)], vary(rng, glass, 15), BUILDING)


def _windows(c: Canvas, x: float, z0: float, z1: float, cornice: float, frame, glass) -> None:
    """A grid of framed windows, floor by floor up to the cornice, as far as they stay 2 px wide."""
    rng = c.rng
    floor_h, col_w = rng.uniform(2.8, 3.6), rng.uniform(2.0, 3.5)
    win_w, win_h = col_w * rng.uniform(0.4, 0.7), floor_h * rng.uniform(0.4, 0.6)
    ground_floor = rng.uniform(0.0, 1.0)
    for zc in np.arange(z0 + col_w / 2, z1 - win_w / 2, col_w):
        if c.px(win_w, zc) < 2:
            break
        for y in np.arange(floor_h * (1 + ground_floor * 0.3), cornice - win_h, floor_h):
            corners = [(x, y, zc - win_w / 2), (x, y + win_h, zc - win_w / 2), (x, y + win_h, zc + win_w / 2),
                       (x, y, zc + win_w / 2)]
            if c.px(0.15, zc) >= 2:
                frame_pts = [(px, py - 0.1 if py == y else py + 0.1, pz) for px, py, pz in corners]
                c.fill3d(frame_pts, frame, BUILDING)
            c.fill3d(corners, vary(rng, glass, 8), BUILDING)
