"""The classes the synthetic city paints, as official Cityscapes labelIds (``cityscapesscripts`` table)."""
from cityscapesscripts.helpers.labels import name2label


def label_id(name: str) -> int:
    return name2label[name].id


ROAD, SIDEWALK, BUILDING = (label_id(n) for n in ("road", "sidewalk", "building"))
WALL, FENCE, POLE = (label_id(n) for n in ("wall", "fence", "pole"))
LIGHT, SIGN = (label_id(n) for n in ("traffic light", "traffic sign"))
VEGETATION, TERRAIN, SKY = (label_id(n) for n in ("vegetation", "terrain", "sky"))
PERSON, RIDER, CAR, TRUCK, BUS = (label_id(n) for n in ("person", "rider", "car", "truck", "bus"))
MOTORCYCLE, BICYCLE = label_id("motorcycle"), label_id("bicycle")
EGO, OUT_OF_ROI, RECTIFICATION = label_id("ego vehicle"), label_id("out of roi"), label_id("rectification border")
STATIC, PARKING, GROUND = (label_id(n) for n in ("static", "parking", "ground"))
TRAIN, RAIL = label_id("train"), label_id("rail track")
