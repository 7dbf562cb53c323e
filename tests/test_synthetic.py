import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as cs_labels

from segkit.data.cityscapes import CityscapesDataset
from segkit.data.labels import to_train_ids
from segkit.data.synthetic import generate_scene, image_rng, make_synthetic

REPO = Path(__file__).resolve().parents[1]


def test_deterministic_by_seed_and_split():
    a = generate_scene(64, 128, image_rng(0, "train", 3))
    b = generate_scene(64, 128, image_rng(0, "train", 3))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    val = generate_scene(64, 128, image_rng(0, "val", 3))
    other_seed = generate_scene(64, 128, image_rng(1, "train", 3))
    assert not np.array_equal(a[0], val[0]) and not np.array_equal(a[0], other_seed[0])


def test_tree_layout_names_and_label_ids(tmp_path):
    make_synthetic(tmp_path, train=4, val=2, height=48, width=96, seed=0)
    images = sorted((tmp_path / "leftImg8bit").glob("*/*/*.png"))
    assert len(images) == 6
    assert {p.parts[-3] for p in images} == {"train", "val"}
    official_ids = {lab.id for lab in cs_labels if lab.id >= 0}
    for image in images:
        city = image.parent.name
        assert re.fullmatch(rf"{city}_\d{{6}}_000019_leftImg8bit\.png", image.name), image.name
        rgb = cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        assert rgb.dtype == np.uint8 and rgb.shape == (48, 96, 3)
        label = image.parents[3] / "gtFine" / image.parts[-3] / city / image.name.replace(
            "_leftImg8bit.png", "_gtFine_labelIds.png")
        ids = cv2.imread(str(label), cv2.IMREAD_UNCHANGED)
        assert ids.dtype == np.uint8 and ids.shape == (48, 96)
        assert set(np.unique(ids)) <= official_ids
        assert 7 in ids  # labelIds (road = 7), not trainIds (road = 0)
    train_cities = {p.parent.name for p in images if p.parts[-3] == "train"}
    val_cities = {p.parent.name for p in images if p.parts[-3] == "val"}
    assert len(train_cities) >= 2 and not train_cities & val_cities
    assert len(CityscapesDataset(tmp_path, "train")) == 4  # the dataset reads it


def test_class_coverage():
    seen = set()
    for index in range(6):
        _, ids = generate_scene(256, 512, image_rng(0, "train", index))
        seen |= set(np.unique(to_train_ids(ids)).tolist())
    seen.discard(255)
    assert len(seen) >= 16, sorted(seen)


def test_cli(tmp_path):
    out = tmp_path / "syn"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic.py"), "--out", str(out),
                          "--train", "2", "--val", "1", "--height", "40", "--width", "80"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(list(out.glob("leftImg8bit/*/*/*.png"))) == 3
    bad = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic.py"), "--out", str(out),
                          "--height", "8"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
