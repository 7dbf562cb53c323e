"""Persons, and bicycles and motorcycles in side view, parked or with a rider."""
from __future__ import annotations

import functools

import numpy as np

from segkit.data.synthetic.canvas import Canvas, pick
from segkit.data.synthetic.classes import BICYCLE, MOTORCYCLE, PERSON, RIDER
from segkit.data.synthetic.items import Footprint, Item

BIKE_FOOTPRINT = (0.4, 1.3)  # half width, length


def person_item(x: float, z: float) -> Item:
    return Item(z, functools.partial(draw_person, x=x, z=z))


def bike_item(x: float, z: float, motor: bool, with_rider: bool) -> Item:
    return Item(z, functools.partial(draw_bike, x=x, z=z, motor=motor, with_rider=with_rider),
                Footprint(x, z, *BIKE_FOOTPRINT))


def draw_person(c: Canvas, x: float, z: float, label: int = PERSON, seated: float = 0.0) -> None:
    """Head, torso, arms and legs; ``seated`` raises the person onto a bike (a rider's legs are shorter)."""
    rng = c.rng
    height = rng.uniform(1.55, 1.9)
    skin = pick(rng, [(230, 190, 160), (190, 140, 100), (120, 80, 60)], 10)
    shirt = pick(rng, [(200, 40, 40), (40, 60, 150), (230, 230, 220), (40, 40, 45), (60, 130, 70), (230, 180, 50),
                       (120, 80, 140)], 20)
    trousers = pick(rng, [(40, 50, 80), (30, 30, 35), (110, 100, 90), (70, 70, 75)], 12)
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
                  pick(rng, [(30, 25, 20), (90, 60, 30), (200, 180, 120)], 10), label)


def draw_bike(c: Canvas, x: float, z: float, motor: bool, with_rider: bool) -> None:
    """A two-wheeler in side view; a rider (label rider) sits on it."""
    rng = c.rng
    label = MOTORCYCLE if motor else BICYCLE
    r = 0.33 if motor else 0.35
    base = 0.6 if motor else 0.55  # half wheelbase
    direction = 1 if rng.random() < 0.5 else -1
    frame = pick(rng, [(200, 30, 30), (30, 30, 30), (30, 80, 170), (200, 200, 200), (40, 130, 60)], 12)
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
        draw_person(c, x - 0.1 * direction, z + 0.05, RIDER, seated=r + 0.3)
