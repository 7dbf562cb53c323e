"""tools/export.py: an ONNX file checked against PyTorch; a user error is one line and leaves no file."""
import subprocess
import sys
from pathlib import Path

import numpy as np

from segkit.config import Config, ModelConfig
from segkit.checkpoint import save_checkpoint
from segkit.deploy.export import ort_session
from segkit.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def test_export_tool(tmp_path):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    save_checkpoint(tmp_path / "best.pt", {"model": build_model(config.model).state_dict(),
                                           "config": config.to_dict(), "iteration": 0})
    tool = [sys.executable, str(ROOT / "tools" / "export.py")]
    result = subprocess.run(tool + ["--checkpoint", "best.pt", "--out", "m.onnx", "--height", "64", "--width", "128"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "labels agree on 100.000%" in result.stdout and (tmp_path / "m.onnx").is_file()
    result = subprocess.run(tool + ["--checkpoint", "best.pt", "--out", "half.onnx", "--height", "64", "--width",
                                    "128", "--resolution", "half", "--labels"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "half resolution" in result.stdout and "labels agree on 100.000%" in result.stdout
    labels = ort_session(tmp_path / "half.onnx").run(None, {"images": np.zeros((1, 3, 64, 128), np.float32)})[0]
    assert labels.shape == (1, 64, 128) and labels.dtype == np.uint8  # the input's size, the network at 32x64
    result = subprocess.run(tool + ["--checkpoint", "missing.pt", "--out", "x.onnx"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing.pt" in result.stderr
    assert not (tmp_path / "x.onnx").exists()
