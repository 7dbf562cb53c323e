"""tools/infer.py end to end, in a scratch working directory (the default-checkpoint rule looks at ./runs)."""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from segkit.config import Config, ModelConfig
from segkit.engine.checkpoint import save_checkpoint
from segkit.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def infer(cwd, *args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "infer.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def make_checkpoint(path, mtime=None):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    save_checkpoint(path, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                           "iteration": 0})
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def write_photo(path, height=48, width=80):
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def workdir(tmp_path):
    make_checkpoint(tmp_path / "runs" / "old" / "best.pt", mtime=1_000_000)
    make_checkpoint(tmp_path / "runs" / "new" / "best.pt", mtime=2_000_000)
    write_photo(tmp_path / "good.png")
    return tmp_path


def test_newest_checkpoint_and_failing_files(workdir):
    (workdir / "notimage.png").write_text("this is text")
    png = (workdir / "good.png").read_bytes()
    (workdir / "truncated.png").write_bytes(png[: len(png) // 2])
    result = infer(workdir, "good.png", "missing.png", "notimage.png", "truncated.png", "--backend", "torch")
    assert result.returncode == 1
    assert f"newest checkpoint {Path('runs/new/best.pt')}" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and "libpng" not in result.stderr and "Traceback" not in result.stderr
    assert "missing.png" in errors[0] and "does not exist" in errors[0]
    assert "notimage.png" in errors[1] and "truncated.png" in errors[2]
    out = workdir / "runs" / "new" / "infer"
    assert sorted(p.name for p in out.iterdir()) == ["good_color.png", "good_labelIds.png", "good_overlay.png"]
    label_ids = cv2.imread(str(out / "good_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert label_ids.shape == (48, 80) and label_ids.dtype == np.uint8
    assert cv2.imread(str(out / "good_overlay.png")).shape == (48, 80, 3)
    assert "1 of 4 inputs segmented" in result.stdout and " ms" in result.stdout


def test_folder_and_glob_to_out_with_onnxruntime(workdir):
    (workdir / "shots" / "a").mkdir(parents=True)
    write_photo(workdir / "shots" / "a" / "x.png")
    write_photo(workdir / "shots" / "y.jpg", 64, 96)
    result = infer(workdir, "shots", "*.png", "--checkpoint", "runs/old/best.pt", "--out", "o",
                   "--resolution", "half", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    assert "newest" not in result.stdout and "backend onnxruntime" in result.stdout
    names = sorted(p.name for p in (workdir / "o").iterdir())
    assert len(names) == 9 and {"x_color.png", "y_overlay.png", "good_labelIds.png"} <= set(names)


def test_no_checkpoint_says_how_to_get_one(tmp_path):
    write_photo(tmp_path / "good.png")
    result = infer(tmp_path, "good.png")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "runs/*/best.pt" in result.stderr and "tools/train.py" in result.stderr
