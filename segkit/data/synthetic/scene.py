"""One street scene, start to finish, and the random stream of each image."""
from __future__ import annotations

import numpy as np

from segkit.data.synthetic.buildings import draw_facades
from segkit.data.synthetic.canvas import Canvas
from segkit.data.synthetic.frontage import frontage_items
from segkit.data.synthetic.ground import draw_ground
from segkit.data.synthetic.items import paint
from segkit.data.synthetic.layout import plan_street
from segkit.data.synthetic.photo import draw_void, finish
from segkit.data.synthetic.placement import street_items
from segkit.data.synthetic.sky import draw_sky, draw_skyline
from segkit.data.synthetic.tram import plan_tram_line
from segkit.data.synthetic.tram_drawing import clear_for_trams, draw_tracks

SPLIT_STREAM = {"train": 0, "val": 1, "test": 2}


def generate_scene(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One street scene: RGB uint8 (H, W, 3) and labelIds uint8 (H, W).

    Every step draws from ``rng`` in turn, so their order here is part of each seed's picture."""
    c = Canvas(height, width, rng)
    street = plan_street(rng)
    tracks = plan_tram_line(street, rng.spawn(1)[0])  # its own stream: the rest of the street does not change
    draw_sky(c)
    draw_skyline(c)
    draw_ground(c, street)
    draw_tracks(c, tracks)  # over the road's markings
    draw_facades(c, street)
    items = frontage_items(rng, street) + street_items(rng, street)
    paint(c, clear_for_trams(items, tracks))
    draw_void(c)
    return finish(c), c.label


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of image ``index`` of ``split``."""
    return np.random.default_rng([seed, SPLIT_STREAM[split], index])
