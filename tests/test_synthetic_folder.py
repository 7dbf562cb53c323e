"""The synthetic city in the folder layout: photos paired with masks, the class table file, the merged labels,
and the tool's --layout/--classes flags."""
import cv2
import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as cs_labels
from cityscapesscripts.helpers.labels import name2label

from segkit.data.classes import ClassTable
from segkit.data.synthetic import generate_scene, image_rng, make_synthetic_folder, sample_name
from segkit.data.synthetic.folder import TABLE_FILE, folder_table, merged_values
from segkit.errors import UserError

SIZE = dict(train=3, val=2, height=64, width=128, seed=0)
MERGED_NAMES = ("road", "sidewalk", "building", "vegetation", "sky", "vehicle", "person")
MEMBERS = {"road": ("road", "parking"), "sidewalk": ("sidewalk",), "building": ("building", "wall", "fence"),
           "vegetation": ("vegetation", "terrain"), "sky": ("sky",),
           "vehicle": ("car", "truck", "bus", "train", "motorcycle", "bicycle", "caravan", "trailer"),
           "person": ("person", "rider")}


@pytest.fixture(scope="module", params=[7, 19])
def folder_set(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"folder{request.param}")
    times = make_synthetic_folder(root, classes=request.param, **SIZE)
    return root, request.param, times


def relative_stems(root, kind):
    return {p.relative_to(root / kind).with_suffix("") for p in (root / kind).rglob("*") if p.is_file()}


def test_photos_and_masks_pair_up(folder_set):
    root, _, times = folder_set
    assert {split: len(t) for split, t in times.items()} == {"train": 3, "val": 2}
    photos = sorted((root / "images").rglob("*.jpg"))
    assert len(photos) == 5 and relative_stems(root, "images") == relative_stems(root, "masks")
    assert {p.relative_to(root / "images").parts[0] for p in photos} == {"train", "val"}
    assert not list((root / "masks").rglob("*.jpg")) and not list((root / "images").rglob("*.png"))
    for photo in photos:
        rgb = cv2.imread(str(photo), cv2.IMREAD_UNCHANGED)
        assert rgb is not None and rgb.dtype == np.uint8 and rgb.shape == (64, 128, 3)


def test_masks_hold_only_table_values(folder_set):
    root, classes, _ = folder_set
    table = ClassTable.load(root / TABLE_FILE)
    allowed = {v for values in table.values for v in values} | set(table.ignore)
    seen = set()
    for path in (root / "masks").rglob("*.png"):
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert mask.dtype == np.uint8 and mask.shape == (64, 128)
        seen |= set(np.unique(mask).tolist())
    assert seen <= allowed, sorted(seen - allowed)
    if classes == 7:
        assert seen <= set(range(8)) | {255} and {1, 5} <= seen  # road and sky in every street


def test_seven_class_table(tmp_path):
    make_synthetic_folder(tmp_path, classes=7, **SIZE)
    table = ClassTable.load(tmp_path / TABLE_FILE)
    assert table.names == MERGED_NAMES
    assert table.values == tuple((i,) for i in range(1, 8)) and table.ignore == (0, 255)
    assert table.colors == ((128, 64, 128), (244, 35, 232), (70, 70, 70), (107, 142, 35), (70, 130, 180),
                            (0, 0, 142), (220, 20, 60))
    assert (table.names, table.colors, table.values, table.ignore) == (
        folder_table(7).names, folder_table(7).colors, folder_table(7).values, folder_table(7).ignore)
    text = (tmp_path / TABLE_FILE).read_text()
    assert "  - {name: road, color: [128, 64, 128], values: [1]}\n" in text  # one class per line


def test_nineteen_class_table_is_cityscapes(tmp_path):
    make_synthetic_folder(tmp_path, train=1, val=0, height=32, width=64, classes=19)
    table, cityscapes = ClassTable.load(tmp_path / TABLE_FILE), ClassTable.cityscapes()
    assert (table.names, table.values, table.colors, table.ignore, table.categories) == (
        cityscapes.names, cityscapes.values, cityscapes.colors, cityscapes.ignore, cityscapes.categories)
    unused = {lab.id for lab in cs_labels if 0 <= lab.id < 256 and lab.trainId in (255, -1)}
    assert set(table.ignore) == unused


def test_merged_mapping_from_cityscapes_names():
    lookup = merged_values()
    expected = np.zeros(256, np.uint8)
    for value, name in enumerate(MERGED_NAMES, 1):
        for member in MEMBERS[name]:
            expected[name2label[member].id] = value
    np.testing.assert_array_equal(lookup, expected)


@pytest.mark.parametrize("split,index", [("train", 0), ("train", 2), ("val", 1)])
def test_mask_is_the_scene_through_the_table(folder_set, split, index):
    """7 classes: the Cityscapes labelIds merged; 19: the labelIds themselves."""
    root, classes, _ = folder_set
    image, label = generate_scene(64, 128, image_rng(0, split, index))
    city, name = sample_name(split, index)
    photo = root / "images" / split / city / f"{name}.jpg"
    mask = cv2.imread(str(root / "masks" / split / city / f"{name}.png"), cv2.IMREAD_UNCHANGED)
    expected = merged_values()[label] if classes == 7 else label
    np.testing.assert_array_equal(mask, expected)
    decoded = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
    assert np.abs(decoded.astype(int) - image).mean() < 12  # the same scene, through JPEG


@pytest.mark.parametrize("classes", [0, 5, 20])
def test_other_class_counts_are_refused(tmp_path, classes):
    with pytest.raises(UserError, match=rf"^classes={classes} is not offered; choose 7") as error:
        make_synthetic_folder(tmp_path / "out", classes=classes, **SIZE)
    assert error.value.parameter == "classes" and not (tmp_path / "out").exists()


def test_sizes_checked_like_cityscapes_layout(tmp_path):
    with pytest.raises(UserError, match="height=8 is too small"):
        make_synthetic_folder(tmp_path / "out", height=8)
    with pytest.raises(UserError, match="train=-1 must not be negative"):
        make_synthetic_folder(tmp_path / "out", train=-1)
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="exists and is not a folder"):
        make_synthetic_folder(tmp_path / "file", train=1, val=0, height=32, width=64)
    assert not (tmp_path / "out").exists()


def test_cli_folder_layout(tool, tmp_path, capsys):
    out = tmp_path / "syn"
    tool("make_synthetic").main(["--layout", "folder", "--out", str(out), "--train", "2", "--val", "1",
                                 "--height", "40", "--width", "80"])
    assert len(list(out.glob("images/*/*/*.jpg"))) == 3 and len(list(out.glob("masks/*/*/*.png"))) == 3
    assert ClassTable.load(out / TABLE_FILE).names == MERGED_NAMES  # 7 by default
    printed = capsys.readouterr().out
    assert f"class table: {out}/{TABLE_FILE}" in printed and "--set data.layout=folder" in printed


def test_cli_nineteen_classes(tool, tmp_path):
    out = tmp_path / "syn"
    tool("make_synthetic").main(["--layout", "folder", "--classes", "19", "--out", str(out), "--train", "1",
                                 "--val", "0", "--height", "32", "--width", "64"])
    assert ClassTable.load(out / TABLE_FILE).names == ClassTable.cityscapes().names


def test_cli_cityscapes_layout_unchanged(tool, tmp_path, capsys):
    out = tmp_path / "syn"
    tool("make_synthetic").main(["--out", str(out), "--train", "1", "--val", "0", "--height", "32", "--width", "64",
                                 "--classes", "19"])
    assert len(list(out.glob("leftImg8bit/*/*/*.png"))) == 1 and not (out / TABLE_FILE).exists()
    assert "class table" not in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--layout", "folder", "--classes", "5"], ["--classes", "5"],
                                  ["--classes", "7"], ["--layout", "cityscapes", "--classes", "7"]])
def test_cli_bad_classes(tool, tmp_path, capsys, argv):
    out = tmp_path / "syn"
    with pytest.raises(SystemExit) as exit_:
        tool("make_synthetic").main(argv + ["--out", str(out), "--train", "1", "--val", "0", "--height", "32",
                                            "--width", "64"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert "--classes" in err or "classes=5" in err
    assert not out.exists()
