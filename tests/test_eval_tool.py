"""tools/eval.py end to end on a tiny synthetic tree and a tiny random checkpoint."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from segkit.config import Config, ModelConfig
from segkit.data.labels import CLASS_NAMES
from segkit.data.synthetic import make_synthetic
from segkit.checkpoint import save_checkpoint
from segkit.models import build_model

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "eval.py"


def write_checkpoint(path, data_root="data"):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    config.data.root = data_root  # relative: resolved from the working directory, as a user's would be
    save_checkpoint(path, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                           "iteration": 0})


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """cwd-like folder: data/ (2 val images, 64x128) and runs/{old,new}/best.pt, runs/new the newest."""
    root = tmp_path_factory.mktemp("ws")
    make_synthetic(root / "data", train=1, val=2, height=64, width=128, seed=0)
    write_checkpoint(root / "runs" / "new" / "best.pt")
    (root / "runs" / "old").mkdir()
    shutil.copy(root / "runs" / "new" / "best.pt", root / "runs" / "old" / "best.pt")
    os.utime(root / "runs" / "old" / "best.pt", (1_000_000_000, 1_000_000_000))
    return root


@pytest.fixture
def tool(tool):  # the conftest loader, narrowed to tools/eval.py
    return tool("eval")


def run_tool(args, cwd, env=None):
    env = {**os.environ, **(env or {})}
    env.pop("CITYSCAPES_DATASET", None)
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_bare_command_uses_newest_best_and_writes_json_pngs_official(workspace):
    proc = run_tool(["--json", "out/eval.json", "--save-dir", "preds", "--official", "--workers", "0"], workspace)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "using the newest checkpoint runs/new/best.pt" in out
    assert "data: data (split val, 2 images)" in out
    header = next(line for line in out.splitlines() if line.startswith("class "))
    assert header.split() == ["class", "full", "half"]
    for row in ("road", "bicycle", "mIoU", "mIoU (official)", "category mIoU", "pixel acc", "ms/image"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row
    assert "(cityscapesscripts)" in out

    data = json.loads((workspace / "out" / "eval.json").read_text())
    assert list(data) == ["checkpoint", "split", "images", "full", "half"]
    assert data["checkpoint"] == "runs/new/best.pt" and data["split"] == "val" and data["images"] == 2
    for resolution in ("full", "half"):
        block = data[resolution]
        assert {"miou", "category_miou", "pixel_acc", "per_class_iou", "ms_per_image"} <= set(block)
        assert list(block["per_class_iou"]) == list(CLASS_NAMES)
        assert 0 <= block["miou"] <= 100 and block["ms_per_image"] > 0
        assert block["official_miou"] == pytest.approx(block["miou"], abs=1e-4)  # percent

    saved = sorted(p.relative_to(workspace / "preds").as_posix() for p in (workspace / "preds").rglob("*.png"))
    images = sorted(p.relative_to(workspace / "data" / "leftImg8bit" / "val").as_posix()
                    for p in (workspace / "data" / "leftImg8bit" / "val").rglob("*_leftImg8bit.png"))
    assert saved == sorted(["confusion_full.png", "confusion_half.png"] +
                           [f"{r}/{name}" for r in ("full", "half") for name in images])
    png = Image.open(workspace / "preds" / "full" / images[0])
    assert png.mode == "L" and png.size == (128, 64)
    assert (workspace / "preds" / "official_full.json").is_file()
    assert not (workspace / "data" / "evaluationResults").exists()


def test_half_only_with_explicit_checkpoint_and_data_root(workspace, tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no runs/ here; data root given explicitly
    tool.main(["--checkpoint", str(workspace / "runs" / "new" / "best.pt"), "--data-root", str(workspace / "data"),
               "--resolution", "half", "--json", "res/eval.json", "--workers", "0", "--tta", "flip"])
    out = capsys.readouterr().out
    assert "(newest" not in out and f"data: {workspace / 'data'}" in out
    data = json.loads((tmp_path / "res" / "eval.json").read_text())
    assert list(data) == ["checkpoint", "split", "images", "half"]
    assert (tmp_path / "res" / "confusion_half.png").is_file()  # beside the JSON when there is no --save-dir


def expect_user_error(tool, argv, capsys, *fragments):
    with pytest.raises(SystemExit) as exit_info:
        tool.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in err[0], (fragment, err[0])
    return err[0]


def test_no_checkpoint_says_how_to_get_one(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    expect_user_error(tool, ["--json", "e.json"], capsys, "runs/*/best.pt", "tools/train.py")
    assert not (tmp_path / "e.json").exists()


def test_no_data_says_how_to_make_it(tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    write_checkpoint(tmp_path / "runs" / "a" / "best.pt", data_root="")
    expect_user_error(tool, ["--json", "e.json"], capsys, "tools/make_synthetic.py")
    expect_user_error(tool, ["--data-root", "nowhere", "--json", "e.json"], capsys, "nowhere", "make_synthetic")
    assert not (tmp_path / "e.json").exists()


def test_missing_split(workspace, tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    json_path = tmp_path / "e.json"
    expect_user_error(tool, ["--split", "test", "--json", str(json_path)], capsys, "split 'test'")
    expect_user_error(tool, ["--split", "test", "--official", "--json", str(json_path)], capsys, "--official")
    assert not json_path.exists()


def test_truncated_checkpoint(workspace, tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes((workspace / "runs" / "new" / "best.pt").read_bytes()[:5000])
    expect_user_error(tool, ["--checkpoint", str(truncated), "--json", str(tmp_path / "e.json")], capsys,
                      "truncated or corrupt", "cut.pt")
    assert not (tmp_path / "e.json").exists()


def test_a_config_of_another_network_names_the_field(workspace, tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    expect_user_error(tool, [str(REPO / "configs" / "lraspp_large.py"), "--checkpoint", "runs/new/best.pt", "--json",
                             str(tmp_path / "e.json")], capsys, "sets model.backbone='mobilenet_v3_large'",
                      "trained with model.backbone='mobilenet_v3_small'")
    assert not (tmp_path / "e.json").exists()


def test_bad_options(workspace, tool, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    expect_user_error(tool, ["--tta", "flop"], capsys, "--tta 'flop'")
    expect_user_error(tool, ["--sliding-window", "512"], capsys, "H,W")


def test_user_error_in_a_subprocess_is_one_line_and_exit_2(workspace, tmp_path):
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes((workspace / "runs" / "new" / "best.pt").read_bytes()[:5000])
    proc = run_tool(["--checkpoint", str(truncated), "--json", str(tmp_path / "e.json")], workspace)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "truncated or corrupt" in proc.stderr
    assert not (tmp_path / "e.json").exists()


def test_deploy_backend_scores_like_the_model(workspace, tool, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    common = ["--checkpoint", "runs/new/best.pt", "--workers", "0", "--device", "cpu"]
    tool.main(common + ["--json", str(tmp_path / "model.json")])
    tool.main(common + ["--backend", "onnxruntime", "--json", str(tmp_path / "ort.json")])
    assert "backend: onnxruntime" in capsys.readouterr().out
    model, ort = (json.loads((tmp_path / name).read_text()) for name in ("model.json", "ort.json"))
    for resolution in ("full", "half"):
        assert model[resolution]["pixel_acc"] == pytest.approx(ort[resolution]["pixel_acc"], abs=0.1)
        assert model[resolution]["miou"] == pytest.approx(ort[resolution]["miou"], abs=0.5)
    expect_user_error(tool, common + ["--backend", "onnxruntime", "--tta", "flip"], capsys, "--tta")
