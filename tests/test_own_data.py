"""Your own data end to end: the folder layout with a 7-class table trains (a few iterations), evaluates (the
table's names in the table and JSON, no category mIoU, the table's values under --save-dir, the confusion PNG) and
infers with nothing but the checkpoint (its table's colours); a class table that does not parse stops training in
one line before anything is written."""
import json

import cv2
import numpy as np
import pytest

from segkit.config import Config, DataConfig, ModelConfig, TrainConfig
from segkit.checkpoint import load_checkpoint
from segkit.data.classes import ClassTable
from segkit.data.synthetic.folder import MERGED, make_synthetic_folder
from segkit.engine.trainer import train
from segkit.errors import UserError

H, W = 64, 128
NAMES = tuple(name for name, _ in MERGED)


def folder_config(root, **data) -> Config:
    return Config(name="mine", model=ModelConfig(backbone="mobilenet_v3_small"),
                  data=DataConfig(root=str(root), layout="folder", classes=str(root / "classes.yaml"),
                                  crop_size=(33, 65), scale_range=(1.0, 1.0), workers=0, **data),
                  train=TrainConfig(iterations=3, batch_size=2, checkpoint_every=3, eval_every=0, log_every=1,
                                    channels_last=False))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(data root, work dir): the folder-layout city with 7 classes, trained 3 iterations."""
    root = tmp_path_factory.mktemp("own")
    make_synthetic_folder(root / "data", train=4, val=2, height=H, width=W, seed=0, classes=7)
    train(folder_config(root / "data"), root / "run", device="cpu", progress=False)
    return root / "data", root / "run"


def test_training_writes_a_seven_class_model_that_carries_its_table(run):
    _, work_dir = run
    checkpoint = load_checkpoint(work_dir / "best.pt")
    assert checkpoint["config"]["model"]["num_classes"] == 7  # followed the table
    assert checkpoint["model"]["head.high_classifier.weight"].shape[0] == 7
    assert ClassTable.from_dict(checkpoint["classes"]).names == NAMES


def test_eval_reports_under_the_tables_names_and_saves_its_values(run, tool, tmp_path, capsys):
    data, work_dir = run
    scores, saved = tmp_path / "eval.json", tmp_path / "preds"
    tool("eval").main(["--checkpoint", str(work_dir / "best.pt"), "--data-root", str(data), "--json", str(scores),
                       "--save-dir", str(saved), "--workers", "0"])
    out = capsys.readouterr().out
    assert "vehicle" in out and "category mIoU" not in out and "traffic light" not in out
    result = json.loads(scores.read_text())
    assert list(result["full"]["per_class_iou"]) == list(NAMES) and "category_miou" not in result["full"]
    predictions = sorted((saved / "full").rglob("*.png"))
    photos = sorted((data / "images" / "val").rglob("*.jpg"))
    assert [p.relative_to(saved / "full").with_suffix("") for p in predictions] == \
        [p.relative_to(data / "images" / "val").with_suffix("") for p in photos]
    values = cv2.imread(str(predictions[0]), cv2.IMREAD_UNCHANGED)
    assert values.shape == (H, W) and set(np.unique(values)) <= set(range(1, 8))  # the table's values 1..7
    assert (saved / "confusion_full.png").is_file() and (saved / "confusion_half.png").is_file()


def test_infer_takes_the_checkpoints_colours(run, tool, tmp_path):
    data, work_dir = run
    photo = sorted((data / "images" / "val").rglob("*.jpg"))[0]
    tool("infer").main([str(photo), "--checkpoint", str(work_dir / "best.pt"), "--out", str(tmp_path),
                        "--backend", "torch"])
    colours = cv2.cvtColor(cv2.imread(str(tmp_path / f"{photo.stem}_color.png")), cv2.COLOR_BGR2RGB)
    table = ClassTable.from_dict(load_checkpoint(work_dir / "best.pt")["classes"])
    palette = {tuple(c) for c in table.colors}
    assert {tuple(c) for c in colours.reshape(-1, 3)} <= palette  # only the 7 classes' colours
    values = cv2.imread(str(tmp_path / f"{photo.stem}_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(values)) <= set(range(1, 8))


def test_a_table_that_does_not_parse_stops_training_before_any_output(run, tmp_path):
    data, _ = run
    broken = tmp_path / "broken.yaml"
    broken.write_text("classes: [{name: road, color: [1, 2, 3]\n")
    config = folder_config(data)
    config.data.classes = str(broken)
    with pytest.raises(UserError) as error:
        train(config, tmp_path / "run", device="cpu", progress=False)
    assert "does not parse" in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "run").exists()


def test_export_writes_the_class_table_beside_the_graph(run, tool, tmp_path, capsys):
    _, work_dir = run
    tool("export").main(["--checkpoint", str(work_dir / "best.pt"), "--out", str(tmp_path / "mine.onnx"),
                         "--height", "64", "--width", "128", "--labels"])
    assert "classes: " in capsys.readouterr().out
    table = ClassTable.from_dict(json.loads((tmp_path / "mine.classes.json").read_text()))
    assert table.names == NAMES and table.values[0] == (1,)
