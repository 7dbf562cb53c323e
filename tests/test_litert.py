"""segkit.deploy.litert: the phone graph converted by litert-torch and run by LiteRT's interpreter gives PyTorch's
labels (rows 8 and 11, 1024x2048 and 512x1024 photos); tools/export.py --format tflite; one line when a package is
missing or the converter rejects the graph."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segkit.config import table7_config
from segkit.deploy.litert import TfliteRunner, optional
from segkit.errors import UserError
from segkit.models import build_model
from segkit.predict import Predictor

pytest.importorskip("litert_torch", reason="needs the optional extra .[mobile] (make test installs it)")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("row", [8, 11])
def test_phone_graph_labels_equal_pytorch_at_both_photo_sizes(row, realistic, photos):
    config = table7_config(row)
    model = realistic(build_model(config.model))
    predictor = Predictor.from_model(model, config.data.normalize, backend="litert")
    for size in ((1024, 2048), (512, 1024)):
        image = photos.random(*size, seed=row)
        labels = predictor.predict(image)
        expected = photos.eager(model, image, config.data.normalize, "full")
        assert labels.shape == size and (labels == expected).mean() >= 0.999, (row, size)


def test_export_tool_writes_a_checked_phone_graph(small_checkpoint, tmp_path):
    path, model, config = small_checkpoint
    tool = [sys.executable, str(ROOT / "tools" / "export.py"), "--checkpoint", str(path), "--format", "tflite"]
    result = subprocess.run(tool + ["--out", "p.tflite", "--height", "64", "--width", "128"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "uint8 RGB" in result.stdout and "labels agree on 100.000%" in result.stdout
    runner = TfliteRunner((tmp_path / "p.tflite").read_bytes())
    assert runner.input_shape == (1, 64, 128, 3)
    logits = runner(np.zeros((1, 64, 128, 3), np.uint8))
    assert logits.shape == (1, 9, 17, 19)  # channels-last, 1/8 of the 65x129 grid
    result = subprocess.run(tool + ["--out", "l.tflite", "--height", "64", "--width", "128", "--labels",
                                    "--resolution", "half"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    labels = TfliteRunner((tmp_path / "l.tflite").read_bytes())(np.zeros((1, 64, 128, 3), np.uint8))
    assert labels.shape == (1, 64, 128) and labels.dtype == np.uint8


def test_missing_package_and_rejected_graph_are_one_line(small_checkpoint, tool, capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(UserError, match=r"needs the optional package ai_edge_litert; install it with .*\.\[mobile\]"):
        optional("ai_edge_litert.interpreter", "running LiteRT (.tflite) graphs")
    monkeypatch.delitem(sys.modules, "ai_edge_litert.interpreter")
    import litert_torch

    def reject(*args, **kwargs):
        raise RuntimeError("failed to legalize operation 'tfl.custom'\nmore lines")

    monkeypatch.setattr(litert_torch, "convert", reject)
    with pytest.raises(SystemExit) as exit_:
        tool("export").main(["--checkpoint", str(small_checkpoint[0]), "--format", "tflite", "--out",
                             str(tmp_path / "x.tflite"), "--height", "64", "--width", "128"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "LiteRT's converter rejected the graph" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("head, skip, resolution, stride", [
    ("lraspp", True, "full", 8), ("raspp", False, "full", 16), ("lraspp", True, "half", 16),
    ("raspp", False, "half", 32)])
def test_the_phone_graphs_output_is_described_as_it_is(head, skip, resolution, stride):
    # the tool said "at 1/8" for every graph: R-ASPP without the skip is at 1/16, half resolution halves again
    import torch

    from segkit.config import ModelConfig
    from segkit.deploy.export import PhoneGraph
    from segkit.deploy.litert import describe_output
    from segkit.inference import plan_for

    model = build_model(ModelConfig(backbone="mobilenet_v3_small", head=head, skip=skip)).eval()
    plan = plan_for((128, 256), resolution, model.output_stride)
    with torch.no_grad():
        shape = tuple(PhoneGraph(model, "tf", plan)(torch.zeros(1, 128, 256, 3, dtype=torch.uint8)).shape)
    text = describe_output(model, plan)
    assert str(shape) in text and f"1/{stride} of the photo" in text, text


def test_odd_photo_sizes_at_half_resolution_convert(small_checkpoint, tmp_path):
    # a non-integer area factor (75x101 -> 38x50) exported as an adaptive pooling the converters rejected
    path, model, config = small_checkpoint
    tool = [sys.executable, str(ROOT / "tools" / "export.py"), "--checkpoint", str(path), "--format", "tflite",
            "--out", "odd.tflite", "--height", "75", "--width", "101", "--resolution", "half"]
    result = subprocess.run(tool, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "labels agree on" in result.stdout and "1/16 of the photo" in result.stdout and not result.stderr
