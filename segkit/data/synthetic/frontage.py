"""Walls, fences and hedges along the back of the sidewalks, and the trees of a park where no buildings stand."""
from __future__ import annotations

import functools

import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick
from segkit.data.synthetic.classes import FENCE, VEGETATION, WALL
from segkit.data.synthetic.furniture import draw_tree
from segkit.data.synthetic.items import Item
from segkit.data.synthetic.layout import SIDES, Street


def frontage_items(rng: np.random.Generator, street: Street) -> list[Item]:
    items = []
    for side in SIDES:
        x = side * (street.frontage(side) - 0.1)
        z = rng.uniform(2, 10)
        while z < 70:
            length = rng.uniform(5, 25)
            kind = rng.choice(["wall", "fence", "hedge", "none"], p=[0.3, 0.3, 0.2, 0.2] if street.buildings[side]
                              else [0.25, 0.35, 0.35, 0.05])
            if kind != "none":
                draw = functools.partial(PIECES[str(kind)], x=x, z0=z, z1=z + length)
                items.append(Item(z + length, draw))
            z += length + rng.uniform(0, 10)
        if not street.buildings[side]:  # park: trees behind the frontage
            for zt in rng.uniform(5, 90, size=rng.integers(4, 10)):
                items.append(Item(zt + 40, functools.partial(draw_tree, x=x + side * rng.uniform(2, 15), z=zt)))
    return items


def draw_wall(c: Canvas, x: float, z0: float, z1: float) -> None:
    rng = c.rng
    h = rng.uniform(0.8, 2.2)
    colour = pick(rng, [(165, 160, 150), (140, 130, 120), (190, 185, 170), (120, 115, 100)], 10)
    c.fill3d([(x, 0, z0), (x, h, z0), (x, h, z1), (x, 0, z1)], colour, WALL)
    c.fill3d([(x, h - 0.15, z0), (x, h, z0), (x, h, z1), (x, h - 0.15, z1)], colour * 1.15, WALL)
    for y in np.arange(0.3, h - 0.15, 0.3):  # block courses
        p = c.project([(x, y, z0), (x, y, z1)])
        c.line(p[0], p[1], colour * 0.8, WALL, max(1, c.px(0.02, (z0 + z1) / 2)))


def draw_fence(c: Canvas, x: float, z0: float, z1: float) -> None:
    rng = c.rng
    h = rng.uniform(1.0, 2.0)
    colour = pick(rng, [(150, 120, 90), (110, 115, 110), (60, 90, 60), (170, 170, 165)], 10)
    c.fill3d([(x, 0.05, z0), (x, h, z0), (x, h, z1), (x, 0.05, z1)], colour * 0.55, FENCE)
    step = rng.uniform(0.1, 0.25)
    for z in np.arange(z0, z1, step):  # slats, as far as they stay 3 px apart
        if c.px(step, z) < 3:
            break
        p = c.project([(x, 0.05, z), (x, h, z)])
        c.line(p[0], p[1], colour, FENCE, max(1, c.px(step * 0.45, z)))
    for y in (0.25, h - 0.2):  # rails
        p = c.project([(x, y, z0), (x, y, z1)])
        c.line(p[0], p[1], colour * 1.1, FENCE, max(1, c.px(0.06, (z0 + z1) / 2)))


def draw_hedge(c: Canvas, x: float, z0: float, z1: float) -> None:
    h = c.rng.uniform(0.8, 1.8)
    c.fill3d([(x, 0, z0), (x, h, z0), (x, h, z1), (x, 0, z1)], pick(c.rng, [(50, 90, 35), (70, 110, 45)], 10),
             VEGETATION)


PIECES = {"wall": draw_wall, "fence": draw_fence, "hedge": draw_hedge}
