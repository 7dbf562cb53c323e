"""Painting the tram line: track beds and rails on the road, and each tram as scene items (its side in window
bays of about two metres, each at its own depth, then its face); traffic in a tram's way is left out."""
from __future__ import annotations

import functools

import numpy as np

from segkit.data.synthetic.canvas import CAMERA_HEIGHT, Canvas
from segkit.data.synthetic.classes import RAIL, TRAIN
from segkit.data.synthetic.items import Footprint, Item
from segkit.data.synthetic.tram import GAUGE, Track, Tram


def draw_tracks(c: Canvas, tracks: list[Track]) -> None:
    """Track beds and rails over the road, after its markings: a bed keeps clear of the lane lines, crosswalk
    stripes stop at it."""
    for t in tracks:
        x, half = t.x, t.half
        c.floor(x - half, x + half, t.bed_colour, RAIL)
        if t.reserved:  # the kerb on the road side
            inner = x - np.sign(x) * half
            c.floor(inner, inner + np.sign(x) * 0.15, (175, 172, 165), RAIL)
        if t.bed == "ballast":  # concrete sleepers, as far as they stay 3 px apart
            reach = min(half - 0.05, 1.3)
            for z in np.arange(1.0, np.sqrt(c.f * CAMERA_HEIGHT * 0.6 / 3), 0.6):
                c.floor(x - reach, x + reach, t.bed_colour * 1.2 + 10, RAIL, z, z + 0.22)
        for rail in (x - GAUGE / 2, x + GAUGE / 2):
            inside = 1 if rail < x else -1
            if not t.reserved:  # grooved rail: a dark groove on the inner side of the head
                c.floor(rail + inside * 0.03, rail + inside * 0.07, (35, 35, 38), RAIL, 1.0)
            else:  # rail web shadow on the bed
                c.floor(rail - inside * 0.03, rail - inside * 0.07, t.bed_colour * 0.6, RAIL, 1.0)
            c.floor(rail - 0.03, rail + 0.03, t.steel, RAIL, 1.0)


def clear_for_trams(items: list[Item], tracks: list[Track]) -> list[Item]:
    """``items`` without the road users that would collide with a tram or stand on a reserved bed, and with the
    trams' items added."""
    kept = [item for item in items if item.footprint is None or not _in_the_way(item.footprint, tracks)]
    return kept + [item for t in tracks if t.tram is not None for item in tram_items(t.tram)]


def _in_the_way(f: Footprint, tracks: list[Track]) -> bool:
    for t in tracks:
        if t.reserved and abs(f.x - t.x) < t.half + f.half:
            return True
        tram = t.tram
        if tram is not None and abs(f.x - tram.x) < tram.w / 2 + f.half + 0.1 and f.z < tram.z + tram.length + 1 \
                and f.z + f.length > tram.z - 1:
            return True
    return False


def tram_items(tram: Tram) -> list[Item]:
    """When its side shows, one item per window bay and bellows (each at its own depth); then its face, in front
    of its own side."""
    items = []
    if abs(tram.x) > tram.w / 2:
        bay = tram.section / tram.bays
        for s in range(tram.sections):
            z0 = tram.z + s * (tram.section + tram.joint)
            for k in range(tram.bays):
                draw = functools.partial(draw_bay, tram=tram, z0=z0 + k * bay, z1=z0 + (k + 1) * bay,
                                         door=k in tram.doors)
                items.append(Item(z0 + k * bay, draw))
            if s < tram.sections - 1:
                items.append(Item(z0 + tram.section, functools.partial(draw_joint, tram=tram, z=z0 + tram.section)))
    items.append(Item(tram.z - 1e-3, functools.partial(draw_face, tram=tram)))
    return items


def draw_bay(c: Canvas, tram: Tram, z0: float, z1: float, door: bool) -> None:
    sx, h = tram.side_x, tram.h

    def panel(y0, y1, colour, a=z0, b=z1):
        c.fill3d([(sx, y0, a), (sx, y1, a), (sx, y1, b), (sx, y0, b)], colour, TRAIN)

    side = tram.body * 0.85
    panel(0.08, h, side)
    panel(0.08, 0.4, tram.skirt * 0.85)
    panel(*tram.band_y, tram.band * 0.85)
    panel(h - 0.18, h, side * 0.8)
    if door:
        panel(0.35, 2.3, tram.skirt * 0.7, z0 + 0.12, z1 - 0.12)
        panel(0.5, 2.2, tram.glass, z0 + 0.2, z1 - 0.2)
        p = c.project([(sx, 0.4, (z0 + z1) / 2), (sx, 2.25, (z0 + z1) / 2)])
        c.line(p[0], p[1], tram.skirt * 0.7, TRAIN, max(1, c.px(0.05, z0)))
    else:
        panel(1.05, 2.6, tram.glass, z0 + 0.1, z1 - 0.1)


def draw_joint(c: Canvas, tram: Tram, z: float) -> None:
    """The articulation bellows between two sections."""
    sx = tram.side_x
    c.fill3d([(sx, 0.3, z), (sx, tram.h - 0.1, z), (sx, tram.h - 0.1, z + tram.joint), (sx, 0.3, z + tram.joint)],
             (38, 38, 40), TRAIN)


def draw_face(c: Canvas, tram: Tram) -> None:
    """Roof equipment and pantograph (set back, drawn first), then the cab face with windscreen and lights."""
    x, z, w, h = tram.x, tram.z, tram.w, tram.h
    x0, x1 = x - w / 2, x + w / 2
    c.fill3d([(x - 0.7, h - 0.1, z + 1.0), (x + 0.7, h - 0.1, z + 1.0), (x + 0.6, h + 0.3, z + 1.0),
              (x - 0.6, h + 0.3, z + 1.0)], (120, 122, 126), TRAIN)
    if tram.pantograph:
        _pantograph(c, tram)

    def rect(a, b, y0, y1, colour):
        c.fill3d([(a, y0, z), (b, y0, z), (b, y1, z), (a, y1, z)], colour, TRAIN)

    c.fill3d([(x0, 0.08, z), (x1, 0.08, z), (x1, h - 0.35, z), (x1 - 0.3, h, z), (x0 + 0.3, h, z),
              (x0, h - 0.35, z)], tram.body, TRAIN)
    rect(x0, x1, 0.08, 0.45, tram.skirt)
    rect(x0, x1, *tram.band_y, tram.band)
    c.fill3d([(x0 + 0.12, 1.1, z), (x1 - 0.12, 1.1, z), (x1 - 0.22, h - 0.6, z), (x0 + 0.22, h - 0.6, z)],
             tram.glass, TRAIN)
    rect(x0 + 0.35, x1 - 0.35, h - 0.5, h - 0.18, (22, 22, 24))  # destination display
    rect(x0 + 0.5, min(x1 - 0.5, x0 + 0.5 + tram.text), h - 0.4, h - 0.28, (255, 165, 40))
    lights = (250, 248, 225) if tram.front else (225, 35, 30)
    for lx in (x0 + 0.12, x1 - 0.42):
        rect(lx, lx + 0.3, 0.6, 0.78, lights)


def _pantograph(c: Canvas, tram: Tram) -> None:
    """Over the middle of the first section: a folded arm and its contact bar."""
    x, h, zp = tram.x, tram.h, tram.z + tram.section / 2
    arm = c.project([(x - 0.5, h + 0.3, zp), (x + 0.15, h + 0.9, zp), (x - 0.3, h + 1.5, zp)])
    thick = max(1, c.px(0.05, zp))
    c.line(arm[0], arm[1], (60, 60, 62), TRAIN, thick)
    c.line(arm[1], arm[2], (60, 60, 62), TRAIN, thick)
    bar = c.project([(x - 0.8, h + 1.5, zp), (x + 0.8, h + 1.5, zp)])
    c.line(bar[0], bar[1], (60, 60, 62), TRAIN, thick)
