"""tools/benchmark.py: Table 7 beside the paper, a config's JSON record, backends with a checkpoint and a photo,
one-line user errors."""
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from segkit.config import Config, ModelConfig
from segkit.checkpoint import save_checkpoint
from segkit.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_table7_report_lists_every_row_beside_the_paper():
    result = run_tool("--table7", "--no-latency")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line[:2].strip().isdigit()]
    assert [int(line[:2]) for line in rows] == list(range(1, 12))
    assert "1.507M  1.51M" in rows[7] and "9.37B  9.74B" in rows[7]


def test_config_json_record():
    result = run_tool(str(ROOT / "configs" / "lraspp_small.py"), "--json", "--repeats", "1", "--resolution", "half",
                      "--threads", "1")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["config"] == "lraspp_small" and record["threads"] == 1 and record["backend"] == "torch"
    assert abs(record["params"] / 0.47e6 - 1) < 0.02
    assert set(record["madds"]) == {"half"} and record["latency_ms"]["half"] > 0


def test_user_errors_are_one_line():
    result = run_tool("missing.py")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    result = run_tool()
    assert result.returncode == 2 and "--table7" in result.stderr


def test_backends_with_trained_checkpoint_and_photo(tmp_path):
    config = Config(name="tiny", model=ModelConfig(backbone="mobilenet_v3_small"))
    checkpoint = tmp_path / "best.pt"
    save_checkpoint(checkpoint, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                                 "iteration": 0})
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (100, 200, 3), dtype=np.uint8))
    result = run_tool("--backend", "torch,onnxruntime,openvino", "--checkpoint", str(checkpoint), "--image", str(photo),
                      "--resolution", "half", "--repeats", "1", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["config"] == "tiny" and set(record["backends_ms"]) >= {"torch", "onnxruntime", "openvino",
                                                                         "openvino network"}
    mismatch = run_tool(str(ROOT / "configs" / "lraspp_large.py"), "--backend", "torch", "--checkpoint",
                        str(checkpoint), "--resolution", "half", "--repeats", "1")
    assert mismatch.returncode == 2 and "was trained with model.backbone=" in mismatch.stderr
    alone = run_tool("--checkpoint", str(checkpoint))
    assert alone.returncode == 2 and "go with --backend" in alone.stderr
