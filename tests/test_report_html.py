"""tools/eval.py --report: the offline HTML page on a tiny synthetic city, in both layouts, model and deploy path."""
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.checkpoint import save_checkpoint
from segkit.config import Config, DataConfig, ModelConfig
from segkit.data.cityscapes import CityscapesDataset
from segkit.data.classes import IGNORE_INDEX, ClassTable
from segkit.data.folder import FolderDataset
from segkit.data.synthetic import make_synthetic
from segkit.data.synthetic.folder import make_synthetic_folder
from segkit.engine.report_html import DIMMED, error_picture
from segkit.models import build_model

H, W = 64, 128


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    root = tmp_path_factory.mktemp("city")
    make_synthetic(root, train=0, val=3, height=H, width=W, seed=2)  # its images score out of order
    return root


@pytest.fixture(scope="module")
def folder_city(tmp_path_factory):
    """The folder layout with its own 7-class table, and a checkpoint of that table."""
    root = tmp_path_factory.mktemp("folder")
    make_synthetic_folder(root / "data", train=0, val=3, height=H, width=W, seed=1, classes=7)
    table = ClassTable.load(root / "data" / "classes.yaml")
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small", num_classes=7),
                    data=DataConfig(layout="folder", classes=str(root / "data" / "classes.yaml")))
    torch.manual_seed(0)
    model = build_model(config.model, table.names)
    for module in model.modules():  # random BatchNorm statistics: labels that vary over the image
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    save_checkpoint(root / "best.pt", {"model": model.state_dict(), "config": config.to_dict(), "iteration": 0,
                                       "classes": table.to_dict()})
    return root, table


class Page(HTMLParser):
    """Every element's tag and attributes, in order, and the text of the table#images' rows."""

    def __init__(self, text):
        super().__init__()
        self.elements, self.rows, self._table, self._row = [], [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id")
        if tag == "tr" and self._table == "images" and "data-index" in attrs:
            self._row = []
            self.rows.append(self._row)
        if tag == "td" and self._row is not None:
            self._row.append(attrs.get("data-value"))

    def handle_endtag(self, tag):
        if tag == "table":
            self._table, self._row = None, None

    def find(self, tag, **attrs):
        return [a for t, a in self.elements if t == tag and all(a.get(k.replace("_", "-")) == v
                                                                for k, v in attrs.items())]


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def image_miou(truth, prediction, classes):
    """An image's mIoU by hand: over the classes in its labelled ground truth or predicted on those pixels."""
    labelled = truth != IGNORE_INDEX
    truth, prediction = truth[labelled], prediction[labelled]
    ious = [np.sum((truth == c) & (prediction == c)) / np.sum((truth == c) | (prediction == c))
            for c in range(classes) if np.any(truth == c) or np.any(prediction == c)]
    return 100 * float(np.mean(ious))


def check_report(out: Path, dataset, table: ClassTable, resolutions, worst: int) -> Page:
    """What every report must be: offline, each picture it names there and each one there named, one row per
    image, the lowest rows pictured, exact error pictures, per-image scores as defined."""
    text = (out / "index.html").read_text()
    page = Page(text)
    assert "http:" not in text and "https:" not in text  # nothing fetched from elsewhere
    links = {a[key] for _, a in page.elements for key in ("src", "href") if key in a}
    written = {p.relative_to(out).as_posix() for p in (out / "images").rglob("*") if p.is_file()}
    assert links == written and all((out / link).is_file() for link in links)
    assert not list(out.rglob(".*.tmp"))  # atomic writes left nothing behind

    assert [a["data-resolution"] for a in page.find("tr") if "data-resolution" in a] == list(resolutions)
    assert {a["data-resolution"] for a in page.find("rect", **{"class": "bar"})} == set(resolutions)
    assert len(page.find("img", **{"class": "confusion"})) == len(resolutions)

    names = ["/".join(p for p in (s.city, s.name) if p) for s in dataset.samples]
    assert [row[1] for row in page.rows] == names  # one row per image, in data set order
    for column, resolution in enumerate(resolutions, start=2):
        scores = [float(row[column]) for row in page.rows]
        lowest = [names[i] for i in sorted(range(len(names)), key=lambda i: (scores[i], i))[:worst]]
        figures = page.find("figure", **{"class": "worst", "data_resolution": resolution})
        assert [f["data-image"] for f in figures] == lowest
        for figure in figures:
            index = int(figure["data-index"])
            photo, truth = dataset.read(index)
            stem = out / "images" / f"{index:05d}_{resolution}"
            prediction = table.colors_to_classes(read_rgb(f"{stem}_prediction.png"))
            assert float(figure["data-miou"]) == pytest.approx(scores[index], abs=0.006)
            assert image_miou(truth, prediction, table.num_classes) == pytest.approx(scores[index], abs=0.006)
            errors = read_rgb(f"{stem}_errors.png")
            red = np.all(errors == (255, 0, 0), axis=-1)
            assert np.array_equal(red, (truth != IGNORE_INDEX) & (prediction != truth))
            assert np.array_equal(read_rgb(out / "images" / f"{index:05d}_truth.png"), table.colorize(truth))
            assert (out / "images" / f"{index:05d}_photo.jpg").is_file()
    return page


def test_report_of_the_model_with_tta(city, small_checkpoint, tool, tmp_path, capsys):
    out = tmp_path / "report"
    tool("eval").main(["--checkpoint", str(small_checkpoint[0]), "--data-root", str(city), "--report", str(out),
                       "--report-worst", "2", "--tta", "flip", "--workers", "0", "--device", "cpu"])
    assert f"report: {out / 'index.html'}" in capsys.readouterr().out
    page = check_report(out, CityscapesDataset(city, "val"), ClassTable.cityscapes(), ("full", "half"), worst=2)
    assert "TTA flip" in (out / "index.html").read_text()
    # the page can be sorted: a header per column, the script inline
    assert [a.get("data-type") for a in page.find("th") if "data-type" in a] == ["number", "text", "number", "number"]
    assert len(page.find("script")) == 1 and not page.find("link")


def test_report_of_a_deploy_path_on_the_folder_layout_and_its_own_classes(folder_city, tool, tmp_path, capsys):
    root, table = folder_city
    out = tmp_path / "report"
    (out / "images").mkdir(parents=True)
    (out / "index.html").write_text("an older report")  # replaced
    tool("eval").main(["--checkpoint", str(root / "best.pt"), "--data-root", str(root / "data"), "--report", str(out),
                       "--backend", "onnxruntime", "--resolution", "full", "--workers", "0", "--device", "cpu"])
    assert "backend: onnxruntime" in capsys.readouterr().out
    dataset = FolderDataset(root / "data", "val", table)
    page = check_report(out, dataset, table, ("full",), worst=3)  # the default 8: all 3 images
    assert {a["data-class"] for a in page.find("rect", **{"class": "bar"})} <= set(table.names)
    assert "--backend onnxruntime" in (out / "index.html").read_text()


def test_report_needs_labels(city, small_checkpoint, tool, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(city, data)
    shutil.copytree(data / "leftImg8bit" / "val", data / "leftImg8bit" / "test")  # a test split: photos only
    with pytest.raises(SystemExit) as exit_info:
        tool("eval").main(["--checkpoint", str(small_checkpoint[0]), "--data-root", str(data), "--split", "test",
                           "--report", str(tmp_path / "report"), "--workers", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "--report needs ground truth" in err[0], err
    assert not (tmp_path / "report").exists()


def test_report_arguments_are_checked_first(tool, tmp_path, capsys):
    eval_tool = tool("eval")
    (tmp_path / "file").write_text("")
    for argv, fragment in ((["--report", "r", "--report-worst", "-1"], "--report-worst -1"),
                           (["--report", str(tmp_path / "file")], "is a file")):
        with pytest.raises(SystemExit) as exit_info:
            eval_tool.main(argv + ["--checkpoint", str(tmp_path / "missing.pt")])  # never reached
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and fragment in err[0], err


def test_error_picture_marks_wrong_pixels_red_greys_ignored_and_dims_correct():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    truth = rng.integers(0, 4, (20, 30)).astype(np.uint8)
    truth[:5] = IGNORE_INDEX
    prediction = np.where(rng.random((20, 30)) < 0.3, (truth + 1) % 4, truth).astype(np.uint8)
    picture = error_picture(photo, truth, prediction)
    wrong = (truth != IGNORE_INDEX) & (prediction != truth)
    ignored, correct = truth == IGNORE_INDEX, (truth != IGNORE_INDEX) & (prediction == truth)
    assert wrong.any() and correct.any()
    assert np.array_equal(np.all(picture == (255, 0, 0), axis=-1), wrong)
    grey = picture[ignored]
    assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2]) and grey.min() >= 128
    assert picture[correct].max() <= math.floor(255 * DIMMED)
    assert np.array_equal(picture[correct], (photo[correct] * np.float32(DIMMED)).astype(np.uint8))
