"""Street furniture and trees: lamps, traffic lights, signs, static objects (bins, boxes, bollards)."""
from __future__ import annotations

import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick, vary
from segkit.data.synthetic.classes import LIGHT, POLE, SIGN, STATIC, VEGETATION


def draw_tree(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    trunk_h, radius = rng.uniform(2.0, 4.0), rng.uniform(1.5, 3.5)
    bottom, top = c.project([(x, 0, z), (x, trunk_h + radius * 0.5, z)])
    c.line(bottom, top, pick(rng, [(90, 70, 50), (70, 60, 50)], 8), VEGETATION, c.px(0.25, z))
    leaf = pick(rng, [(60, 100, 40), (80, 120, 45), (45, 80, 35), (100, 130, 60)], 12)
    centre = c.project([(x, trunk_h + radius, z)])[0]
    r = c.px(radius, z)
    for _ in range(rng.integers(3, 7)):
        c.ellipse(centre + rng.normal(0, r * 0.35, 2), (r * rng.uniform(0.5, 0.8), r * rng.uniform(0.4, 0.7)),
                  vary(rng, leaf, 10), VEGETATION)


def _pole(c: Canvas, x: float, z: float, height: float, colour, width: float = 0.18) -> np.ndarray:
    """Draws a pole; returns its top in pixels."""
    bottom, top = c.project([(x, 0, z), (x, height, z)])
    c.line(bottom, top, colour, POLE, max(2, c.px(width, z)))
    return top


def draw_street_lamp(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    colour = pick(rng, [(120, 120, 120), (70, 75, 70), (40, 60, 50), (150, 150, 145)], 8)
    height = rng.uniform(6, 9)
    top = _pole(c, x, z, height, colour)
    arm = c.project([(x - np.sign(x) * rng.uniform(1, 2.5), height, z)])[0]  # over the road
    c.line(top, arm, colour, POLE, max(2, c.px(0.12, z)))
    c.ellipse(arm + (0, c.px(0.1, z)), (c.px(0.35, z), c.px(0.12, z)), (230, 230, 210), POLE)


def draw_traffic_light(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    pole_colour = pick(rng, [(90, 90, 90), (60, 60, 60), (140, 140, 140)], 8)
    height = rng.uniform(3.0, 4.5)
    top = _pole(c, x, z, height, pole_colour, 0.15)
    housing = pick(rng, [(30, 30, 30), (45, 45, 40), (200, 170, 40)], 8)
    w, h = c.px(0.35, z), c.px(1.0, z)
    x0, y0 = top[0] - w / 2, top[1] - h * 0.4
    c.box(x0, y0, x0 + w, y0 + h, housing, LIGHT)
    lit = rng.integers(3)
    for k, colour in enumerate([(255, 40, 30), (255, 190, 30), (40, 255, 120)]):
        on = k == lit
        c.ellipse((x0 + w / 2, y0 + h * (0.18 + 0.32 * k)), (w * 0.32, w * 0.32),
                  colour if on else np.array(colour) * 0.25 + 20, LIGHT)


def draw_sign(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    height = rng.uniform(2.2, 3.2)
    top = _pole(c, x, z, height, pick(rng, [(130, 130, 130), (100, 100, 105)], 8), 0.08)
    s = c.px(rng.uniform(0.6, 0.9), z)
    kind = rng.integers(4)
    cx, cy = top[0], top[1] - s * 0.3
    if kind == 0:  # prohibitory: red ring, white disc
        c.ellipse((cx, cy), (s / 2, s / 2), (220, 30, 30), SIGN)
        c.ellipse((cx, cy), (s * 0.38, s * 0.38), (240, 240, 235), SIGN)
    elif kind == 1:  # mandatory: blue disc with a white arrow
        c.ellipse((cx, cy), (s / 2, s / 2), (30, 80, 200), SIGN)
        c.line((cx, cy + s * 0.25), (cx, cy - s * 0.25), (245, 245, 245), SIGN, s * 0.1)
    elif kind == 2:  # warning: red triangle
        tri = np.array([(cx, cy - s / 2), (cx + s / 2, cy + s / 2), (cx - s / 2, cy + s / 2)])
        c.fill(tri, (220, 30, 30), SIGN)
        c.fill((tri - (cx, cy)) * 0.65 + (cx, cy + s * 0.08), (245, 240, 230), SIGN)
    else:  # information: blue or yellow rectangle
        colour = pick(rng, [(30, 90, 190), (240, 200, 30)], 8)
        c.box(cx - s * 0.6, cy - s * 0.4, cx + s * 0.6, cy + s * 0.4, colour, SIGN)
        c.box(cx - s * 0.45, cy - s * 0.1, cx + s * 0.45, cy + s * 0.05, (245, 245, 240), SIGN)


def draw_static_object(c: Canvas, x: float, z: float) -> None:
    """Bins, boxes, bollards: Cityscapes "static" (void)."""
    rng = c.rng
    w, h = rng.uniform(0.3, 1.2), rng.uniform(0.4, 1.2)
    c.fill3d([(x - w / 2, 0, z), (x + w / 2, 0, z), (x + w / 2, h, z), (x - w / 2, h, z)],
             pick(rng, [(60, 90, 60), (90, 90, 95), (160, 120, 40), (50, 50, 60)], 10), STATIC)
