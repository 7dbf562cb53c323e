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

The modules, in the order ``scene.generate_scene`` uses them: ``canvas`` (the camera, colour and label images),
``layout`` (the street's cross-section, planned up front), ``tram`` (the tram line, planned from its own stream),
``sky``, ``ground``, ``tram_drawing``, ``buildings``, then the scene items (``items``) of ``frontage`` and
``placement`` (``furniture``, ``vehicles``, ``people``), painted far to near, and ``photo`` (void regions, texture,
light, noise). ``writer`` puts the images on disk, ``folder`` in the folder layout with its own class table.
"""
from segkit.data.synthetic.scene import SPLIT_STREAM, generate_scene, image_rng
from segkit.data.synthetic.writer import (CITIES, FRAME, demo_image, image_path, label_path, make_synthetic,
                                          sample_name, write_image, write_split)
from segkit.data.synthetic.folder import folder_table, make_synthetic_folder

__all__ = ["CITIES", "FRAME", "SPLIT_STREAM", "demo_image", "generate_scene", "image_path", "image_rng",
           "label_path", "make_synthetic", "sample_name", "folder_table", "make_synthetic_folder", "write_image",
           "write_split"]
