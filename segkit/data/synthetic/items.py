"""Scene items: what stands in the street, painted far to near so that near items occlude far ones."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from segkit.data.synthetic.canvas import Canvas


@dataclass(frozen=True)
class Footprint:
    """The ground a road user takes: centred on ``x``, ``half`` wide to each side, from depth ``z`` over
    ``length``; trams keep it clear (``segkit.data.synthetic.tram_drawing.clear_for_trams``)."""

    x: float
    z: float
    half: float
    length: float


@dataclass(frozen=True)
class Item:
    """``draw(canvas)`` paints the item; ``depth`` orders the painting, ``footprint`` is None for street furniture,
    buildings' frontage and trams."""

    depth: float
    draw: Callable[[Canvas], None]
    footprint: Footprint | None = None


def paint(c: Canvas, items: list[Item]) -> None:
    """Far to near (a stable sort: items at the same depth keep their order)."""
    for item in sorted(items, key=lambda item: -item.depth):
        item.draw(c)
