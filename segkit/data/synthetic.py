"""A synthetic city in the Cityscapes format: the embedded default data set for the demo and the tests.

Each image is a procedurally drawn street seen from a car's windscreen camera (pin-hole, 1.2 m above the road,
focal length 1.1 x width as Cityscapes): sky, a road in perspective with lane markings, sidewalks, terrain,
building facades with windows, walls, fences, trees, poles, traffic lights and signs, cars, trucks, buses,
persons, riders on bicycles and motorcycles, parked bicycles, trams, and void regions (ego vehicle, out-of-roi
border, static objects, parking, rail track). Objects are painted far to near, so near ones occlude far ones, and
the label image receives the same polygons as the colour image; a tram's long side is painted in slices of about
two metres (its window bays), each at its own depth. Classes differ by colour, texture (per-class noise), shape
and context, each varied per object; lighting, shadows, sensor noise and blur vary per image.

About a third of the streets carry a tram line: one or two standard-gauge tracks in inner lanes, in asphalt or setts
shared with the traffic, or one on a reserved ballast or grass bed in a curb lane; the bed is rail track (void),
with steel rails. On most tracks stands a multi-section low-floor tram (class "train", on its bed), seen from
behind or, on the oncoming side, from the front: livery, window bays, doors, articulation bellows, windscreen,
destination display, lights, pantograph. Traffic that would collide with a tram, or stand on a reserved bed, is
left out.

Labels are written as official **labelIds** (``cityscapesscripts`` table), not trainIds. Image ``i`` of a split
uses the random stream ``(seed, split, i)``: deterministic, train and val independent, and adding images does not
change the existing ones. The tram line draws from a child stream of it (``Generator.spawn``), so a street without
one is drawn exactly as it would be without trams in the generator.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import name2label

from segkit.errors import UserError
from segkit.fileio import write_png

CITIES = {"train": ("synthberg", "synthdorf", "synthhafen"), "val": ("synthmund", "synthtal")}
SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}
FRAME = 19  # Cityscapes annotates the 20th frame of each sequence
CAMERA_HEIGHT = 1.2  # metres
FOCAL = 1.1  # x image width, in pixels


def _id(name: str) -> int:
    return name2label[name].id


ROAD, SIDEWALK, BUILDING = (_id(n) for n in ("road", "sidewalk", "building"))
WALL, FENCE, POLE = (_id(n) for n in ("wall", "fence", "pole"))
LIGHT, SIGN = (_id(n) for n in ("traffic light", "traffic sign"))
VEGETATION, TERRAIN, SKY = (_id(n) for n in ("vegetation", "terrain", "sky"))
PERSON, RIDER, CAR, TRUCK, BUS = (_id(n) for n in ("person", "rider", "car", "truck", "bus"))
MOTORCYCLE, BICYCLE = _id("motorcycle"), _id("bicycle")
EGO, OUT_OF_ROI = _id("ego vehicle"), _id("out of roi")
STATIC, PARKING, GROUND = (_id(n) for n in ("static", "parking", "ground"))
TRAIN, RAIL = _id("train"), _id("rail track")
TRAM_LINE = 0.35  # share of streets with a tram line
GAUGE = 1.435  # metres between the rails (standard gauge)


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
        cv2.fillPoly(self.image, pts, _rgb(colour))
        cv2.fillPoly(self.label, pts, int(label_id))

    def fill3d(self, points3d, colour, label_id: int) -> None:
        self.fill(self.project(points3d), colour, label_id)

    def box(self, x0, y0, x1, y1, colour, label_id: int) -> None:
        """Axis-aligned pixel rectangle."""
        self.fill([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], colour, label_id)

    def ellipse(self, centre, axes, colour, label_id: int, thickness: int = -1) -> None:
        centre = tuple(int(round(v)) for v in centre)
        axes = tuple(max(1, int(round(v))) for v in axes)
        cv2.ellipse(self.image, centre, axes, 0, 0, 360, _rgb(colour), thickness)
        cv2.ellipse(self.label, centre, axes, 0, 0, 360, int(label_id), thickness)

    def line(self, p0, p1, colour, label_id: int, thickness: float) -> None:
        p0 = tuple(int(round(v)) for v in p0)
        p1 = tuple(int(round(v)) for v in p1)
        t = max(1, int(round(thickness)))
        cv2.line(self.image, p0, p1, _rgb(colour), t)
        cv2.line(self.label, p0, p1, int(label_id), t)


def _rgb(colour) -> tuple[int, int, int]:
    return tuple(int(np.clip(c, 0, 255)) for c in colour)


def _vary(rng, colour, amount: float = 12.0):
    return np.clip(np.asarray(colour, dtype=np.float64) + rng.normal(0, amount, 3), 0, 255)


def _pick(rng, colours, amount: float = 12.0):
    return _vary(rng, colours[rng.integers(len(colours))], amount)


# ---- the scene ------------------------------------------------------------------------------------------------

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


def draw_ground(c: Canvas, layout: dict) -> None:
    rng = c.rng
    near, far = 0.5, 400.0
    # Everything below the horizon starts as terrain (fields), the far end as "ground".
    c.box(0, int(c.horizon), c.w, c.h, _pick(rng, [(140, 160, 90), (120, 150, 70), (150, 140, 95)], 10), TERRAIN)

    def strip(x0, x1, colour, label_id, z0=near, z1=far):
        c.fill3d([(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)], colour, label_id)

    r = layout["road_half"]
    road_colour = _pick(rng, [(85, 85, 90), (105, 100, 100), (70, 72, 78), (120, 115, 110)], 8)
    strip(-r, r, road_colour, ROAD)
    for side in (-1, 1):
        edge = side * r
        s = layout["sidewalk"][side]
        if layout["grass"][side] > 0:
            g = layout["grass"][side]
            strip(edge, edge + side * g, _pick(rng, [(120, 170, 80), (150, 175, 95), (135, 150, 70)], 10), TERRAIN)
            edge += side * g
        if layout["parking"][side] and rng.random() < 0.5:
            z0 = rng.uniform(8, 20)
            strip(side * (r - 2.2), side * r, _vary(rng, road_colour + 15, 5), PARKING, z0, z0 + rng.uniform(10, 30))
        walk = _pick(rng, [(175, 160, 160), (160, 155, 150), (190, 170, 150), (150, 140, 150)], 10)
        strip(edge, edge + side * s, walk, SIDEWALK)
        # paving tiles: joints across the walk, every ~1 m
        dark = walk * 0.8
        for z in np.arange(2.0, 60.0, rng.uniform(0.8, 1.5)):
            p = c.project([(edge, 0, z), (edge + side * s, 0, z)])
            c.line(p[0], p[1], dark, SIDEWALK, max(1, c.px(0.03, z)))
        curb = c.project([(edge, 0, near * 4), (edge, 0, far)])
        c.line(curb[0], curb[1], walk * 1.15, SIDEWALK, c.px(0.12, 3))
        layout["frontage"][side] = abs(edge) + s
    # lane markings (road): dashed lines between lanes, solid edge lines
    paint = (235, 235, 225) if rng.random() < 0.85 else (230, 200, 60)
    lanes = max(1, int(round(2 * r / 3.3)))
    dash, gap = rng.uniform(2, 4), rng.uniform(4, 8)
    for k in range(1, lanes):
        x = -r + k * 2 * r / lanes
        z = rng.uniform(1.5, 3)
        while z < 120:
            strip(x - 0.07, x + 0.07, _vary(rng, paint, 6), ROAD, z, z + dash)
            z += dash + gap
    for side in (-1, 1):
        strip(side * (r - 0.35), side * (r - 0.22), _vary(rng, paint, 6), ROAD, 2.0, 200)
    if rng.random() < 0.5:  # crosswalk
        z0 = rng.uniform(9, 25)
        for x in np.arange(-r + 0.5, r - 0.5, 1.0):
            strip(x, x + 0.5, _vary(rng, paint, 6), ROAD, z0, z0 + 3)


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
                     _pick(rng, [(150, 145, 140), (120, 110, 105), (170, 160, 150), (100, 105, 115)], 15), BUILDING)
        else:
            h = rng.uniform(6, 15)
            top = c.project([(x + width / 2, h, z)])[0]
            base = c.project([(x, 0, z), (x + width, 0, z)])
            c.ellipse(((base[0][0] + base[1][0]) / 2, top[1] + c.px(h / 2, z) * 0.5),
                      (c.px(width / 2, z), c.px(h / 2, z)), _pick(rng, [(60, 90, 40), (80, 110, 50)], 10), VEGETATION)
            c.box(base[0][0], top[1] + c.px(h / 2, z), base[1][0], base[0][1], (70, 100, 45), VEGETATION)
        x += width


def draw_facades(c: Canvas, layout: dict) -> None:
    rng = c.rng
    for side in (-1, 1):
        x = side * (layout["frontage"][side] + rng.uniform(0, 1.5))
        if not layout["buildings"][side]:
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
    wall = _pick(rng, [(180, 160, 130), (150, 90, 70), (200, 195, 185), (120, 120, 125), (210, 180, 140),
                       (140, 150, 160), (170, 120, 100)], 18)
    c.fill3d([(x, 0, z0), (x, height, z0), (x, height, z1), (x, 0, z1)], wall, BUILDING)
    cornice = max(0.3, height - rng.uniform(0.4, 1.0))
    c.fill3d([(x, cornice, z0), (x, height, z0), (x, height, z1), (x, cornice, z1)], wall * 0.75, BUILDING)
    glass = _pick(rng, [(40, 50, 60), (70, 80, 95), (30, 35, 40), (100, 120, 140)], 10)
    frame = wall * rng.uniform(0.6, 1.3)
    floor_h, col_w = rng.uniform(2.8, 3.6), rng.uniform(2.0, 3.5)
    win_w, win_h = col_w * rng.uniform(0.4, 0.7), floor_h * rng.uniform(0.4, 0.6)
    ground_floor = rng.uniform(0.0, 1.0)
    for zc in np.arange(z0 + col_w / 2, z1 - win_w / 2, col_w):
        if c.px(win_w, zc) < 2:
            break  # too far to draw
        for y in np.arange(floor_h * (1 + ground_floor * 0.3), cornice - win_h, floor_h):
            corners = [(x, y, zc - win_w / 2), (x, y + win_h, zc - win_w / 2), (x, y + win_h, zc + win_w / 2),
                       (x, y, zc + win_w / 2)]
            if c.px(0.15, zc) >= 2:
                frame_pts = [(px, py - 0.1 if py == y else py + 0.1, pz) for px, py, pz in corners]
                c.fill3d(frame_pts, frame, BUILDING)
            c.fill3d(corners, _vary(rng, glass, 8), BUILDING)
    if rng.random() < 0.5:  # shop front / doors on the ground floor
        for zc in np.arange(z0 + 2, z1 - 2, rng.uniform(4, 8)):
            c.fill3d([(x, 0, zc), (x, 2.3, zc), (x, 2.3, zc + 1.2), (x, 0, zc + 1.2)], _vary(rng, glass, 15), BUILDING)


def add_frontage_objects(c: Canvas, layout: dict, objects: list) -> None:
    """Walls, fences and park vegetation along the back of the sidewalks."""
    rng = c.rng
    for side in (-1, 1):
        x = side * (layout["frontage"][side] - 0.1)
        z = rng.uniform(2, 10)
        while z < 70:
            length = rng.uniform(5, 25)
            kind = rng.choice(["wall", "fence", "hedge", "none"], p=[0.3, 0.3, 0.2, 0.2] if layout["buildings"][side]
                              else [0.25, 0.35, 0.35, 0.05])
            if kind != "none":
                objects.append((z + length, _frontage_piece, (x, z, z + length, str(kind))))
            z += length + rng.uniform(0, 10)
        if not layout["buildings"][side]:  # park: trees behind the frontage
            for zt in rng.uniform(5, 90, size=rng.integers(4, 10)):
                objects.append((zt + 40, _tree, (x + side * rng.uniform(2, 15), zt)))


def _frontage_piece(c: Canvas, x: float, z0: float, z1: float, kind: str) -> None:
    rng = c.rng
    if kind == "wall":
        h = rng.uniform(0.8, 2.2)
        colour = _pick(rng, [(165, 160, 150), (140, 130, 120), (190, 185, 170), (120, 115, 100)], 10)
        c.fill3d([(x, 0, z0), (x, h, z0), (x, h, z1), (x, 0, z1)], colour, WALL)
        c.fill3d([(x, h - 0.15, z0), (x, h, z0), (x, h, z1), (x, h - 0.15, z1)], colour * 1.15, WALL)
        for y in np.arange(0.3, h - 0.15, 0.3):  # block courses
            p = c.project([(x, y, z0), (x, y, z1)])
            c.line(p[0], p[1], colour * 0.8, WALL, max(1, c.px(0.02, (z0 + z1) / 2)))
    elif kind == "fence":
        h = rng.uniform(1.0, 2.0)
        colour = _pick(rng, [(150, 120, 90), (110, 115, 110), (60, 90, 60), (170, 170, 165)], 10)
        c.fill3d([(x, 0.05, z0), (x, h, z0), (x, h, z1), (x, 0.05, z1)], colour * 0.55, FENCE)
        step = rng.uniform(0.1, 0.25)
        for z in np.arange(z0, z1, step):  # slats
            if c.px(step, z) < 3:
                break
            p = c.project([(x, 0.05, z), (x, h, z)])
            c.line(p[0], p[1], colour, FENCE, max(1, c.px(step * 0.45, z)))
        for y in (0.25, h - 0.2):  # rails
            p = c.project([(x, y, z0), (x, y, z1)])
            c.line(p[0], p[1], colour * 1.1, FENCE, max(1, c.px(0.06, (z0 + z1) / 2)))
    else:  # hedge
        h = rng.uniform(0.8, 1.8)
        c.fill3d([(x, 0, z0), (x, h, z0), (x, h, z1), (x, 0, z1)], _pick(rng, [(50, 90, 35), (70, 110, 45)], 10),
                 VEGETATION)


def _tree(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    trunk_h, radius = rng.uniform(2.0, 4.0), rng.uniform(1.5, 3.5)
    bottom, top = c.project([(x, 0, z), (x, trunk_h + radius * 0.5, z)])
    c.line(bottom, top, _pick(rng, [(90, 70, 50), (70, 60, 50)], 8), VEGETATION, c.px(0.25, z))
    leaf = _pick(rng, [(60, 100, 40), (80, 120, 45), (45, 80, 35), (100, 130, 60)], 12)
    centre = c.project([(x, trunk_h + radius, z)])[0]
    r = c.px(radius, z)
    for _ in range(rng.integers(3, 7)):
        c.ellipse(centre + rng.normal(0, r * 0.35, 2), (r * rng.uniform(0.5, 0.8), r * rng.uniform(0.4, 0.7)),
                  _vary(rng, leaf, 10), VEGETATION)


def _pole(c: Canvas, x: float, z: float, height: float, colour, width: float = 0.18) -> np.ndarray:
    bottom, top = c.project([(x, 0, z), (x, height, z)])
    c.line(bottom, top, colour, POLE, max(2, c.px(width, z)))
    return top


def _street_lamp(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    colour = _pick(rng, [(120, 120, 120), (70, 75, 70), (40, 60, 50), (150, 150, 145)], 8)
    height = rng.uniform(6, 9)
    top = _pole(c, x, z, height, colour)
    arm = c.project([(x - np.sign(x) * rng.uniform(1, 2.5), height, z)])[0]
    c.line(top, arm, colour, POLE, max(2, c.px(0.12, z)))
    c.ellipse(arm + (0, c.px(0.1, z)), (c.px(0.35, z), c.px(0.12, z)), (230, 230, 210), POLE)


def _traffic_light(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    pole_colour = _pick(rng, [(90, 90, 90), (60, 60, 60), (140, 140, 140)], 8)
    height = rng.uniform(3.0, 4.5)
    top = _pole(c, x, z, height, pole_colour, 0.15)
    housing = _pick(rng, [(30, 30, 30), (45, 45, 40), (200, 170, 40)], 8)
    w, h = c.px(0.35, z), c.px(1.0, z)
    x0, y0 = top[0] - w / 2, top[1] - h * 0.4
    c.box(x0, y0, x0 + w, y0 + h, housing, LIGHT)
    lit = rng.integers(3)
    for k, colour in enumerate([(255, 40, 30), (255, 190, 30), (40, 255, 120)]):
        on = k == lit
        c.ellipse((x0 + w / 2, y0 + h * (0.18 + 0.32 * k)), (w * 0.32, w * 0.32),
                  colour if on else np.array(colour) * 0.25 + 20, LIGHT)


def _sign(c: Canvas, x: float, z: float) -> None:
    rng = c.rng
    height = rng.uniform(2.2, 3.2)
    top = _pole(c, x, z, height, _pick(rng, [(130, 130, 130), (100, 100, 105)], 8), 0.08)
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
        colour = _pick(rng, [(30, 90, 190), (240, 200, 30)], 8)
        c.box(cx - s * 0.6, cy - s * 0.4, cx + s * 0.6, cy + s * 0.4, colour, SIGN)
        c.box(cx - s * 0.45, cy - s * 0.1, cx + s * 0.45, cy + s * 0.05, (245, 245, 240), SIGN)


def _vehicle(c: Canvas, x: float, z: float, kind: str) -> None:
    """A car, truck or bus seen from behind (or the front), with its side visible when off-centre."""
    rng = c.rng
    if kind == "car":
        w, h, length, label = rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.6), rng.uniform(4, 4.8), CAR
        body = _pick(rng, [(200, 200, 205), (30, 30, 35), (150, 20, 25), (20, 50, 130), (130, 130, 135),
                           (230, 230, 225), (60, 90, 60), (180, 150, 60)], 15)
    elif kind == "truck":
        w, h, length, label = 2.5, rng.uniform(3.0, 3.8), rng.uniform(7, 10), TRUCK
        body = _pick(rng, [(220, 220, 215), (200, 60, 40), (60, 90, 150), (180, 180, 170), (230, 200, 60)], 12)
    else:
        w, h, length, label = 2.55, rng.uniform(3.0, 3.3), rng.uniform(11, 13), BUS
        body = _pick(rng, [(235, 200, 40), (200, 40, 40), (230, 230, 230), (40, 120, 70), (40, 80, 170)], 12)
    glass = _pick(rng, [(40, 45, 55), (70, 80, 90)], 8)
    wheel = (25, 25, 25)
    xs = x - w / 2, x + w / 2
    # side face (the one facing the camera axis), drawn first: the rear face is nearer
    side_x = xs[0] if x > 0 else xs[1]
    if abs(x) > w / 2:
        c.fill3d([(side_x, 0.3, z), (side_x, h, z), (side_x, h, z + length), (side_x, 0.3, z + length)],
                 body * 0.85, label)
        if kind == "bus":
            c.fill3d([(side_x, 1.3, z + 0.5), (side_x, h - 0.3, z + 0.5), (side_x, h - 0.3, z + length - 0.5),
                      (side_x, 1.3, z + length - 0.5)], glass, label)
        elif kind == "car":
            c.fill3d([(side_x, 0.95, z + 0.8), (side_x, h - 0.1, z + 1.2), (side_x, h - 0.1, z + length - 1.5),
                      (side_x, 0.95, z + length - 1.0)], glass, label)
        else:
            c.fill3d([(side_x, 1.0, z + length - 2.0), (side_x, h - 0.6, z + length - 2.0),
                      (side_x, h - 0.6, z + length - 0.3), (side_x, 1.0, z + length - 0.3)], glass, label)
        for wz in (z + 0.9, z + length - 0.9):
            centre = c.project([(side_x, 0.35, wz)])[0]
            c.ellipse(centre, (c.px(0.35, wz) * abs(side_x) / wz + 1, c.px(0.35, wz)), wheel, label)
    # rear/front face
    face_top = h if kind != "car" else h * 0.6
    c.fill3d([(xs[0], 0.25, z), (xs[1], 0.25, z), (xs[1], face_top, z), (xs[0], face_top, z)], body, label)
    for wx in (xs[0] + 0.15, xs[1] - 0.45):  # wheels under the face
        c.fill3d([(wx, 0, z + 0.3), (wx + 0.3, 0, z + 0.3), (wx + 0.3, 0.4, z + 0.3), (wx, 0.4, z + 0.3)], wheel, label)
    if kind == "car":
        c.fill3d([(xs[0] + 0.15, face_top, z + 0.4), (xs[1] - 0.15, face_top, z + 0.4), (xs[1] - 0.3, h, z + 0.9),
                  (xs[0] + 0.3, h, z + 0.9)], body * 0.95, label)
        c.fill3d([(xs[0] + 0.25, face_top + 0.05, z + 0.45), (xs[1] - 0.25, face_top + 0.05, z + 0.45),
                  (xs[1] - 0.35, h - 0.08, z + 0.85), (xs[0] + 0.35, h - 0.08, z + 0.85)], glass, label)
    elif kind == "bus":
        c.fill3d([(xs[0] + 0.2, 1.4, z), (xs[1] - 0.2, 1.4, z), (xs[1] - 0.2, h - 0.3, z), (xs[0] + 0.2, h - 0.3, z)],
                 glass, label)
    else:  # truck: cargo doors
        mid = c.project([(x, 0.3, z), (x, h - 0.1, z)])
        c.line(mid[0], mid[1], body * 0.6, label, c.px(0.04, z))
    lights = (230, 30, 30) if rng.random() < 0.7 else (250, 250, 220)
    for lx in (xs[0] + 0.05, xs[1] - 0.3):
        c.fill3d([(lx, 0.8, z), (lx + 0.25, 0.8, z), (lx + 0.25, 1.0, z), (lx, 1.0, z)], lights, label)
    plate = [(x - 0.26, 0.45, z), (x + 0.26, 0.45, z), (x + 0.26, 0.57, z), (x - 0.26, 0.57, z)]
    c.fill3d(plate, (235, 235, 230), label)


def _person(c: Canvas, x: float, z: float, label: int = PERSON, seated: float = 0.0) -> None:
    """Head, torso, arms and legs; ``seated`` raises the person onto a bike (a rider's legs are shorter)."""
    rng = c.rng
    height = rng.uniform(1.55, 1.9)
    skin = _pick(rng, [(230, 190, 160), (190, 140, 100), (120, 80, 60)], 10)
    shirt = _pick(rng, [(200, 40, 40), (40, 60, 150), (230, 230, 220), (40, 40, 45), (60, 130, 70), (230, 180, 50),
                        (120, 80, 140)], 20)
    trousers = _pick(rng, [(40, 50, 80), (30, 30, 35), (110, 100, 90), (70, 70, 75)], 12)
    base = seated
    legs_top = base + height * 0.47 * (0.6 if seated else 1.0)
    shoulders = legs_top + height * 0.33
    half = 0.22
    step = rng.uniform(-0.12, 0.12)
    for dx in (-0.1, 0.1):
        p = c.project([(x + dx, legs_top, z), (x + dx + step * np.sign(dx), base, z)])
        c.line(p[0], p[1], trousers, label, c.px(0.14, z))
    c.fill3d([(x - half, legs_top, z), (x + half, legs_top, z), (x + half * 1.05, shoulders, z),
              (x - half * 1.05, shoulders, z)], shirt, label)
    for dx in (-half - 0.05, half + 0.05):
        p = c.project([(x + dx, shoulders - 0.05, z), (x + dx * 1.2, legs_top + 0.05, z)])
        c.line(p[0], p[1], shirt * 0.9, label, c.px(0.09, z))
    head = c.project([(x, shoulders + 0.14, z)])[0]
    c.ellipse(head, (c.px(0.1, z), c.px(0.13, z)), skin, label)
    if rng.random() < 0.5:  # hair or hat
        c.ellipse(head - (0, c.px(0.06, z)), (c.px(0.1, z), c.px(0.06, z)),
                  _pick(rng, [(30, 25, 20), (90, 60, 30), (200, 180, 120)], 10), label)


def _bike(c: Canvas, x: float, z: float, motor: bool, with_rider: bool) -> None:
    """A two-wheeler in side view; a rider (label rider) sits on it."""
    rng = c.rng
    label = MOTORCYCLE if motor else BICYCLE
    r = 0.33 if motor else 0.35
    base = 0.6 if motor else 0.55  # half wheelbase
    direction = 1 if rng.random() < 0.5 else -1
    frame = _pick(rng, [(200, 30, 30), (30, 30, 30), (30, 80, 170), (200, 200, 200), (40, 130, 60)], 12)
    back, front = c.project([(x - base * direction, r, z), (x + base * direction, r, z)])
    rp = c.px(r, z)
    for centre in (back, front):
        if motor:
            c.ellipse(centre, (rp, rp), (20, 20, 20), label)
            c.ellipse(centre, (rp * 0.45, rp * 0.45), (120, 120, 125), label)
        else:
            c.ellipse(centre, (rp, rp), (25, 25, 25), label, thickness=max(1, int(rp * 0.18)))
    seat = c.project([(x - 0.15 * direction, r + 0.55, z)])[0]
    bar = c.project([(x + (base - 0.1) * direction, r + 0.65, z)])[0]
    thick = max(1, c.px(0.05, z))
    if motor:
        c.fill([back, seat, bar, front], frame, label)
        c.ellipse((seat + bar) / 2, (c.px(0.35, z), c.px(0.15, z)), frame * 0.8, label)
    else:
        crank = c.project([(x, r, z)])[0]
        for a, b in ((back, seat), (seat, crank), (crank, back), (crank, bar), (seat, bar), (bar, front)):
            c.line(a, b, frame, label, thick)
    if with_rider:
        _person(c, x - 0.1 * direction, z + 0.05, RIDER, seated=r + 0.3)


def _static_object(c: Canvas, x: float, z: float) -> None:
    """Bins, boxes, bollards: Cityscapes "static" (void)."""
    rng = c.rng
    w, h = rng.uniform(0.3, 1.2), rng.uniform(0.4, 1.2)
    c.fill3d([(x - w / 2, 0, z), (x + w / 2, 0, z), (x + w / 2, h, z), (x - w / 2, h, z)],
             _pick(rng, [(60, 90, 60), (90, 90, 95), (160, 120, 40), (50, 50, 60)], 10), STATIC)


# Track beds (RGB) and tram liveries (body, band).
BEDS = {
    "asphalt": [(95, 95, 98), (80, 80, 86), (112, 108, 106)],
    "setts": [(120, 112, 102), (104, 100, 96), (136, 126, 114)],
    "ballast": [(125, 116, 102), (110, 106, 98), (138, 128, 112)],
    "grass": [(100, 145, 65), (120, 160, 80), (88, 128, 58)],
}
LIVERIES = [((232, 205, 60), (70, 70, 72)), ((240, 240, 235), (200, 30, 35)), ((240, 240, 235), (40, 110, 60)),
            ((238, 238, 232), (40, 80, 170)), ((200, 35, 40), (235, 235, 230)), ((212, 218, 222), (230, 120, 30)),
            ((245, 230, 200), (120, 30, 40)), ((40, 95, 60), (225, 225, 215))]


def plan_tram_line(layout: dict, rng: np.random.Generator) -> list[dict]:
    """The street's tram tracks (none on most streets), each with its tram or none; draws only from ``rng``.

    A track shared with the traffic (asphalt or setts) lies in an inner lane where the road has some; a reserved
    bed (ballast or grass, with a kerb) takes a curb lane, so that the camera's car never drives on it."""
    if rng.random() >= TRAM_LINE:
        return []
    r = layout["road_half"]
    lanes = max(1, int(round(2 * r / 3.3)))
    lane_w = 2 * r / lanes
    bed = str(rng.choice(list(BEDS), p=[0.4, 0.25, 0.15, 0.2]))
    if bed in ("ballast", "grass") and lanes >= 3:
        side = 1 if rng.random() < 0.5 else -1
        beds = [(side * (r - lane_w / 2 + 0.04), lane_w / 2 - 0.04)]  # curb to the dashed line, edge line covered
    else:
        bed = {"ballast": "setts", "grass": "asphalt"}.get(bed, bed)
        inner = list(range(1, lanes - 1)) or list(range(lanes))
        count = min(len(inner), 1 + int(rng.random() < 0.5))
        first = int(rng.integers(len(inner) - count + 1))
        # each bed stays clear of the dashed lane lines, and of the edge line in a curb lane
        beds = [(-r + lane_w * (lane + 0.5), min(rng.uniform(1.3, 1.55), lane_w / 2 - (0.4 if lane in (0, lanes - 1)
                                                                                        else 0.08)))
                for lane in inner[first:first + count]]  # as wide as a tram and a bit, if the lane allows
    bed_colour, steel = _pick(rng, BEDS[bed], 8), _vary(rng, (170, 166, 164), 10)
    return [{"x": x, "half": half, "bed": bed, "bed_colour": bed_colour, "steel": steel,
             "tram": _plan_tram(rng, x, 2 * half - 0.1) if rng.random() < 0.8 else None} for x, half in beds]


def _plan_tram(rng: np.random.Generator, x: float, max_width: float) -> dict:
    """Size, position and look of one articulated tram; its face is at depth ``z``, its sections run away."""
    w = min(rng.uniform(2.3, 2.65), max_width)
    sections, section, joint = int(rng.integers(3, 6)), rng.uniform(5.5, 8.0), 0.5
    body, band = (np.asarray(v, dtype=np.float64) for v in LIVERIES[rng.integers(len(LIVERIES))])
    bays = max(2, int(round(section / rng.uniform(1.6, 2.1))))
    return {
        "x": x, "w": w, "h": rng.uniform(3.3, 3.6), "z": rng.uniform(8, 60), "sections": sections,
        "section": section, "joint": joint, "length": sections * section + (sections - 1) * joint, "bays": bays,
        "doors": {int(rng.integers(bays)), int(rng.integers(bays))}, "body": _vary(rng, body, 10),
        "band": _vary(rng, band, 10), "band_y": (0.45, 0.8) if rng.random() < 0.5 else (0.85, 1.05),
        "skirt": _pick(rng, [(50, 50, 55), (90, 90, 95)], 6),
        "glass": _pick(rng, [(40, 45, 55), (60, 70, 80), (30, 35, 42)], 8),
        "side_x": x - w / 2 if x > 0 else x + w / 2,  # the side facing the camera axis
        "front": x < -0.5,  # oncoming trams (left of the camera) show their front and headlights
        "text": rng.uniform(0.5, 1.3), "pantograph": bool(rng.random() < 0.8),
    }


def draw_tracks(c: Canvas, tracks: list[dict]) -> None:
    """Track beds and rails over the road, after its markings: a bed keeps clear of the lane lines, crosswalk
    stripes stop at it."""
    for t in tracks:
        x, half, near, far = t["x"], t["half"], 0.5, 400.0

        def strip(x0, x1, colour, z0=near, z1=far):
            c.fill3d([(x0, 0, z0), (x1, 0, z0), (x1, 0, z1), (x0, 0, z1)], colour, RAIL)

        strip(x - half, x + half, t["bed_colour"])
        if t["bed"] in ("ballast", "grass"):  # the kerb on the road side
            inner = x - np.sign(x) * half
            strip(inner, inner + np.sign(x) * 0.15, (175, 172, 165))
        if t["bed"] == "ballast":  # concrete sleepers, as far as they stay 3 px apart
            reach = min(half - 0.05, 1.3)
            for z in np.arange(1.0, np.sqrt(c.f * CAMERA_HEIGHT * 0.6 / 3), 0.6):
                strip(x - reach, x + reach, t["bed_colour"] * 1.2 + 10, z, z + 0.22)
        for rail in (x - GAUGE / 2, x + GAUGE / 2):
            inside = 1 if rail < x else -1
            if t["bed"] in ("asphalt", "setts"):  # grooved rail: a dark groove on the inner side of the head
                strip(rail + inside * 0.03, rail + inside * 0.07, (35, 35, 38), 1.0)
            else:  # rail web shadow on the bed
                strip(rail - inside * 0.03, rail - inside * 0.07, t["bed_colour"] * 0.6, 1.0)
            strip(rail - 0.03, rail + 0.03, t["steel"], 1.0)


def add_trams(tracks: list[dict], objects: list) -> None:
    """Leave out traffic that would collide with a tram or stand on a reserved bed; add the trams, in slices."""
    sizes = {"car": (1.0, 4.8), "truck": (1.3, 10.0), "bus": (1.3, 13.0)}  # half width, length

    def collides(item) -> bool:
        _, draw, args = item
        if draw is _vehicle:
            (half, length), x, z = sizes[args[2]], args[0], args[1]
        elif draw is _bike:
            (half, length), x, z = (0.4, 1.3), args[0], args[1]
        else:
            return False
        for t in tracks:
            if t["bed"] in ("ballast", "grass") and abs(x - t["x"]) < t["half"] + half:
                return True
            tram = t["tram"]
            if tram and abs(x - tram["x"]) < tram["w"] / 2 + half + 0.1 and z < tram["z"] + tram["length"] + 1 \
                    and z + length > tram["z"] - 1:
                return True
        return False

    objects[:] = [item for item in objects if not collides(item)]
    for t in tracks:
        tram = t["tram"]
        if tram is None:
            continue
        if abs(tram["x"]) > tram["w"] / 2:  # its side shows: one window bay at a time, each at its own depth
            bay = tram["section"] / tram["bays"]
            for s in range(tram["sections"]):
                z0 = tram["z"] + s * (tram["section"] + tram["joint"])
                for k in range(tram["bays"]):
                    objects.append((z0 + k * bay, _tram_bay, (tram, z0 + k * bay, z0 + (k + 1) * bay,
                                                              k in tram["doors"])))
                if s < tram["sections"] - 1:
                    objects.append((z0 + tram["section"], _tram_joint, (tram, z0 + tram["section"])))
        objects.append((tram["z"] - 1e-3, _tram_face, (tram,)))  # in front of its own side


def _tram_bay(c: Canvas, tram: dict, z0: float, z1: float, door: bool) -> None:
    sx, h = tram["side_x"], tram["h"]

    def panel(y0, y1, colour, a=z0, b=z1):
        c.fill3d([(sx, y0, a), (sx, y1, a), (sx, y1, b), (sx, y0, b)], colour, TRAIN)

    side = tram["body"] * 0.85
    panel(0.08, h, side)
    panel(0.08, 0.4, tram["skirt"] * 0.85)
    panel(*tram["band_y"], tram["band"] * 0.85)
    panel(h - 0.18, h, side * 0.8)
    if door:
        panel(0.35, 2.3, tram["skirt"] * 0.7, z0 + 0.12, z1 - 0.12)
        panel(0.5, 2.2, tram["glass"], z0 + 0.2, z1 - 0.2)
        p = c.project([(sx, 0.4, (z0 + z1) / 2), (sx, 2.25, (z0 + z1) / 2)])
        c.line(p[0], p[1], tram["skirt"] * 0.7, TRAIN, max(1, c.px(0.05, z0)))
    else:
        panel(1.05, 2.6, tram["glass"], z0 + 0.1, z1 - 0.1)


def _tram_joint(c: Canvas, tram: dict, z: float) -> None:
    """The articulation bellows between two sections."""
    sx = tram["side_x"]
    c.fill3d([(sx, 0.3, z), (sx, tram["h"] - 0.1, z), (sx, tram["h"] - 0.1, z + tram["joint"]),
              (sx, 0.3, z + tram["joint"])], (38, 38, 40), TRAIN)


def _tram_face(c: Canvas, tram: dict) -> None:
    """Roof equipment and pantograph (set back, drawn first), then the cab face with windscreen and lights."""
    x, z, w, h = tram["x"], tram["z"], tram["w"], tram["h"]
    x0, x1 = x - w / 2, x + w / 2
    grey = (120, 122, 126)
    c.fill3d([(x - 0.7, h - 0.1, z + 1.0), (x + 0.7, h - 0.1, z + 1.0), (x + 0.6, h + 0.3, z + 1.0),
              (x - 0.6, h + 0.3, z + 1.0)], grey, TRAIN)
    if tram["pantograph"]:
        zp = z + tram["section"] / 2
        arm = c.project([(x - 0.5, h + 0.3, zp), (x + 0.15, h + 0.9, zp), (x - 0.3, h + 1.5, zp)])
        thick = max(1, c.px(0.05, zp))
        c.line(arm[0], arm[1], (60, 60, 62), TRAIN, thick)
        c.line(arm[1], arm[2], (60, 60, 62), TRAIN, thick)
        bar = c.project([(x - 0.8, h + 1.5, zp), (x + 0.8, h + 1.5, zp)])
        c.line(bar[0], bar[1], (60, 60, 62), TRAIN, thick)

    def rect(a, b, y0, y1, colour):
        c.fill3d([(a, y0, z), (b, y0, z), (b, y1, z), (a, y1, z)], colour, TRAIN)

    c.fill3d([(x0, 0.08, z), (x1, 0.08, z), (x1, h - 0.35, z), (x1 - 0.3, h, z), (x0 + 0.3, h, z),
              (x0, h - 0.35, z)], tram["body"], TRAIN)
    rect(x0, x1, 0.08, 0.45, tram["skirt"])
    rect(x0, x1, *tram["band_y"], tram["band"])
    c.fill3d([(x0 + 0.12, 1.1, z), (x1 - 0.12, 1.1, z), (x1 - 0.22, h - 0.6, z), (x0 + 0.22, h - 0.6, z)],
             tram["glass"], TRAIN)
    rect(x0 + 0.35, x1 - 0.35, h - 0.5, h - 0.18, (22, 22, 24))  # destination display
    rect(x0 + 0.5, min(x1 - 0.5, x0 + 0.5 + tram["text"]), h - 0.4, h - 0.28, (255, 165, 40))
    lights = (250, 248, 225) if tram["front"] else (225, 35, 30)
    for lx in (x0 + 0.12, x1 - 0.42):
        rect(lx, lx + 0.3, 0.6, 0.78, lights)


def add_street_objects(c: Canvas, layout: dict, objects: list) -> None:
    rng = c.rng
    r = layout["road_half"]
    lanes = max(1, int(round(2 * r / 3.3)))
    lane_w = 2 * r / lanes
    for lane in range(lanes):  # moving traffic
        if rng.random() < 0.3:
            continue  # an empty lane
        x = -r + lane_w * (lane + 0.5)
        z = rng.uniform(8, 30)
        while z < 90:
            kind = rng.choice(["car", "truck", "bus"], p=[0.7, 0.15, 0.15])
            objects.append((z, _vehicle, (x + rng.normal(0, 0.2), z, str(kind))))
            z += rng.uniform(15, 45)
    for side in (-1, 1):
        walk0 = layout["frontage"][side] - layout["sidewalk"][side]
        walk1 = layout["frontage"][side]
        if rng.random() < 0.4:  # parked cars along the curb
            z = rng.uniform(5, 20)
            while z < 60:
                objects.append((z, _vehicle, (side * (r - 1.1), z, "car" if rng.random() < 0.85 else "truck")))
                z += rng.uniform(6, 25)
        for z in rng.uniform(5, 50, size=rng.integers(1, 7)):  # pedestrians
            objects.append((z, _person, (side * rng.uniform(walk0 + 0.3, walk1 - 0.3), z)))
        for z in rng.uniform(6, 40, size=rng.integers(0, 3)):  # riders at the road edge
            objects.append((z, _bike, (side * (r - 0.8), z, bool(rng.random() < 0.4), True)))
        for z in rng.uniform(5, 30, size=rng.integers(0, 3)):  # parked bicycles / motorcycles
            objects.append((z, _bike, (side * rng.uniform(walk0 + 0.5, walk1 - 0.2), z, bool(rng.random() < 0.3),
                                       False)))
        for z in rng.uniform(5, 40, size=rng.integers(0, 3)):
            objects.append((z, _static_object, (side * rng.uniform(walk0 + 0.3, walk1 - 0.2), z)))
        lamp_x = side * (walk0 + 0.4)
        for z in np.arange(rng.uniform(4, 20), 120, rng.uniform(18, 30)):
            objects.append((z, _street_lamp, (lamp_x, z)))
        for z in rng.uniform(6, 60, size=rng.integers(1, 4)):
            objects.append((z, _sign, (lamp_x + side * 0.2, z)))
        for z in rng.uniform(8, 50, size=rng.integers(0, 3)):
            objects.append((z, _traffic_light, (lamp_x, z)))
        if layout["trees"][side]:
            for z in np.arange(rng.uniform(3, 12), 100, rng.uniform(8, 15)):
                objects.append((z, _tree, (side * (walk0 + rng.uniform(0.8, 1.5)), z)))


def draw_void(c: Canvas) -> None:
    """Ego-vehicle bonnet at the bottom, out-of-roi border, sometimes black rectification corners."""
    rng = c.rng
    h, w = c.h, c.w
    top = h * rng.uniform(0.86, 0.93)
    xs = np.linspace(0, w, 24)
    ys = top + (h - top) * 0.6 * ((xs - w / 2) / (w / 2)) ** 2
    bonnet = np.concatenate([np.stack([xs, ys], 1), [(w, h), (0, h)]])
    c.fill(bonnet, _pick(rng, [(30, 30, 35), (200, 200, 205), (60, 70, 90)], 8), EGO)
    if rng.random() < 0.3:
        s = w * rng.uniform(0.02, 0.06)
        c.fill([(0, 0), (s, 0), (0, s)], (0, 0, 0), _id("rectification border"))
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
        shadow = np.ones((h, w), dtype=np.float32)
        x0, x1 = rng.uniform(0, w), rng.uniform(0, w)
        pts = np.array([(x0, c.horizon), (x1, h), (0 if x1 < w / 2 else w, h), (0 if x0 < w / 2 else w, c.horizon)])
        cv2.fillPoly(shadow, [pts.astype(np.int32)], float(rng.uniform(0.5, 0.8)))
        shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, w / 400))
        gain *= shadow
    yy, xx = np.ogrid[:h, :w]
    gain *= 1 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2).astype(np.float32)
    cast = np.array(rng.uniform(0.9, 1.1, 3), dtype=np.float32)
    image = c.image.astype(np.float32) * gain[..., None] * cast
    image = cv2.GaussianBlur(image, (0, 0), max(0.5, w / 2048 * rng.uniform(0.6, 1.2)))
    sensor = rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(1.0, 4.0))
    image += sensor[..., None]  # luminance noise after the blur, as a camera's
    return np.clip(image, 0, 255).astype(np.uint8)


def generate_scene(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: RGB uint8 (H, W, 3) and labelIds uint8 (H, W)."""
    c = Canvas(height, width, rng)
    layout = {
        "road_half": rng.uniform(3.5, 8.0),
        "sidewalk": {s: rng.uniform(2.0, 5.0) for s in (-1, 1)},
        "grass": {s: (rng.uniform(0.8, 2.5) if rng.random() < 0.35 else 0.0) for s in (-1, 1)},
        "parking": {s: bool(rng.random() < 0.3) for s in (-1, 1)},
        "buildings": {s: bool(rng.random() < 0.8) for s in (-1, 1)},
        "trees": {s: bool(rng.random() < 0.5) for s in (-1, 1)},
        "frontage": {},
    }
    tracks = plan_tram_line(layout, rng.spawn(1)[0])  # its own stream: the rest of the street does not change
    draw_sky(c)
    draw_skyline(c)
    draw_ground(c, layout)
    draw_tracks(c, tracks)
    draw_facades(c, layout)
    objects: list = []
    add_frontage_objects(c, layout, objects)
    add_street_objects(c, layout, objects)
    add_trams(tracks, objects)
    for _, draw, args in sorted(objects, key=lambda item: -item[0]):  # far to near: near objects occlude
        draw(c, *args)
    draw_void(c)
    return finish(c), c.label


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of image ``index`` of ``split``."""
    return np.random.default_rng([seed, SPLIT_STREAM[split], index])


def sample_name(split: str, index: int) -> tuple[str, str]:
    """(city, CITY_SEQ_FRAME) of image ``index``: images go round-robin over the split's cities."""
    cities = CITIES[split]
    city = cities[index % len(cities)]
    return city, f"{city}_{index // len(cities):06d}_{FRAME:06d}"


def write_image(out: str | os.PathLike, split: str, index: int, height: int = 1024, width: int = 2048,
                seed: int = 0) -> None:
    """Write image ``index`` of a split and its labelIds in the official layout (one job of a parallel writer)."""
    image, label = generate_scene(height, width, image_rng(seed, split, index))
    city, name = sample_name(split, index)
    # Fast compression: the noise of the images makes high levels slow for little gain. write_png makes folders.
    write_png(Path(out) / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", image, compression=1)
    write_png(Path(out) / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", label, compression=1)


def write_split(out: str | os.PathLike, split: str, count: int, height: int = 1024, width: int = 2048,
                seed: int = 0) -> list[float]:
    """Write ``count`` images of one split in the official layout; returns seconds per image."""
    times = []
    for index in range(count):
        start = time.perf_counter()
        write_image(out, split, index, height, width, seed)
        times.append(time.perf_counter() - start)
    return times


def make_synthetic(out: str | os.PathLike, train: int = 40, val: int = 10, height: int = 1024, width: int = 2048,
                   seed: int = 0) -> dict[str, list[float]]:
    """Write the whole tree (train and val); returns the seconds per image of each split."""
    if height < 32 or width < 32:
        raise UserError(f"image size {height}x{width} is too small; use at least 32x32 (default 1024x2048).")
    if train < 0 or val < 0:
        raise UserError(f"image counts must not be negative (got --train {train} --val {val}).")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"output {out} exists and is not a folder; choose another --out.")
    return {split: write_split(out, split, count, height, width, seed)
            for split, count in (("train", train), ("val", val))}
