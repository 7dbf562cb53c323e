"""The street's tram line, planned before anything is painted: tracks (bed, position) and the tram on each."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from segkit.data.synthetic.canvas import pick, vary
from segkit.data.synthetic.layout import Street

TRAM_LINE = 0.35  # share of streets with a tram line
GAUGE = 1.435  # metres between the rails (standard gauge)
# Track beds (RGB) and tram liveries (body, band).
BEDS = {
    "asphalt": [(95, 95, 98), (80, 80, 86), (112, 108, 106)],
    "setts": [(120, 112, 102), (104, 100, 96), (136, 126, 114)],
    "ballast": [(125, 116, 102), (110, 106, 98), (138, 128, 112)],
    "grass": [(100, 145, 65), (120, 160, 80), (88, 128, 58)],
}
RESERVED = ("ballast", "grass")  # beds of their own, with a kerb; asphalt and setts are shared with the traffic
LIVERIES = [((232, 205, 60), (70, 70, 72)), ((240, 240, 235), (200, 30, 35)), ((240, 240, 235), (40, 110, 60)),
            ((238, 238, 232), (40, 80, 170)), ((200, 35, 40), (235, 235, 230)), ((212, 218, 222), (230, 120, 30)),
            ((245, 230, 200), (120, 30, 40)), ((40, 95, 60), (225, 225, 215))]


@dataclass(frozen=True)
class Tram:
    """Size (metres), position and look of one articulated tram; its face is at depth ``z``, its sections run
    away from the camera, each of ``bays`` window bays (``doors`` index the bays with a door)."""

    x: float
    w: float
    h: float
    z: float
    sections: int
    section: float  # length of one section
    joint: float  # length of the bellows between two sections
    bays: int
    doors: frozenset[int]
    body: np.ndarray
    band: np.ndarray
    band_y: tuple[float, float]  # bottom and top of the livery band
    skirt: np.ndarray
    glass: np.ndarray
    text: float  # width of the destination's text
    pantograph: bool

    @property
    def length(self) -> float:
        return self.sections * self.section + (self.sections - 1) * self.joint

    @property
    def side_x(self) -> float:
        """The side facing the camera axis."""
        return self.x - self.w / 2 if self.x > 0 else self.x + self.w / 2

    @property
    def front(self) -> bool:
        """Oncoming trams (left of the camera) show their front and headlights."""
        return self.x < -0.5


@dataclass(frozen=True)
class Track:
    """One track: its bed from ``x - half`` to ``x + half``, and the tram standing on it, if any."""

    x: float
    half: float
    bed: str  # a key of BEDS
    bed_colour: np.ndarray
    steel: np.ndarray
    tram: Tram | None

    @property
    def reserved(self) -> bool:
        return self.bed in RESERVED


def plan_tram_line(street: Street, rng: np.random.Generator) -> list[Track]:
    """The street's tram tracks (none on most streets), each with its tram or none; draws only from ``rng``.

    A track shared with the traffic (asphalt or setts) lies in an inner lane where the road has some; a reserved
    bed (ballast or grass, with a kerb) takes a curb lane, so that the camera's car never drives on it."""
    if rng.random() >= TRAM_LINE:
        return []
    bed = str(rng.choice(list(BEDS), p=[0.4, 0.25, 0.15, 0.2]))
    if bed in RESERVED and street.lanes >= 3:
        side = 1 if rng.random() < 0.5 else -1
        half = street.lane_width / 2
        beds = [(side * (street.road_half - half + 0.04), half - 0.04)]  # curb to the dashed line, edge line covered
    else:
        bed = {"ballast": "setts", "grass": "asphalt"}.get(bed, bed)
        beds = _shared_beds(street, rng)
    bed_colour, steel = pick(rng, BEDS[bed], 8), vary(rng, (170, 166, 164), 10)
    return [Track(x, half, bed, bed_colour, steel, plan_tram(rng, x, 2 * half - 0.1) if rng.random() < 0.8 else None)
            for x, half in beds]


def _shared_beds(street: Street, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(x, half width) of one or two beds in inner lanes (any lane on a two-lane road), each as wide as a tram and a
    bit if the lane allows, clear of the dashed lane lines and, in a curb lane, of the edge line."""
    lanes = street.lanes
    inner = list(range(1, lanes - 1)) or list(range(lanes))
    count = min(len(inner), 1 + int(rng.random() < 0.5))
    first = int(rng.integers(len(inner) - count + 1))
    return [(street.lane_centre(lane),
             min(rng.uniform(1.3, 1.55), street.lane_width / 2 - (0.4 if lane in (0, lanes - 1) else 0.08)))
            for lane in inner[first:first + count]]


def plan_tram(rng: np.random.Generator, x: float, max_width: float) -> Tram:
    w = min(rng.uniform(2.3, 2.65), max_width)
    sections, section, joint = int(rng.integers(3, 6)), rng.uniform(5.5, 8.0), 0.5
    body, band = (np.asarray(v, dtype=np.float64) for v in LIVERIES[rng.integers(len(LIVERIES))])
    bays = max(2, int(round(section / rng.uniform(1.6, 2.1))))
    return Tram(
        x=x, w=w, h=rng.uniform(3.3, 3.6), z=rng.uniform(8, 60), sections=sections, section=section, joint=joint,
        bays=bays, doors=frozenset({int(rng.integers(bays)), int(rng.integers(bays))}), body=vary(rng, body, 10),
        band=vary(rng, band, 10), band_y=(0.45, 0.8) if rng.random() < 0.5 else (0.85, 1.05),
        skirt=pick(rng, [(50, 50, 55), (90, 90, 95)], 6),
        glass=pick(rng, [(40, 45, 55), (60, 70, 80), (30, 35, 42)], 8),
        text=rng.uniform(0.5, 1.3), pantograph=bool(rng.random() < 0.8),
    )
