import json
import subprocess
import sys
from pathlib import Path

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


def test_data_report_compares_loader_and_training(tmp_path):
    from segkit.benchmark import data_report
    from segkit.config import load_config
    from segkit.data.synthetic import make_synthetic

    make_synthetic(tmp_path, train=4, val=1, height=64, width=128, seed=0)
    config = load_config(ROOT / "configs" / "lraspp_small.py", ["data.crop_size=64,128", "train.batch_size=2"])
    record = data_report(config, tmp_path, workers=1, seconds=1.0, repeats=1)
    assert record["crop_size"] == [64, 128] and record["batch_size"] == 2 and record["workers"] == 1
    assert record["data_root"] == str(tmp_path) and record["config"] == "lraspp_small"


def test_data_report_ratio_is_loader_over_training(monkeypatch):
    # "4.5x" means the loader delivers 4.5 times the samples the training step consumes
    import segkit.benchmark as benchmark
    import segkit.data.cityscapes as cityscapes
    from segkit.config import load_config

    calls = {}
    monkeypatch.setattr(cityscapes, "loader_throughput", lambda data, root, **kw: calls.setdefault("loader", kw)
                        and 45.0)
    monkeypatch.setattr(benchmark, "training_step_rate", lambda config, repeats: 10.0)
    config = load_config(ROOT / "configs" / "demo.py")
    record = benchmark.data_report(config, "somewhere", workers=3, seconds=2.0)
    assert (record["loader_samples_per_s"], record["train_samples_per_s"], record["loader_to_train_ratio"]) == \
        (45.0, 10.0, 4.5)
    assert calls["loader"] == {"batch_size": 4, "workers": 3, "seconds": 2.0}  # the training batch


def test_backends_with_trained_checkpoint_and_photo(tmp_path):
    import cv2
    import numpy as np

    from segkit.config import Config, ModelConfig
    from segkit.engine.checkpoint import save_checkpoint
    from segkit.models import build_model

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
    assert mismatch.returncode == 2 and "does not fit" in mismatch.stderr
    alone = run_tool("--checkpoint", str(checkpoint))
    assert alone.returncode == 2 and "go with --backend" in alone.stderr


def test_all_backends_skip_bf16_without_native_support(monkeypatch):
    import segkit.predict
    from segkit.benchmark import BACKENDS, available_backends

    monkeypatch.setattr(segkit.predict, "cpu_has_bf16", lambda: False)
    assert available_backends() == tuple(name for name in BACKENDS if name != "openvino-bf16")
    monkeypatch.setattr(segkit.predict, "cpu_has_bf16", lambda: True)
    assert available_backends() == BACKENDS
