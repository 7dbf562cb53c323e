"""Where the street's items stand: traffic in the lanes, parked cars at the curb, pedestrians, riders, parked
two-wheelers and static objects on the sidewalks, lamps, signs, traffic lights and trees along them."""
from __future__ import annotations

import functools

import numpy as np

from segkit.data.synthetic.furniture import (draw_sign, draw_static_object, draw_street_lamp, draw_traffic_light,
                                             draw_tree)
from segkit.data.synthetic.items import Item
from segkit.data.synthetic.layout import SIDES, Street
from segkit.data.synthetic.people import bike_item, person_item
from segkit.data.synthetic.vehicles import vehicle_item


def street_items(rng: np.random.Generator, street: Street) -> list[Item]:
    items = _traffic(rng, street)
    for side in SIDES:
        items += _curb_and_sidewalk(rng, street, side)
        items += _furniture(rng, street, side)
    return items


def _traffic(rng: np.random.Generator, street: Street) -> list[Item]:
    """Moving vehicles, a column per lane (some lanes empty)."""
    items = []
    for lane in range(street.lanes):
        if rng.random() < 0.3:
            continue
        x = street.lane_centre(lane)
        z = rng.uniform(8, 30)
        while z < 90:
            kind = rng.choice(["car", "truck", "bus"], p=[0.7, 0.15, 0.15])
            items.append(vehicle_item(x + rng.normal(0, 0.2), z, str(kind)))
            z += rng.uniform(15, 45)
    return items


def _curb_and_sidewalk(rng: np.random.Generator, street: Street, side: int) -> list[Item]:
    r = street.road_half
    walk0, walk1 = street.walk(side)
    items = []
    if rng.random() < 0.4:  # parked cars along the curb
        z = rng.uniform(5, 20)
        while z < 60:
            items.append(vehicle_item(side * (r - 1.1), z, "car" if rng.random() < 0.85 else "truck"))
            z += rng.uniform(6, 25)
    for z in rng.uniform(5, 50, size=rng.integers(1, 7)):  # pedestrians
        items.append(person_item(side * rng.uniform(walk0 + 0.3, walk1 - 0.3), z))
    for z in rng.uniform(6, 40, size=rng.integers(0, 3)):  # riders at the road edge
        items.append(bike_item(side * (r - 0.8), z, bool(rng.random() < 0.4), True))
    for z in rng.uniform(5, 30, size=rng.integers(0, 3)):  # parked bicycles / motorcycles
        items.append(bike_item(side * rng.uniform(walk0 + 0.5, walk1 - 0.2), z, bool(rng.random() < 0.3), False))
    for z in rng.uniform(5, 40, size=rng.integers(0, 3)):
        items.append(_at(draw_static_object, side * rng.uniform(walk0 + 0.3, walk1 - 0.2), z))
    return items


def _furniture(rng: np.random.Generator, street: Street, side: int) -> list[Item]:
    """Lamps, signs and traffic lights at the road edge of the sidewalk, and its row of trees."""
    walk0 = street.walk(side)[0]
    lamp_x = side * (walk0 + 0.4)
    items = [_at(draw_street_lamp, lamp_x, z) for z in np.arange(rng.uniform(4, 20), 120, rng.uniform(18, 30))]
    items += [_at(draw_sign, lamp_x + side * 0.2, z) for z in rng.uniform(6, 60, size=rng.integers(1, 4))]
    items += [_at(draw_traffic_light, lamp_x, z) for z in rng.uniform(8, 50, size=rng.integers(0, 3))]
    if street.trees[side]:
        items += [_at(draw_tree, side * (walk0 + rng.uniform(0.8, 1.5)), z)
                  for z in np.arange(rng.uniform(3, 12), 100, rng.uniform(8, 15))]
    return items


def _at(draw, x: float, z: float) -> Item:
    """An item at depth ``z`` drawn by ``draw(canvas, x=x, z=z)``."""
    return Item(z, functools.partial(draw, x=x, z=z))
