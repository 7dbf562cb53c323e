"""segkit.data.folder: images/ beside masks/ paired by relative path and stem, masks read through the class table
(values, palette PNGs, RGB colours), and each bad input -- an image without a mask and the reverse, values the
table does not know, a mask of another size -- said in one line."""
import cv2
import numpy as np
import pytest
from PIL import Image

from segkit.config import DataConfig
from segkit.data.classes import ClassTable
from segkit.data.layouts import build_dataset
from segkit.data.folder import FolderDataset
from segkit.errors import UserError

TABLE = ClassTable.from_dict({"ignore": [0, 255], "classes": [
    {"name": "road", "color": [128, 64, 128], "values": [1]},
    {"name": "sky", "color": [70, 130, 180], "values": [2]},
    {"name": "car", "color": [0, 0, 142], "values": [3, 4]}]}, "three.yaml")
H, W = 40, 64


def mask_values(seed):
    rng = np.random.default_rng(seed)
    return rng.choice(np.array([0, 1, 2, 3, 4], np.uint8), size=(H, W))


@pytest.fixture
def folder(tmp_path):
    """Three training pairs (one in a sub-folder, one a PNG photo) and one val pair."""
    root = tmp_path / "mine"
    for split, names in (("train", ["a", "day/b", "c"]), ("val", ["v"])):
        for index, name in enumerate(names):
            image = root / "images" / split / (name + (".png" if name == "c" else ".jpg"))
            mask = root / "masks" / split / f"{name}.png"
            image.parent.mkdir(parents=True, exist_ok=True)
            mask.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(image), np.full((H, W, 3), 30 * index, np.uint8))
            cv2.imwrite(str(mask), mask_values(index))
    return root


def test_pairs_by_relative_path_and_reads_through_the_table(folder):
    dataset = FolderDataset(folder, "train", TABLE)
    assert [(s.city, s.name, s.save_as) for s in dataset.samples] == [
        ("", "a", "a.png"), ("", "c", "c.png"), ("day", "b", "day/b.png")]
    image, label = dataset.read(0)
    assert image.shape == (H, W, 3)
    expected = np.array([255, 0, 1, 2, 2], np.uint8)[mask_values(0)]
    np.testing.assert_array_equal(label, expected)
    item = dataset[2]
    assert item["label"].shape == (H, W) and item["save_as"] == "day/b.png"
    assert len(FolderDataset(folder, "train+val", TABLE)) == 4


def test_palette_and_colour_masks_are_read_through_the_table(folder):
    mask_path = folder / "masks" / "train" / "a.png"
    values = mask_values(0)
    palette = Image.fromarray(values, mode="P")
    palette.putpalette([255, 0, 0] * 256)
    palette.save(mask_path)
    expected = np.array([255, 0, 1, 2, 2], np.uint8)[values]
    np.testing.assert_array_equal(FolderDataset(folder, "train", TABLE).read(0)[1], expected)
    rgb = TABLE.palette()[expected]  # ignore is black, a colour the table does not know
    cv2.imwrite(str(mask_path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(FolderDataset(folder, "train", TABLE).read(0)[1], expected)


def test_unknown_values_are_counted_once_and_ignored_or_refused(folder, capsys):
    mask_path = folder / "masks" / "train" / "c.png"
    values = mask_values(1)
    values[:2, :5] = 9  # 10 pixels of a value the table does not know
    cv2.imwrite(str(mask_path), values)
    dataset = FolderDataset(folder, "train", TABLE)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 of 3 masks" in err and f"{mask_path}: 9: 10 px" in err and "ignored" in err
    assert (dataset.read(1)[1][:2, :5] == 255).all()
    with pytest.raises(UserError) as error:
        FolderDataset(folder, "train", TABLE, unknown_values="error")
    assert "\n" not in str(error.value) and "data.unknown_values=ignore" in str(error.value)


@pytest.mark.parametrize("damage, words", [
    ("no mask", ["1 image(s) of split 'train' have no mask", "a.png"]),
    ("no image", ["1 mask(s) of split 'train' have no image", "a.png"]),
    ("mask size", ["is 20x64 but its image", "make the mask at the image's size"]),
    ("no images", ["no images", "images/train"]),
])
def test_bad_inputs_are_one_line(folder, damage, words):
    if damage == "no mask":
        (folder / "masks" / "train" / "a.png").unlink()
    elif damage == "no image":
        (folder / "images" / "train" / "a.jpg").unlink()
    elif damage == "mask size":
        cv2.imwrite(str(folder / "masks" / "train" / "a.png"), np.zeros((20, W), np.uint8))
    else:
        for path in (folder / "images" / "train").rglob("*.*"):
            path.unlink()
    with pytest.raises(UserError) as error:
        FolderDataset(folder, "train", TABLE)
    message = str(error.value)
    assert "\n" not in message and all(word in message for word in words), message


def test_build_dataset_follows_the_config(folder, tmp_path):
    table_file = tmp_path / "three.json"
    table_file.write_text(__import__("json").dumps(TABLE.to_dict()))
    config = DataConfig(root=str(folder), layout="folder", classes=str(table_file), crop_size=(33, 33),
                        scale_range=(1.0, 1.0))
    train = build_dataset(config, "train", seed=0)
    assert isinstance(train, FolderDataset) and train.table.names == TABLE.names
    assert train[0]["label"].shape == (33, 33)
    assert build_dataset(config, "val")[0]["image"].shape == (3, H, W)


# ---- issue 24: masks by their PNG mode, photos upright, a split without masks ----------------------------------

def _write_mask(path, values, mode):
    """``values`` (0..4) saved in PNG ``mode``, as annotation tools write them."""
    if mode == "1-bit":
        Image.fromarray(values.astype(bool)).save(path)
    elif mode in ("2-bit", "4-bit"):
        Image.fromarray(values).save(path, bits=int(mode[0]))
    elif mode == "palette":
        palette = Image.fromarray(values).convert("P")
        palette.putpalette([9, 9, 9] * 256)
        palette.save(path)
    elif mode == "gray":
        cv2.imwrite(str(path), values)
    elif mode == "gray+alpha":
        Image.fromarray(np.dstack([values, np.full_like(values, 255)])).save(path)
    elif mode == "16-bit":
        cv2.imwrite(str(path), values.astype(np.uint16))
    else:  # RGB colours of the table
        rgb = TABLE.palette()[np.array([255, 0, 1, 2, 2], np.uint8)[values]]
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


@pytest.mark.parametrize("mode", ["1-bit", "2-bit", "4-bit", "palette", "gray", "gray+alpha", "16-bit", "RGB"])
def test_masks_are_read_by_their_png_mode(folder, mode):
    # OpenCV expands a 1-bit mask to 0/255 (class 1 became ignore) and read gray + alpha as colours
    values = mask_values(0)
    if mode == "1-bit":
        values = (values == 1).astype(np.uint8)  # background 0 (ignored) and road 1
    elif mode == "2-bit":
        values = np.minimum(values, 3)
    path = folder / "masks" / "train" / "a.png"
    _write_mask(path, values, mode)
    expected = np.array([255, 0, 1, 2, 2], np.uint8)[values]
    if mode == "RGB":
        expected[values == 0] = 255
    label = FolderDataset(folder, "train", TABLE).read(0)[1]
    np.testing.assert_array_equal(label, expected)


def test_photos_are_upright_on_every_path_and_masks_drawn_on_them(folder):
    # A phone photo stored landscape with EXIF orientation 6 (shown turned a quarter clockwise): its mask is drawn
    # on the upright (portrait) photo. The data set once read the photo as stored and refused the mask's size.
    from segkit.deploy.photos import load_photo

    stored = np.zeros((H, W, 3), np.uint8)
    stored[:, : W // 2] = 200
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = folder / "images" / "train" / "a.jpg"
    Image.fromarray(stored).save(photo, exif=exif, quality=95)
    cv2.imwrite(str(folder / "masks" / "train" / "a.png"), mask_values(0).T.copy())  # W x H: the upright size
    image, label = FolderDataset(folder, "train", TABLE).read(0)
    assert image.shape == (W, H, 3) and label.shape == (W, H)
    np.testing.assert_array_equal(image, load_photo(photo))


@pytest.mark.parametrize("masks", ["missing", "misspelt"])
def test_a_split_without_masks_is_one_line_before_any_work(folder, masks, tmp_path):
    # images/val without masks/val was taken for an unlabelled split: training ran until its first validation
    if masks == "misspelt":
        (folder / "masks" / "val").rename(folder / "masks" / "Val")
    else:
        for path in (folder / "masks" / "val").iterdir():
            path.unlink()
        (folder / "masks" / "val").rmdir()
    config = DataConfig(root=str(folder), layout="folder", crop_size=(33, 33))
    with pytest.raises(UserError) as error:
        build_dataset(config, "val", table=TABLE)
    message = str(error.value)
    assert "\n" not in message and "masks/val" in message, message
