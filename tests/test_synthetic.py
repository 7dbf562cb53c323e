import hashlib
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cs_labels
from cityscapesscripts.helpers.labels import name2label

from segkit.data.cityscapes import CityscapesDataset
from segkit.data.labels import NUM_CLASSES, to_train_ids
from segkit.data.synthetic import demo_image, generate_scene, image_rng, make_synthetic
from segkit.errors import UserError

REPO = Path(__file__).resolve().parents[1]
TRAIN, RAIL = name2label["train"].id, name2label["rail track"].id
FLAT = [name2label[n].id for n in ("ground", "road", "sidewalk", "parking", "rail track", "terrain")]


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


@pytest.fixture(scope="module", params=[0, 1])
def small_city(request, tmp_path_factory):
    """labelIds of the smallest data set with all 19 classes in both splits for seeds 0 and 1 (the default seed
    needs 7 + 5 images at this size, seed 1 needs 9 + 7); read back from the written tree."""
    root = tmp_path_factory.mktemp(f"city{request.param}")
    make_synthetic(root, train=10, val=8, height=64, width=128, seed=request.param)
    return {split: [cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                    for p in sorted((root / "gtFine" / split).glob("*/*_labelIds.png"))] for split in ("train", "val")}


def test_every_class_in_both_splits(small_city):
    for split, labels in small_city.items():
        seen = set().union(*(np.unique(to_train_ids(ids)).tolist() for ids in labels)) - {255}
        assert seen == set(range(NUM_CLASSES)), (split, sorted(set(range(NUM_CLASSES)) - seen))


def test_trams_stand_on_rails(small_city):
    """Directly below a tram's bottom edge, where the ground shows, lies its track bed (rail track), far more often
    than rail track's share of the ground in the same images."""
    below, ground = [], []
    for ids in small_city["train"] + small_city["val"]:
        tram = ids == TRAIN
        if not tram.any():
            continue
        cols = np.flatnonzero(tram[:-1].any(0))
        bottom = tram.shape[0] - 2 - np.argmax(tram[-2::-1, cols], 0)  # lowest tram row above the last, per column
        under = ids[bottom + 1, cols]
        below.append(under[np.isin(under, FLAT)])
        ground.append(ids[np.isin(ids, FLAT)])
    below, ground = np.concatenate(below), np.concatenate(ground)
    assert len(below) >= 15, len(below)
    on_rails, rail_share = np.mean(below == RAIL), np.mean(ground == RAIL)
    assert on_rails >= 0.8 and on_rails > 2 * rail_share, (on_rails, rail_share, np.unique(below, return_counts=True))


def test_tram_scene_deterministic():
    a = generate_scene(64, 128, image_rng(0, "train", 6))
    b = generate_scene(64, 128, image_rng(0, "train", 6))
    assert TRAIN in a[1] and RAIL in a[1]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_cli(tmp_path):
    out = tmp_path / "syn"
    run = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic.py"), "--out", str(out),
                          "--train", "2", "--val", "1", "--height", "40", "--width", "80"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert len(list(out.glob("leftImg8bit/*/*/*.png"))) == 3
    bad = subprocess.run([sys.executable, str(REPO / "tools" / "make_synthetic.py"), "--out", str(out),
                          "--height", "8"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert "--height 8 is too small" in bad.stderr, bad.stderr


# SHA-256 of the (image, labelIds) arrays of generate_scene(height, width, image_rng(seed, split, index)), as the
# generator drew them before it became a package: the pictures of a seed must not change. Decoded arrays, not PNG
# bytes, so that an OpenCV or zlib upgrade cannot break it. The last four scenes have a tram.
PINNED = {
    (0, "train", 0, 64, 128): ("3cbe5b53acbcbf008dffe44a24e6cb1f190661ef2cb9734e109cb53ecac6986b",
                               "bbed27942a70c8542a9089faf42e9a586d51ac6cdc39968d5f7015b924053ba9"),
    (0, "val", 0, 64, 128): ("e1d6835fd348b4fa64381030cc853a7b9363f2dcefccb2e69f0cb3decfa4565b",
                             "5b6c7608600aeec44a4de0affd993e5532a4bff9d7e91c2faa076622d9cb5089"),
    (0, "train", 6, 64, 128): ("efbbeaaa41926da82ec95c27e045eb572946a8e849a07a55c4f398f0583e9602",
                               "dc5281aa3901836fc68c17c078d519a4a3fd569305574feb9c4dd3b619edfc3c"),
    (1, "val", 2, 96, 160): ("28fa6b37b289d5bc4a61cbdf96c063a71bfe7f81b1891e5274a972f82884f4c7",
                             "f98a47d46c15f2239d59e5705b5e3e70a904c7e2f9e58e7837b8861135497fdd"),
    (2, "val", 1, 256, 512): ("37804e33fb8f6842edb452bc22f4c4a0e6244fb6c7b135793685256f02dd51f5",
                              "ae613a2f7eff774d939a0530033355189658ace981e73e1b367faa0b0eb44a94"),
    (2, "train", 3, 512, 1024): ("31bab3ba075e47bb5d1e350cbbbf583d3d1ce4892800b8bdf57199e6ef44a6af",
                                 "b293f4f418559f92ee6f30e1cda88de5a5ce4865b6d1a1ac32a1d37b904bacf2"),
}


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.mark.parametrize("case", list(PINNED), ids=lambda case: "-".join(map(str, case)))
def test_scenes_are_pinned(case):
    seed, split, index, height, width = case
    image, label = generate_scene(height, width, image_rng(seed, split, index))
    assert image.shape == (height, width, 3) and label.shape == (height, width)
    assert image.dtype == np.uint8 and label.dtype == np.uint8
    assert (sha256(image), sha256(label)) == PINNED[case]


def test_written_files_hold_the_pinned_arrays(tmp_path):
    make_synthetic(tmp_path, train=0, val=1, height=64, width=128, seed=0)
    image = cv2.imread(str(demo_image(tmp_path)), cv2.IMREAD_UNCHANGED)
    label = cv2.imread(str(tmp_path / "gtFine" / "val" / "synthmund" / "synthmund_000000_000019_gtFine_labelIds.png"),
                       cv2.IMREAD_UNCHANGED)
    assert (sha256(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)), sha256(label)) == PINNED[(0, "val", 0, 64, 128)]


def test_demo_image_is_the_first_val_image():
    assert demo_image("data/synthetic") == \
        Path("data/synthetic/leftImg8bit/val/synthmund/synthmund_000000_000019_leftImg8bit.png")


@pytest.mark.parametrize("kwargs, parameter, message", [
    ({"train": -1}, "train", "train=-1 must not be negative"),
    ({"val": -2}, "val", "val=-2 must not be negative"),
    ({"seed": -1}, "seed", "seed=-1 must not be negative"),
    ({"height": 8}, "height", "height=8 is too small"),
    ({"width": 31}, "width", "width=31 is too small"),
])
def test_bad_arguments_name_the_parameter(tmp_path, kwargs, parameter, message):
    with pytest.raises(UserError, match=message) as info:
        make_synthetic(tmp_path / "out", **{"train": 1, "val": 1, "height": 32, "width": 32, **kwargs})
    assert info.value.parameter == parameter
    assert not (tmp_path / "out").exists()


def test_out_must_be_a_folder(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(UserError, match="exists and is not a folder") as info:
        make_synthetic(path, train=1, val=0, height=32, width=32)
    assert info.value.parameter == "out" and str(info.value).startswith("out=")


@pytest.mark.parametrize("argv, flag", [(["--train", "-1"], "--train -1 must not be negative"),
                                        (["--val", "-3"], "--val -3 must not be negative"),
                                        (["--width", "16"], "--width 16 is too small")])
def test_cli_names_the_flag(tool, tmp_path, capsys, argv, flag):
    with pytest.raises(SystemExit) as info:
        tool("make_synthetic").main(["--out", str(tmp_path / "out"), *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and flag in err[0], err


def test_cli_out_not_a_folder(tool, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit):
        tool("make_synthetic").main(["--out", str(tmp_path / "file")])
    assert f"error: --out '{tmp_path / 'file'}' exists and is not a folder" in capsys.readouterr().err

