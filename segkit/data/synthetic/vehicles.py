"""Cars, trucks and buses, seen from behind (or the front), with their side showing when off the camera's axis."""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick
from segkit.data.synthetic.classes import BUS, CAR, TRUCK
from segkit.data.synthetic.items import Footprint, Item

FOOTPRINT = {"car": (1.0, 4.8), "truck": (1.3, 10.0), "bus": (1.3, 13.0)}  # half width, length: the largest drawn
WHEEL = (25, 25, 25)


def vehicle_item(x: float, z: float, kind: str) -> Item:
    return Item(z, functools.partial(draw_vehicle, x=x, z=z, kind=kind), Footprint(x, z, *FOOTPRINT[kind]))


@dataclass(frozen=True)
class Vehicle:
    """One vehicle's size (metres) and paint; its rear (or front) face is at depth ``z``, its body runs away."""

    kind: str
    x: float
    z: float
    w: float
    h: float
    length: float
    label: int
    body: np.ndarray
    glass: np.ndarray

    @property
    def xs(self) -> tuple[float, float]:
        return self.x - self.w / 2, self.x + self.w / 2

    @property
    def side_x(self) -> float:
        """The side facing the camera axis."""
        return self.xs[0] if self.x > 0 else self.xs[1]


def draw_vehicle(c: Canvas, x: float, z: float, kind: str) -> None:
    v = _look(c.rng, x, z, kind)
    if abs(x) > v.w / 2:  # side face first: the rear face is nearer
        _side(c, v)
    _face(c, v)
    lights = (230, 30, 30) if c.rng.random() < 0.7 else (250, 250, 220)
    for lx in (v.xs[0] + 0.05, v.xs[1] - 0.3):
        c.fill3d([(lx, 0.8, z), (lx + 0.25, 0.8, z), (lx + 0.25, 1.0, z), (lx, 1.0, z)], lights, v.label)
    plate = [(x - 0.26, 0.45, z), (x + 0.26, 0.45, z), (x + 0.26, 0.57, z), (x - 0.26, 0.57, z)]
    c.fill3d(plate, (235, 235, 230), v.label)


def _look(rng: np.random.Generator, x: float, z: float, kind: str) -> Vehicle:
    if kind == "car":
        w, h, length, label = rng.uniform(1.7, 1.95), rng.uniform(1.4, 1.6), rng.uniform(4, 4.8), CAR
        body = pick(rng, [(200, 200, 205), (30, 30, 35), (150, 20, 25), (20, 50, 130), (130, 130, 135),
                          (230, 230, 225), (60, 90, 60), (180, 150, 60)], 15)
    elif kind == "truck":
        w, h, length, label = 2.5, rng.uniform(3.0, 3.8), rng.uniform(7, 10), TRUCK
        body = pick(rng, [(220, 220, 215), (200, 60, 40), (60, 90, 150), (180, 180, 170), (230, 200, 60)], 12)
    else:
        w, h, length, label = 2.55, rng.uniform(3.0, 3.3), rng.uniform(11, 13), BUS
        body = pick(rng, [(235, 200, 40), (200, 40, 40), (230, 230, 230), (40, 120, 70), (40, 80, 170)], 12)
    return Vehicle(kind, x, z, w, h, length, label, body, pick(rng, [(40, 45, 55), (70, 80, 90)], 8))


def _side(c: Canvas, v: Vehicle) -> None:
    sx, z, h, length = v.side_x, v.z, v.h, v.length
    c.fill3d([(sx, 0.3, z), (sx, h, z), (sx, h, z + length), (sx, 0.3, z + length)], v.body * 0.85, v.label)
    if v.kind == "bus":
        windows = [(sx, 1.3, z + 0.5), (sx, h - 0.3, z + 0.5), (sx, h - 0.3, z + length - 0.5),
                   (sx, 1.3, z + length - 0.5)]
    elif v.kind == "car":
        windows = [(sx, 0.95, z + 0.8), (sx, h - 0.1, z + 1.2), (sx, h - 0.1, z + length - 1.5),
                   (sx, 0.95, z + length - 1.0)]
    else:  # truck: the cab's side window, at the far end
        windows = [(sx, 1.0, z + length - 2.0), (sx, h - 0.6, z + length - 2.0), (sx, h - 0.6, z + length - 0.3),
                   (sx, 1.0, z + length - 0.3)]
    c.fill3d(windows, v.glass, v.label)
    for wz in (z + 0.9, z + length - 0.9):
        centre = c.project([(sx, 0.35, wz)])[0]
        c.ellipse(centre, (c.px(0.35, wz) * abs(sx) / wz + 1, c.px(0.35, wz)), WHEEL, v.label)


def _face(c: Canvas, v: Vehicle) -> None:
    """Rear (or front) face, the wheels under it, and the car's rear window or the bus's or truck's details."""
    (x0, x1), x, z, h, label = v.xs, v.x, v.z, v.h, v.label
    face_top = h if v.kind != "car" else h * 0.6
    c.fill3d([(x0, 0.25, z), (x1, 0.25, z), (x1, face_top, z), (x0, face_top, z)], v.body, label)
    for wx in (x0 + 0.15, x1 - 0.45):
        c.fill3d([(wx, 0, z + 0.3), (wx + 0.3, 0, z + 0.3), (wx + 0.3, 0.4, z + 0.3), (wx, 0.4, z + 0.3)], WHEEL, label)
    if v.kind == "car":
        c.fill3d([(x0 + 0.15, face_top, z + 0.4), (x1 - 0.15, face_top, z + 0.4), (x1 - 0.3, h, z + 0.9),
                  (x0 + 0.3, h, z + 0.9)], v.body * 0.95, label)
        c.fill3d([(x0 + 0.25, face_top + 0.05, z + 0.45), (x1 - 0.25, face_top + 0.05, z + 0.45),
                  (x1 - 0.35, h - 0.08, z + 0.85), (x0 + 0.35, h - 0.08, z + 0.85)], v.glass, label)
    elif v.kind == "bus":
        c.fill3d([(x0 + 0.2, 1.4, z), (x1 - 0.2, 1.4, z), (x1 - 0.2, h - 0.3, z), (x0 + 0.2, h - 0.3, z)],
                 v.glass, label)
    else:  # truck: cargo doors
        mid = c.project([(x, 0.3, z), (x, h - 0.1, z)])
        c.line(mid[0], mid[1], v.body * 0.6, label, c.px(0.04, z))
