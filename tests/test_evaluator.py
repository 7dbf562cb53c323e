"""segkit.engine.evaluator against the official Cityscapes tools, on a tree rasterised by json2labelImg."""
import json
import math
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from cityscapesscripts.preparation.json2labelImg import json2labelImg
from segkit.data.cityscapes import CityscapesDataset
from segkit.data.labels import CLASS_NAMES, LABEL_TO_TRAIN, NUM_CLASSES, TRAIN_TO_LABEL
from segkit.engine.evaluator import EvalResult, WorstImage, WorstImages, evaluate, save_prediction
from segkit.engine.reports import format_table, official_evaluation, results_to_json, save_confusion_png
from segkit.errors import UserError
from segkit.inference import TTA, SlidingWindow, model_labels

H, W = 64, 128
VOID_VALUE = 250  # grey level of void pixels in the synthetic images


def polygons(rng):
    """A street-like scene: many classes, void labels (out of roi, ego vehicle, unlabeled background)."""
    dx, dy = (int(v) for v in rng.integers(-6, 7, size=2))

    def box(x0, y0, x1, y1):
        return [[x0 + dx, y0 + dy], [x1 + dx, y0 + dy], [x1 + dx, y1 + dy], [x0 + dx, y1 + dy]]

    return [
        ("sky", [[0, 0], [W, 0], [W, 24], [0, 24]]),
        ("building", box(-10, 0, 50, 34)),
        ("vegetation", [[70 + dx, 5], [110 + dx, 2], [120 + dx, 30], [80 + dx, 32]]),
        ("road", [[0, 40], [W, 40], [W, H], [0, H]]),
        ("sidewalk", [[0, 34], [40 + dx, 34], [20 + dx, 46], [0, 50]]),
        ("terrain", box(90, 32, 128, 42)),
        ("pole", box(60, 4, 62, 40)),
        ("traffic sign", box(56, 4, 66, 10)),
        ("car", [[30 + dx, 36], [58 + dx, 34], [62 + dx, 50], [28 + dx, 52]]),
        ("person", box(84, 22, 90, 46)),
        ("bicycle", box(100, 36, 112, 46)),
        ("parking", box(64, 44, 80, 52)),  # void in evaluation
        ("out of roi", [[0, 58], [W, 58], [W, H], [0, H]]),
        ("ego vehicle", [[20, H], [108, H], [96, 56], [32, 56]]),
    ]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """ROOT/{leftImg8bit,gtFine}/val/CITY/...: labelIds from polygon JSONs by the official json2labelImg, and
    grey images that encode each pixel's trainId (10 * trainId + 5; void = 250) for the decoding fake model."""
    root = tmp_path_factory.mktemp("cityscapes")
    rng = np.random.default_rng(0)
    for city, seq in (("aachen", 0), ("aachen", 1), ("bremen", 0)):
        name = f"{city}_{seq:06d}_000019"
        gt_dir, image_dir = root / "gtFine" / "val" / city, root / "leftImg8bit" / "val" / city
        gt_dir.mkdir(parents=True, exist_ok=True), image_dir.mkdir(parents=True, exist_ok=True)
        annotation = {"imgHeight": H, "imgWidth": W,
                      "objects": [{"label": label, "polygon": poly} for label, poly in polygons(rng)]}
        json_path = gt_dir / f"{name}_gtFine_polygons.json"
        json_path.write_text(json.dumps(annotation))
        json2labelImg(str(json_path), str(gt_dir / f"{name}_gtFine_labelIds.png"), "ids")
        train_ids = LABEL_TO_TRAIN[np.asarray(Image.open(gt_dir / f"{name}_gtFine_labelIds.png"))]
        grey = np.where(train_ids < NUM_CLASSES, 10 * train_ids.astype(np.int32) + 5, VOID_VALUE).astype(np.uint8)
        Image.fromarray(np.repeat(grey[:, :, None], 3, axis=2)).save(image_dir / f"{name}_leftImg8bit.png")
    return root


class DecodingModel(nn.Module):
    """Reads the class back from the grey level (tf normalisation: x / 127.5 - 1) and corrupts a fixed pattern of
    pixels; at half resolution the area-averaged borders decode to wrong classes too. Deterministic, imperfect."""

    def __init__(self, corrupt=True):
        super().__init__()
        self.corrupt = corrupt
        self.register_buffer("scale", torch.tensor(5.0))

    def forward(self, x):
        grey = (x[:, 0] + 1) * 127.5
        classes = (grey / 10).floor().long()
        classes = torch.where(classes < NUM_CLASSES, classes, 0).clamp(min=0)
        rows = torch.arange(x.shape[-2]).view(-1, 1)
        cols = torch.arange(x.shape[-1]).view(1, -1)
        corrupt = ((rows * 7 + cols * 3) % 11 == 0) & self.corrupt
        classes = torch.where(corrupt, (classes + 1) % NUM_CLASSES, classes)
        return F.one_hot(classes, NUM_CLASSES).permute(0, 3, 1, 2).float() * self.scale


class Recorder(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.shapes, self.modes = model, [], []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        self.modes.append(self.training)
        return self.model(x)


def run(model, root, split="val", tta=TTA(), sliding_window=None, **kwargs):
    """The evaluator on a model's reference prediction, as tools/eval.py and the trainer call it."""
    kwargs.setdefault("workers", 0)
    predict = model_labels(model.eval(), tta, sliding_window)
    return evaluate(predict, CityscapesDataset(root, split), progress=False, **kwargs)


def assert_equal_to_official(result: EvalResult, report: dict):
    scores = result.scores
    for train_id, name in enumerate(CLASS_NAMES):
        theirs, ours = report["classScores"][name], scores.iou[train_id]
        assert (math.isnan(theirs) and math.isnan(ours)) or abs(theirs - ours) < 1e-6, name
    assert abs(report["averageScoreClasses"] - scores.miou) < 1e-6
    for name, value in scores.category_iou.items():
        assert abs(report["categoryScores"][name] - value) < 1e-6, name
    assert abs(report["averageScoreCategories"] - scores.category_miou) < 1e-6


def test_miou_equals_official_evaluator_at_both_resolutions(tree, tmp_path):
    results = run(DecodingModel(), tree, resolutions=("full", "half"), save_dir=tmp_path / "pred")
    assert list(results) == ["full", "half"]
    for resolution, result in results.items():
        assert result.images == 3 and result.ms_per_image > 0
        assert 0.3 < result.scores.miou < 0.99  # imperfect, but far from chance
        report = official_evaluation(tmp_path / "pred" / resolution, tree, "val",
                                     export_file=tmp_path / f"official_{resolution}.json")
        assert_equal_to_official(result, report)
        assert (tmp_path / f"official_{resolution}.json").is_file()
    assert results["half"].scores.miou < results["full"].scores.miou  # half blurs the class borders
    assert not (tree / "evaluationResults").exists()  # nothing written into the dataset
    # the saved files: official names, single-channel labelIds at the ground truth's size
    saved = sorted(p.relative_to(tmp_path / "pred").as_posix() for p in (tmp_path / "pred").rglob("*.png"))
    names = ("aachen/aachen_000000_000019", "aachen/aachen_000001_000019", "bremen/bremen_000000_000019")
    assert saved == sorted(f"{r}/{n}_leftImg8bit.png" for r in ("full", "half") for n in names)
    png = Image.open(tmp_path / "pred" / "half" / "aachen" / "aachen_000000_000019_leftImg8bit.png")
    assert png.mode == "L" and png.size == (W, H)
    assert set(np.unique(np.asarray(png))) <= set(TRAIN_TO_LABEL[:NUM_CLASSES].tolist())  # labelIds, not trainIds


def test_half_resolution_runs_network_at_half_size_and_scores_at_full_size(tree, tmp_path):
    model = Recorder(DecodingModel())
    results = run(model, tree, resolutions=("full", "half"))
    assert model.shapes == [(1, 3, H, W), (1, 3, H // 2, W // 2)] * 3
    dataset = CityscapesDataset(tree, "val")
    evaluated = sum(int((dataset.read(i)[1] != 255).sum()) for i in range(len(dataset)))
    for result in results.values():
        assert int(result.confusion.mat.sum()) == evaluated  # every labelled full-size pixel, once


def test_any_callable_is_scored_against_the_full_size_labels(tree):
    # the evaluator knows nothing of models: a callable (images, resolution) -> labels, here the ground truth
    dataset = CityscapesDataset(tree, "val")
    truth = {round(dataset[i]["image"].sum().item(), 2): dataset[i]["label"] for i in range(len(dataset))}
    seen = []

    def oracle(images, resolution):  # knows each image's ground truth
        seen.append(resolution)
        return truth[round(images.sum().item(), 2)][None]

    results = evaluate(oracle, dataset, resolutions=("full", "half"), progress=False, workers=0)
    assert seen == ["full", "half"] * 3
    for result in results.values():
        present = ~torch.isnan(torch.as_tensor(result.scores.iou))
        assert result.scores.miou == 1.0 and present.sum() > 5


def own_iou(truth: np.ndarray, prediction: np.ndarray) -> list[float]:
    """An image's IoU per class, by hand: NaN for a class neither in its labelled ground truth nor predicted there."""
    labelled = truth != 255
    truth, prediction = truth[labelled], prediction[labelled]
    ious = []
    for c in range(NUM_CLASSES):
        union = np.sum((truth == c) | (prediction == c))
        ious.append(np.sum((truth == c) & (prediction == c)) / union if union else math.nan)
    return ious


def test_each_image_keeps_its_own_scores_and_the_worst_their_predictions(tree):
    results = run(DecodingModel(), tree, resolutions=("full", "half"), worst=2)
    dataset = CityscapesDataset(tree, "val")
    predict = model_labels(DecodingModel().eval())
    for resolution, result in results.items():
        per = result.per_image
        assert per.index == [0, 1, 2]
        assert per.names == ["aachen/aachen_000000_000019", "aachen/aachen_000001_000019",
                             "bremen/bremen_000000_000019"]
        predictions = []
        for i in range(3):
            item = dataset[i]
            predictions.append(predict(item["image"][None], resolution)[0].numpy())
            expected = own_iou(item["label"].numpy(), predictions[-1])
            np.testing.assert_allclose(per.iou[i], expected, equal_nan=True)
            assert per.miou[i] == pytest.approx(np.nanmean(expected))
        assert len(set(per.miou)) == 3  # the images differ, so "worst" means something
        lowest = sorted(range(3), key=lambda i: (per.miou[i], i))[:2]
        assert [w.index for w in per.worst] == lowest
        assert [w.miou for w in per.worst] == [per.miou[i] for i in lowest]
        for item in per.worst:
            assert item.prediction.dtype == np.uint8 and np.array_equal(item.prediction, predictions[item.index])
    assert run(DecodingModel(), tree, resolutions=("half",))["half"].per_image.worst == []  # none kept unless asked


def test_worst_images_are_bounded_and_ties_go_to_the_earlier_image():
    worst = WorstImages(2)
    for index, miou in enumerate([0.5, math.nan, 0.2, 0.9, 0.2, 0.1]):
        if worst.wants(miou, index):
            worst.add(WorstImage(index, f"image{index}", miou, np.zeros((1, 1), np.uint8)))
    assert [(w.index, w.miou) for w in worst.items] == [(5, 0.1), (2, 0.2)]
    assert not WorstImages(0).wants(0.0, 0)


def test_test_split_saves_predictions_without_scores(tree, tmp_path):
    for path in (tree / "leftImg8bit" / "val").rglob("*.png"):  # a test split: images only
        target = tree / "leftImg8bit" / "test" / path.relative_to(tree / "leftImg8bit" / "val")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    results = run(DecodingModel(), tree, split="test", save_dir=tmp_path / "sub")
    for result in results.values():
        assert result.scores is None and result.confusion is None and result.per_image is None
        assert result.images == 3
        assert list(result.to_dict()) == ["ms_per_image"]
    assert len(list((tmp_path / "sub").rglob("*_leftImg8bit.png"))) == 6
    assert "no labels" in format_table(results)


def test_tta_goes_through_predict_scores(tree):
    flip_scale = TTA.parse("flip,0.5,1.0")
    plain, tta = run(DecodingModel(), tree, resolutions=("full",)), run(DecodingModel(), tree, resolutions=("full",),
                                                                          tta=flip_scale)
    assert plain["full"].scores.miou != tta["full"].scores.miou  # the corruption pattern is not flip-invariant
    model = Recorder(DecodingModel())
    run(model, tree, resolutions=("half",), tta=flip_scale)
    assert [s[-2:] for s in model.shapes[:4]] == [(16, 32), (16, 32), (32, 64), (32, 64)]


def test_sliding_window_in_evaluate(tree):
    pointwise = DecodingModel(corrupt=False)  # the corruption pattern would follow each tile's coordinates
    for resolution in ("full", "half"):
        whole = run(pointwise, tree, resolutions=(resolution,))[resolution]
        tiled = run(pointwise, tree, resolutions=(resolution,), sliding_window=SlidingWindow((24, 40), 0.5))[resolution]
        assert torch.equal(tiled.confusion.mat, whole.confusion.mat)
        assert (tiled.scores.miou == 1.0) == (resolution == "full")  # exact decoder; half blurs the borders


def test_table_json_and_confusion_png(tree, tmp_path):
    results = run(DecodingModel(), tree)
    table = format_table(results, official={"full": results["full"].scores.miou, "half": 0.5})
    lines = table.splitlines()
    assert lines[0].split() == ["class", "full", "half"]
    for name in CLASS_NAMES:
        assert any(line.startswith(name + " ") for line in lines), name
    for row in ("mIoU", "mIoU (official)", "category mIoU", "pixel acc", "ms/image"):
        assert any(line.startswith(row + " ") for line in lines), row
    data = results_to_json(results, "ckpt.pt", "val")
    json.dumps(data, allow_nan=False)
    assert list(data) == ["checkpoint", "split", "images", "full", "half"] and data["images"] == 3
    assert {"miou", "category_miou", "pixel_acc", "per_class_iou", "ms_per_image"} <= set(data["full"])
    assert data["full"]["miou"] == pytest.approx(100 * results["full"].scores.miou)
    assert list(data["half"]["per_class_iou"]) == list(CLASS_NAMES)
    save_confusion_png(results["half"], tmp_path / "confusion_half.png")
    assert Image.open(tmp_path / "confusion_half.png").size[0] > 200


def test_wrong_size_predictions_are_clear_errors(tree, tmp_path):
    with pytest.raises(UserError, match="32x64 but its ground truth is 64x128"):
        save_prediction(tmp_path / "x.png", np.zeros((32, 64), np.uint8), (64, 128))
    run(DecodingModel(), tree, resolutions=("full",), save_dir=tmp_path / "pred")
    stale = tmp_path / "pred" / "full" / "bremen" / "bremen_000000_000019_leftImg8bit.png"
    Image.fromarray(np.zeros((32, 64), np.uint8)).save(stale)  # e.g. a half-size file left by another tool
    with pytest.raises(UserError, match="official Cityscapes evaluator failed.*not equal"):
        official_evaluation(tmp_path / "pred" / "full", tree, "val", tmp_path / "o.json")
    stale.unlink()
    with pytest.raises(UserError, match="Found no prediction"):
        official_evaluation(tmp_path / "pred" / "full", tree, "val", tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()


def _ddp_worker(rank, world, init_file, root, out):
    torch.set_num_threads(1)  # a forked child must not reuse the parent's OpenMP pool
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = Recorder(DecodingModel())
        results = run(model, root, resolutions=("half",), worst=2)
        per = results["half"].per_image
        out[rank] = (len(model.shapes), results["half"].confusion.mat.clone(), results["half"].images,
                     (per.index, per.names, per.miou), [(w.index, w.prediction) for w in per.worst])
    finally:
        torch.distributed.destroy_process_group()


def test_distributed_shards_and_all_reduce(tree, tmp_path):
    import torch.multiprocessing as mp

    single = run(DecodingModel(), tree, resolutions=("half",), worst=2)["half"]
    out = mp.get_context("fork").Manager().dict()
    context = mp.start_processes(_ddp_worker, args=(2, tmp_path / "init", tree, out), nprocs=2, join=False,
                                 start_method="fork")
    deadline = time.monotonic() + 120
    while not context.join(timeout=1):  # fail rather than hang if a rank gets stuck
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail("distributed evaluation did not finish in 120 s")
    assert sorted(out[r][0] for r in range(2)) == [1, 2]  # 3 images split over 2 ranks, none twice
    per = single.per_image
    for rank in range(2):
        assert torch.equal(out[rank][1], single.confusion.mat) and out[rank][2] == 3
        assert out[rank][3] == (per.index, per.names, per.miou)  # every rank's rows, gathered in data set order
        assert [index for index, _ in out[rank][4]] == [w.index for w in per.worst]  # the lowest of all ranks
        assert all(np.array_equal(p, w.prediction) for (_, p), w in zip(out[rank][4], per.worst))
