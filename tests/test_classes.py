"""segkit.data.classes: the Cityscapes table equals cityscapesscripts' trainId mapping; a user's YAML/JSON table
maps mask values and colours to classes, round-trips through a checkpoint's plain data, and each mistake in it is
one line naming the file."""
import json

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cs_labels

from segkit.data.classes import IGNORE_INDEX, ClassTable, class_table
from segkit.errors import UserError

SEVEN = """\
ignore: [0, 255]
classes:
  - {name: road, color: [128, 64, 128], values: [1]}
  - {name: sidewalk, color: [244, 35, 232], values: [2]}
  - {name: building, color: [70, 70, 70], values: [3]}
  - {name: vegetation, color: [107, 142, 35], values: [4]}
  - {name: sky, color: '#4682b4', values: [5]}
  - {name: vehicle, color: [0, 0, 142], values: [6, 16]}
  - {name: person, color: [220, 20, 60], value: 7}
categories: {flat: [road, sidewalk], nature: [vegetation]}
"""


def test_cityscapes_table_is_cityscapesscripts_trainids():
    # against cityscapesscripts' own table, entry by entry (segkit.data.labels are views of this table)
    table = ClassTable.cityscapes()
    train = {lab.trainId: lab for lab in cs_labels if 0 <= lab.trainId < 255}
    assert table.num_classes == 19 and table.is_cityscapes
    assert table.names == tuple(train[i].name for i in range(19))
    assert table.colors == tuple(tuple(train[i].color) for i in range(19))
    lookup = table.lookup()
    for lab in cs_labels:
        if 0 <= lab.id < 256:
            assert lookup[lab.id] == (lab.trainId if 0 <= lab.trainId < 255 else 255), lab.name
    ids = np.arange(256, dtype=np.uint8)
    expected = np.zeros(256, np.uint8)
    expected[:19] = [train[i].id for i in range(19)]
    np.testing.assert_array_equal(table.to_values(ids), expected)  # ignore and beyond: 0, "unlabeled"
    labels = np.random.default_rng(0).integers(0, 256, (20, 30)).astype(np.uint8)
    colours = table.colorize(labels)
    for index in (0, 5, 18):
        assert (colours[labels == index] == train[index].color).all()
    assert (colours[labels >= 19] == 0).all()
    assert {name: [table.names[i] for i in members] for name, members in table.categories.items()} == {
        category: [train[i].name for i in range(19) if train[i].category == category]
        for category in dict.fromkeys(train[i].category for i in sorted(train, key=lambda i: train[i].categoryId))}
    assert ClassTable.from_dict(table.to_dict()) == table
    assert class_table("cityscapes") == table and class_table("") == table


def test_a_users_table_maps_values_colours_and_round_trips(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text(SEVEN)
    table = class_table(str(path))
    assert table.names == ("road", "sidewalk", "building", "vegetation", "sky", "vehicle", "person")
    assert table.colors[4] == (70, 130, 180) and table.values[5] == (6, 16) and table.ignore == (0, 255)
    mask = np.array([[1, 6, 16, 7], [0, 255, 9, 5]], np.uint8)
    np.testing.assert_array_equal(table.to_classes(mask), [[0, 5, 5, 6], [255, 255, 255, 4]])
    np.testing.assert_array_equal(table.to_values(np.array([0, 5, 6, 255])), [1, 6, 7, 0])
    assert table.known()[[0, 1, 16, 255]].all() and not table.known()[9]
    rgb = np.array([[[128, 64, 128], [0, 0, 142], [1, 2, 3]]], np.uint8)
    np.testing.assert_array_equal(table.colors_to_classes(rgb), [[0, 5, 255]])
    np.testing.assert_array_equal(table.colorize(np.array([[6, 255]])), [[[220, 20, 60], [0, 0, 0]]])
    assert table.categories == {"flat": (0, 1), "nature": (3,)}
    assert ClassTable.from_dict(json.loads(json.dumps(table.to_dict()))) == table  # a checkpoint's copy
    json_path = tmp_path / "classes.json"
    json_path.write_text(json.dumps(table.to_dict()))
    assert ClassTable.load(json_path).names == table.names


@pytest.mark.parametrize("text, words", [
    ("classes: [{name: road, color: [1, 2, 3], values: [1]}, {name: car, color: [4, 5, 6], values: [1]}]",
     "mask value 1 is given to 'road' and 'car'"),
    ("classes: [{name: road, values: [1]}]", "class 'road' has no color"),
    ("classes: [{name: road, color: [1, 2, 300], values: [1]}]", "has color [1, 2, 300]"),
    ("classes: [{name: road, color: [1, 2, 3]}]", "class 'road' has no values"),
    ("classes: [{name: a, color: [1, 2, 3], values: [1]}, {name: a, color: [4, 5, 6], values: [2]}]",
     "name 'a' is given to two classes"),
    ("classes: [{name: a, color: [1, 2, 3], values: [1]}, {name: b, color: [1, 2, 3], values: [2]}]",
     "color [1, 2, 3] is given to two classes"),
    ("ignore: [1]\nclasses: [{name: a, color: [1, 2, 3], values: [1]}]", "both ignored and class 'a'"),
    ("classes: [{name: a, color: [1, 2, 3], values: [256]}]", "values [256]"),
    ("classes: [{name: a, color: [1, 2, 3], values: [1]}]\ncategories: {flat: [road]}", "names 'road'"),
    ("classes: []", "has no list of classes"),
    ("classes: [{name: a, color: [1, 2, 3], values: [1]]", "does not parse"),
])
def test_table_mistakes_are_one_line_naming_the_file(tmp_path, text, words):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as error:
        ClassTable.load(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message and words in message, message
    assert error.value.parameter == "data.classes"


def test_a_missing_table_file_is_one_line(tmp_path):
    with pytest.raises(UserError, match=r"cannot read the class table .*nowhere.yaml"):
        class_table(str(tmp_path / "nowhere.yaml"))


def test_ignore_index_is_outside_every_class():
    assert IGNORE_INDEX == 255
    table = ClassTable.from_dict({"classes": [{"name": f"c{i}", "color": [i, 0, 0], "values": [i]}
                                              for i in range(200)]})
    assert table.num_classes == 200 and table.lookup()[255] == IGNORE_INDEX
