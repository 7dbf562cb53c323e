import itertools
import subprocess
import sys
import shutil

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from segkit.cli import user_message
from segkit.config import DataConfig
from segkit.data.classes import ClassTable
from segkit.benchmark.data import loader_throughput
from segkit.data.cityscapes import CityscapesDataset
from segkit.data.images import read_image
from segkit.data.layouts import build_dataset, resolve_data_root
from segkit.data.dataset import worker_init_fn
from segkit.data.labels import to_train_ids
from segkit.data.synthetic import make_synthetic
from segkit.data.transforms import train_transform
from segkit.errors import UserError


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cityscapes")
    make_synthetic(root, train=3, val=2, height=64, width=128, seed=0)
    return root


@pytest.fixture
def copy(tree, tmp_path):
    """A private copy of the tree, for tests that break it."""
    root = tmp_path / "cs"
    shutil.copytree(tree, root)
    return root


def _pair(root, split="train", index=0):
    image = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))[index]
    label = root / "gtFine" / split / image.parent.name / image.name.replace("_leftImg8bit", "_gtFine_labelIds")
    return image, label


def test_items(tree):
    ds = CityscapesDataset(tree, "train")
    assert len(ds) == 3
    item = ds[0]
    assert item["image"].shape == (3, 64, 128) and item["image"].dtype == torch.float32
    assert -1.0 <= item["image"].min() and item["image"].max() <= 1.0
    assert item["label"].shape == (64, 128) and item["label"].dtype == torch.int64
    assert set(item["label"].unique().tolist()) <= set(range(19)) | {255}
    assert item["has_label"] is True
    assert item["name"] == "synthberg_000000_000019" and item["city"] == "synthberg"
    rgb, train_ids = ds.read(0)
    assert rgb.dtype == np.uint8 and rgb.shape == (64, 128, 3) and train_ids.dtype == np.uint8
    label_ids = cv2.imread(str(_pair(tree)[1]), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(train_ids, to_train_ids(label_ids))
    np.testing.assert_array_equal(item["label"].numpy(), train_ids)


def test_test_split_without_labels(copy):
    shutil.copytree(copy / "leftImg8bit" / "val", copy / "leftImg8bit" / "test")
    ds = CityscapesDataset(copy, "test")
    item = ds[0]
    assert item["has_label"] is False and (item["label"] == 255).all()
    assert ds.read(0)[1] is None


def test_build_dataset_and_batches(tree):
    config = DataConfig(root=str(tree), crop_size=(48, 64))
    ds = build_dataset(config, "train", seed=0)
    batch = next(iter(DataLoader(ds, batch_size=2)))
    assert batch["image"].shape == (2, 3, 48, 64) and batch["label"].shape == (2, 48, 64)
    assert build_dataset(config, "val")[0]["image"].shape == (3, 64, 128)  # no geometry at evaluation


def test_color_jitter_switch(tree):
    config = DataConfig(root=str(tree), crop_size=(48, 64), scale_range=(1.0, 1.0))
    names = [type(t).__name__ for t in build_dataset(config, "train", seed=0).transform.transforms]
    assert "ColorJitter" in names
    config.color_jitter = False
    names = [type(t).__name__ for t in build_dataset(config, "train", seed=0).transform.transforms]
    assert "ColorJitter" not in names and "RandomCrop" in names


def test_resolve_data_root(monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", "/env")
    assert str(resolve_data_root("/cli", "/cfg")) == "/cli"
    assert str(resolve_data_root(None, "/cfg")) == "/cfg"
    assert str(resolve_data_root(None, "")) == "/env"
    monkeypatch.delenv("CITYSCAPES_DATASET")
    with pytest.raises(UserError, match="make_synthetic.py"):
        resolve_data_root(None, "")


# ---- bad input: one clear sentence naming the file -------------------------------------------------------------

def _one_sentence(exc_info, *needles):
    message = str(exc_info.value)
    assert "\n" not in message and message.endswith(".")
    for needle in needles:
        assert str(needle) in message
    return message


def test_missing_root(tmp_path):
    with pytest.raises(UserError) as e:
        CityscapesDataset(tmp_path / "nope", "train")
    _one_sentence(e, tmp_path / "nope", "data_root=")
    assert e.value.parameter == "data_root"  # a tool shows it as --data-root (segkit.cli)


def test_split_without_images(tree):
    with pytest.raises(UserError) as e:
        CityscapesDataset(tree, "test")
    _one_sentence(e, "leftImg8bit/test", "no images")


def test_image_without_label(copy):
    image, label = _pair(copy)
    label.unlink()
    with pytest.raises(UserError) as e:
        CityscapesDataset(copy, "train")
    _one_sentence(e, image, label)


def test_label_of_another_size(copy):
    image, label = _pair(copy)
    cv2.imwrite(str(label), np.zeros((32, 64), np.uint8))
    with pytest.raises(UserError) as e:
        CityscapesDataset(copy, "train")
    _one_sentence(e, label, image, "32x64", "64x128")


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_unreadable_png_at_construction(copy, damage):
    image, _ = _pair(copy)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a png at all")
    with pytest.raises(UserError) as e:
        CityscapesDataset(copy, "train")
    _one_sentence(e, image, "truncated" if damage == "truncate" else "not a PNG")


def test_truncated_png_inside_a_worker(copy):
    """Without the up-front checks the error comes from a DataLoader worker, still as one sentence."""
    image, _ = _pair(copy)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    ds = CityscapesDataset(copy, "train", check_files=False)
    loader = DataLoader(ds, batch_size=1, num_workers=1, worker_init_fn=worker_init_fn)
    batches = iter(loader)
    try:
        with pytest.raises(UserError) as e:
            next(batches)
    finally:
        batches._shutdown_workers()  # now, not at a later garbage collection (which waits 5 s)
    message = user_message(e.value)
    assert message == f"cannot decode image {image} (missing, truncated or not an image); re-download or regenerate it."


def test_rgba_and_grayscale_images_are_converted(copy):
    image, _ = _pair(copy)
    rgb = read_image(image)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(image), np.dstack([bgr, np.full(rgb.shape[:2], 7, np.uint8)]))  # RGBA: alpha dropped
    np.testing.assert_array_equal(read_image(image), rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cv2.imwrite(str(image), gray)  # grayscale: repeated to 3 channels
    out = read_image(image)
    assert out.shape == rgb.shape and (out == gray[..., None]).all()
    assert CityscapesDataset(copy, "train")[0]["image"].shape == (3, 64, 128)


def test_16bit_image_is_an_error(copy):
    image, _ = _pair(copy)
    cv2.imwrite(str(image), read_image(image).astype(np.uint16) * 257)
    with pytest.raises(UserError) as e:
        CityscapesDataset(copy, "train")
    _one_sentence(e, image, "16 bits")
    with pytest.raises(UserError, match="16 bits"):
        read_image(image)


def test_colour_label_is_an_error(copy):
    _, label = _pair(copy)
    cv2.imwrite(str(label), np.zeros((64, 128, 3), np.uint8))
    with pytest.raises(UserError) as e:
        CityscapesDataset(copy, "train")
    _one_sentence(e, label, "single-channel")


def test_label_values_outside_the_table_are_ignored(copy):
    _, label = _pair(copy)
    values = np.full((64, 128), 7, np.uint8)  # road
    values[:, :40] = 200  # not a Cityscapes id
    cv2.imwrite(str(label), values)
    train_ids = CityscapesDataset(copy, "train").read(0)[1]
    assert (train_ids[:, :40] == 255).all() and (train_ids[:, 40:] == 0).all()
    values16 = values.astype(np.uint16)
    values16[:, 40:80] = 7 + 256  # 16-bit label: must not wrap around to road
    cv2.imwrite(str(label), values16)
    train_ids = CityscapesDataset(copy, "train").read(0)[1]
    assert (train_ids[:, :80] == 255).all() and (train_ids[:, 80:] == 0).all()


# ---- loading ----------------------------------------------------------------------------------------------------

def test_workers_get_distinct_augmentations(tree):
    """Albumentations keeps its generator in the Compose: without re-seeding, forked workers would agree."""
    ds = CityscapesDataset(tree, "train", transform=train_transform(DataConfig(crop_size=(48, 48)), seed=0))
    loader = DataLoader(Subset(ds, [0, 0, 0, 0]), batch_size=1, num_workers=2, worker_init_fn=worker_init_fn)
    images = [batch["image"] for batch in loader]
    assert not torch.equal(images[0], images[1])  # one from each worker


def test_loader_throughput_counts_samples_after_the_first_batch(tree, monkeypatch):
    # A clock that advances 0.1 s per reading: one reading per batch of one sample, so 10 samples/s exactly
    # if the untimed first batch (worker start-up) is left out, more if it were counted.
    import segkit.benchmark.data as benchmark_data

    ticks = iter(range(10_000))
    monkeypatch.setattr(benchmark_data.time, "perf_counter", lambda: 0.1 * next(ticks))
    rate = loader_throughput(DataConfig(crop_size=(48, 64)), tree, batch_size=1, workers=0, seconds=1.0)
    assert rate == pytest.approx(10.0)


def test_train_ids_in_label_ids_files_are_pointed_out_once(copy, capsys):
    # trainIds saved as *_labelIds.png were remapped silently: trainId 7 (traffic sign) became labelId 7 (road)
    CityscapesDataset(copy, "train")
    assert "warning" not in capsys.readouterr().err  # real labelIds: no false alarm
    label_paths = sorted((copy / "gtFine" / "train").glob("*/*_gtFine_labelIds.png"))
    for path in label_paths[1:]:
        cv2.imwrite(str(path), to_train_ids(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)))
    CityscapesDataset(copy, "train")
    err = capsys.readouterr().err
    hint = [line for line in err.splitlines() if "as trainIds do" in line]
    assert len(hint) == 1 and str(label_paths[1]) in hint[0] and "_gtFine_labelTrainIds.png" in hint[0]


# ---- coarse annotations --------------------------------------------------------------------------------------

def test_coarse_split_and_fine_plus_coarse_mix(copy):
    """train_extra has only gtCoarse (as in Cityscapes); "train+train_extra" shuffles fine and coarse together."""
    from segkit.engine.stream import TrainStream

    for image in sorted((copy / "leftImg8bit" / "train").glob("*/*.png")):
        extra = copy / "leftImg8bit" / "train_extra" / image.parent.name / image.name.replace("_000019_", "_000099_")
        extra.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, extra)
        label = cv2.imread(str(_pair(copy, index=0)[1]), cv2.IMREAD_UNCHANGED)
        label[:, ::2] = 0  # coarse: large unlabelled areas
        coarse = copy / "gtCoarse" / "train_extra" / image.parent.name / extra.name.replace(
            "_leftImg8bit", "_gtCoarse_labelIds")
        coarse.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(coarse), label)
    extra = CityscapesDataset(copy, "train_extra")
    assert len(extra) == 3 and all("gtCoarse" in str(s.label_path) for s in extra.samples)
    assert (extra.read(0)[1][:, ::2] == 255).all()
    mixed = build_dataset(DataConfig(root=str(copy), crop_size=(33, 33), train_split="train+train_extra"),
                          "train+train_extra", seed=0)
    assert len(mixed) == 6
    drawn = [mixed.samples[index].label_path.parts[-4] for index, _ in
             itertools.islice(iter(TrainStream(len(mixed), seed=0)), 4)]
    assert {"gtFine", "gtCoarse"} <= set(drawn), drawn
    with pytest.raises(UserError, match="has no label .*gtCoarse"):
        next(iter((copy / "gtCoarse" / "train_extra").rglob("*.png"))).unlink()
        CityscapesDataset(copy, "train_extra")


# ---- issue 24: labelIds are the truth, unknown values said once ------------------------------------------------

PARKING = ClassTable.from_dict({"ignore": [0], "classes": [
    {"name": "road", "color": [128, 64, 128], "values": [7]},
    {"name": "parking", "color": [250, 170, 160], "values": [9]},
    {"name": "car", "color": [0, 0, 142], "values": [26]}]}, "parking.yaml")


def _scene_of(label_path, values):
    """A labelIds file of the given values in bands, and the trainIds file cityscapesscripts writes beside it."""
    label_ids = np.repeat(np.array(values, np.uint8), 128 // len(values) + 1)[None, :128].repeat(64, axis=0)
    cv2.imwrite(str(label_path), label_ids)
    cv2.imwrite(str(label_path).replace("_labelIds", "_labelTrainIds"), to_train_ids(label_ids))
    return label_ids


def test_label_ids_are_read_where_train_ids_lie_beside_them(copy, capsys):
    # parking (labelId 9) has no trainId: read through *_labelTrainIds.png it became ignore
    for index in range(3):
        _scene_of(_pair(copy, index=index)[1], [7, 9, 26])
    classes = CityscapesDataset(copy, "train", table=PARKING).read(0)[1]
    assert set(np.unique(classes).tolist()) == {0, 1, 2}
    assert "warning" not in capsys.readouterr().err


def test_train_ids_alone_serve_cityscapes_classes_only(copy):
    for index in range(3):
        label = _pair(copy, index=index)[1]
        label_ids = _scene_of(label, [7, 8, 26])
        label.unlink()
    np.testing.assert_array_equal(CityscapesDataset(copy, "train").read(0)[1], to_train_ids(label_ids))
    with pytest.raises(UserError) as error:
        CityscapesDataset(copy, "train", table=PARKING)
    assert "\n" not in str(error.value) and "_gtFine_labelIds.png" in str(error.value)


def test_unknown_label_values_are_counted_and_said_once(copy, capsys):
    for index in range(3):
        _scene_of(_pair(copy, index=index)[1], [7, 8, 26])  # sidewalk (8): not in the table, not ignored
    CityscapesDataset(copy, "train", table=PARKING)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "3 of 3 masks" in err and "8:" in err and "ignored" in err, err
    with pytest.raises(UserError) as error:
        CityscapesDataset(copy, "train", table=PARKING, unknown_values="error")
    assert "\n" not in str(error.value) and "data.unknown_values=ignore" in str(error.value)


def test_an_evaluation_data_set_is_the_images_as_they_are_and_needs_no_albumentations(tree):
    # albumentations (0.8 s to import) only where a training pipeline is built
    code = ("import sys; from segkit.config import DataConfig; from segkit.data.layouts import build_dataset; "
            f"ds = build_dataset(DataConfig(root={str(tree)!r}), 'val'); item = ds[0]; "
            "assert ds.transform is None and tuple(item['image'].shape) == (3, 64, 128); "
            "print('albumentations' in sys.modules, 'matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.split() == ["False", "False"], result.stderr[-1000:]
