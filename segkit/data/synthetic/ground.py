"""The ground: fields, the road with its lane markings and crosswalk, verges, parking strips and sidewalks."""
from __future__ import annotations

import numpy as np

from segkit.data.synthetic.canvas import FAR, NEAR, Canvas, pick, vary
from segkit.data.synthetic.classes import PARKING, ROAD, SIDEWALK, TERRAIN
from segkit.data.synthetic.layout import SIDES, Street


def draw_ground(c: Canvas, street: Street) -> None:
    rng = c.rng
    # Everything below the horizon starts as terrain (fields).
    c.box(0, int(c.horizon), c.w, c.h, pick(rng, [(140, 160, 90), (120, 150, 70), (150, 140, 95)], 10), TERRAIN)
    road_colour = pick(rng, [(85, 85, 90), (105, 100, 100), (70, 72, 78), (120, 115, 110)], 8)
    c.floor(-street.road_half, street.road_half, road_colour, ROAD)
    for side in SIDES:
        _roadside(c, street, side, road_colour)
    _lane_markings(c, street)


def _roadside(c: Canvas, street: Street, side: int, road_colour) -> None:
    """Verge, parking strip and sidewalk (tiles and curb) on one side."""
    rng = c.rng
    r = street.road_half
    edge = side * r
    s = street.sidewalk[side]
    if street.grass[side] > 0:
        g = street.grass[side]
        c.floor(edge, edge + side * g, pick(rng, [(120, 170, 80), (150, 175, 95), (135, 150, 70)], 10), TERRAIN)
        edge += side * g
    if street.parking[side] and rng.random() < 0.5:
        z0 = rng.uniform(8, 20)
        c.floor(side * (r - 2.2), side * r, vary(rng, road_colour + 15, 5), PARKING, z0, z0 + rng.uniform(10, 30))
    walk = pick(rng, [(175, 160, 160), (160, 155, 150), (190, 170, 150), (150, 140, 150)], 10)
    c.floor(edge, edge + side * s, walk, SIDEWALK)
    # paving tiles: joints across the walk, every ~1 m
    dark = walk * 0.8
    for z in np.arange(2.0, 60.0, rng.uniform(0.8, 1.5)):
        p = c.project([(edge, 0, z), (edge + side * s, 0, z)])
        c.line(p[0], p[1], dark, SIDEWALK, max(1, c.px(0.03, z)))
    curb = c.project([(edge, 0, NEAR * 4), (edge, 0, FAR)])
    c.line(curb[0], curb[1], walk * 1.15, SIDEWALK, c.px(0.12, 3))


def _lane_markings(c: Canvas, street: Street) -> None:
    """Dashed lines between lanes, solid edge lines, sometimes a crosswalk."""
    rng = c.rng
    r = street.road_half
    paint = (235, 235, 225) if rng.random() < 0.85 else (230, 200, 60)
    dash, gap = rng.uniform(2, 4), rng.uniform(4, 8)
    for k in range(1, street.lanes):
        x = street.lane_line(k)
        z = rng.uniform(1.5, 3)
        while z < 120:
            c.floor(x - 0.07, x + 0.07, vary(rng, paint, 6), ROAD, z, z + dash)
            z += dash + gap
    for side in SIDES:
        c.floor(side * (r - 0.35), side * (r - 0.22), vary(rng, paint, 6), ROAD, 2.0, 200)
    if rng.random() < 0.5:  # crosswalk
        z0 = rng.uniform(9, 25)
        for x in np.arange(-r + 0.5, r - 0.5, 1.0):
            c.floor(x, x + 0.5, vary(rng, paint, 6), ROAD, z0, z0 + 3)
