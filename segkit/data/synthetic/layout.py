"""The street's cross-section, planned before anything is painted: road, lanes, verges, sidewalks, frontage."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SIDES = (-1, 1)  # left and right of the camera
LANE = 3.3  # metres, about


@dataclass(frozen=True)
class Street:
    """Distances are metres from the centre line; per-side values are keyed by -1 (left) and 1 (right)."""

    road_half: float
    sidewalk: dict[int, float]  # width
    grass: dict[int, float]  # width of the verge between curb and sidewalk, 0.0 for none
    parking: dict[int, bool]  # a parking strip along the curb (drawn on half of such streets)
    buildings: dict[int, bool]  # facades behind the sidewalk, else a park
    trees: dict[int, bool]  # a row of trees on the sidewalk

    @property
    def lanes(self) -> int:
        return max(1, int(round(2 * self.road_half / LANE)))

    @property
    def lane_width(self) -> float:
        return 2 * self.road_half / self.lanes

    def lane_centre(self, lane: int) -> float:
        """x of the middle of lane ``lane`` (0 is the leftmost)."""
        return -self.road_half + self.lane_width * (lane + 0.5)

    def lane_line(self, k: int) -> float:
        """x of the dashed line between lanes ``k - 1`` and ``k``."""
        return -self.road_half + k * 2 * self.road_half / self.lanes

    def frontage(self, side: int) -> float:
        """Distance of the back of the sidewalk on ``side``: where facades, walls and fences stand."""
        return self.road_half + self.grass[side] + self.sidewalk[side]

    def walk(self, side: int) -> tuple[float, float]:
        """Distances of the sidewalk's road edge and back on ``side``."""
        return self.frontage(side) - self.sidewalk[side], self.frontage(side)


def plan_street(rng: np.random.Generator) -> Street:
    return Street(
        road_half=rng.uniform(3.5, 8.0),
        sidewalk={s: rng.uniform(2.0, 5.0) for s in SIDES},
        grass={s: (rng.uniform(0.8, 2.5) if rng.random() < 0.35 else 0.0) for s in SIDES},
        parking={s: bool(rng.random() < 0.3) for s in SIDES},
        buildings={s: bool(rng.random() < 0.8) for s in SIDES},
        trees={s: bool(rng.random() < 0.5) for s in SIDES},
    )
