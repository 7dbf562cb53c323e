"""segkit.benchmark.data: the loader's and the training step's rates, reported side by side."""
from pathlib import Path

import segkit.benchmark.data as benchmark_data
from segkit.config import load_config
from segkit.data.synthetic import make_synthetic

ROOT = Path(__file__).resolve().parents[1]


def test_data_report_compares_loader_and_training(tmp_path):
    make_synthetic(tmp_path, train=4, val=1, height=64, width=128, seed=0)
    config = load_config(ROOT / "configs" / "lraspp_small.py", ["data.crop_size=65,129", "train.batch_size=2"])
    record = benchmark_data.data_report(config, tmp_path, workers=1, seconds=1.0, repeats=1)
    assert record["crop_size"] == [65, 129] and record["batch_size"] == 2 and record["workers"] == 1
    assert record["data_root"] == str(tmp_path) and record["config"] == "lraspp_small"


def test_data_report_ratio_is_loader_over_training(monkeypatch):
    # "4.5x" means the loader delivers 4.5 times the samples the training step consumes
    calls = {}
    monkeypatch.setattr(benchmark_data, "loader_throughput", lambda data, root, **kw: calls.setdefault("loader", kw)
                        and 45.0)
    monkeypatch.setattr(benchmark_data, "training_step_rate", lambda config, repeats: 10.0)
    config = load_config(ROOT / "configs" / "demo.py")
    record = benchmark_data.data_report(config, "somewhere", workers=3, seconds=2.0)
    assert (record["loader_samples_per_s"], record["train_samples_per_s"], record["loader_to_train_ratio"]) == \
        (45.0, 10.0, 4.5)
    assert calls["loader"] == {"batch_size": 4, "workers": 3, "seconds": 2.0}  # the training batch
