import json

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as cs_labels
from cityscapesscripts.preparation import createTrainIdLabelImgs
from cityscapesscripts.preparation.json2labelImg import json2labelImg

from segkit.data import labels as L


def _polygon_tree(root):
    """One gtFine polygon file: a vertical stripe per label of the official table, plus a group and a plate."""
    height, width = 48, 8 * len(cs_labels)
    objects = []
    for k, label in enumerate(cs_labels):
        objects.append({"label": label.name, "polygon": [[8 * k, 0], [8 * k + 7, 0], [8 * k + 7, 30], [8 * k, 30]]})
    objects.append({"label": "cargroup", "polygon": [[0, 34], [40, 34], [40, 40], [0, 40]]})
    objects.append({"label": "license plate", "polygon": [[100, 5], [120, 5], [120, 20], [100, 20]]})
    city = root / "gtFine" / "train" / "testcity"
    city.mkdir(parents=True)
    path = city / "testcity_000000_000019_gtFine_polygons.json"
    path.write_text(json.dumps({"imgHeight": height, "imgWidth": width, "objects": objects}))
    return path


def test_lut_matches_official_train_id_conversion(tmp_path, monkeypatch, capsys):
    polygons = _polygon_tree(tmp_path)
    label_ids_path = str(polygons).replace("_polygons.json", "_labelIds.png")
    json2labelImg(str(polygons), label_ids_path, "ids")
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path))
    createTrainIdLabelImgs.main()
    capsys.readouterr()  # the script prints progress
    label_ids = cv2.imread(label_ids_path, cv2.IMREAD_UNCHANGED)
    official = cv2.imread(str(polygons).replace("_polygons.json", "_labelTrainIds.png"), cv2.IMREAD_UNCHANGED)
    assert label_ids.shape == official.shape == (48, 8 * len(cs_labels))
    # every label id of the table is present, so the whole LUT is exercised
    assert set(np.unique(label_ids)) == {lab.id for lab in cs_labels if lab.id >= 0}
    np.testing.assert_array_equal(L.to_train_ids(label_ids), official)
    np.testing.assert_array_equal(L.LABEL_TO_TRAIN[label_ids], official)


def test_lut_shape_and_ignore():
    assert L.LABEL_TO_TRAIN.shape == (256,) and L.LABEL_TO_TRAIN.dtype == np.uint8
    assert sorted(set(L.LABEL_TO_TRAIN.tolist()) - {255}) == list(range(19))
    assert (L.LABEL_TO_TRAIN[34:] == 255).all()  # ids beyond the table
    assert L.LABEL_TO_TRAIN[0] == 255 and L.LABEL_TO_TRAIN[7] == 0 and L.LABEL_TO_TRAIN[33] == 18
    # non-uint8 input: out-of-range ids are ignored instead of wrapping around
    np.testing.assert_array_equal(L.to_train_ids(np.array([7, 263, -1, 26])), [0, 255, 255, 13])


def test_train_to_label_round_trip():
    train_ids = np.arange(19, dtype=np.uint8)
    np.testing.assert_array_equal(L.to_train_ids(L.to_label_ids(train_ids)), train_ids)
    assert L.to_label_ids(np.array([255], dtype=np.uint8))[0] == 0  # ignore -> unlabeled
    assert L.TRAIN_TO_LABEL[16] == 31  # train -> "train", not a caravan/trailer alias


def test_names_categories_palette():
    assert len(L.CLASS_NAMES) == 19 and L.CLASS_NAMES[0] == "road" and L.CLASS_NAMES[-1] == "bicycle"
    assert L.CATEGORY_NAMES == ("flat", "construction", "object", "nature", "sky", "human", "vehicle")
    assert [L.CATEGORY_NAMES[c] for c in L.CATEGORY_OF_CLASS[[0, 2, 5, 8, 10, 11, 13]]] == list(L.CATEGORY_NAMES)
    assert L.PALETTE.shape == (19, 3) and L.PALETTE.dtype == np.uint8
    assert tuple(L.PALETTE[0]) == (128, 64, 128) and tuple(L.PALETTE[13]) == (0, 0, 142)


def test_colorize():
    out = L.colorize(np.array([[0, 255], [18, 40]], dtype=np.uint8))
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (128, 64, 128) and tuple(out[0, 1]) == (0, 0, 0)
    assert tuple(out[1, 0]) == (119, 11, 32) and tuple(out[1, 1]) == (0, 0, 0)
    # every id, any integer dtype, any shape: the table's colour (2-D maps go through OpenCV's lookup)
    ids = np.random.default_rng(0).integers(-3, 300, (37, 53))
    expected = np.where(((ids >= 0) & (ids < 19))[..., None], L.PALETTE[np.clip(ids, 0, 18)], 0)
    assert np.array_equal(L.colorize(ids), expected) and np.array_equal(L.colorize(ids[None]), expected[None])
    assert np.array_equal(L.colorize(ids.astype(np.uint8)[:, ::2]), L.colorize(ids.astype(np.uint8))[:, ::2])
