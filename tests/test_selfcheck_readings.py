"""segkit.selfcheck.readings: the steady-state rate, what the trainer recorded, checkpoints compared."""
import json

import pytest
import torch

from segkit.checkpoint import save_checkpoint
from segkit.selfcheck.processes import StepFailed
from segkit.selfcheck.readings import compare_weights, steady_rate, trained_run


def write_log(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_steady_rate_leaves_out_the_warm_up_windows(tmp_path):
    log = tmp_path / "log.jsonl"
    write_log(log, [{"iteration": 20, "loss": 3.0, "lr": 0.01, "it_per_s": 1.0},  # start-up: 20 s
                    {"iteration": 40, "loss": 2.0, "lr": 0.01, "it_per_s": 10.0},  # 2 s
                    {"iteration": 50, "loss": 1.0, "lr": 0.01, "it_per_s": 5.0},  # 2 s
                    {"iteration": 50, "val_miou": 12.0, "resolutions": ["half"]}])
    rate = steady_rate(log, images_per_step=8, warm_windows=1)
    assert rate["steady_steps"] == 30 and rate["warm_steps"] == 20
    assert rate["it_per_s"] == pytest.approx(30 / 4) and rate["images_per_s"] == pytest.approx(8 * 30 / 4)
    assert rate["warm_images_per_s"] == pytest.approx(8.0)
    assert (rate["first_loss"], rate["last_loss"]) == (3.0, 1.0)


def test_trained_run_reads_the_trainers_own_records(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"name": "tiny", "data": {"crop_size": [65, 129]},
                                                      "train": {"batch_size": 2}}))
    setup = {"device": "cuda:0", "gpu": "H100", "world_size": 2, "amp": "bfloat16", "channels_last": True,
             "compile": False, "workers": 4}
    memory = [{"peak_rss_gib": 1.0, "peak_allocated_gib": 2.0, "peak_reserved_gib": 3.0},
              {"peak_rss_gib": 1.5, "peak_allocated_gib": 2.5, "peak_reserved_gib": 3.5}]
    write_log(tmp_path / "log.jsonl", [{"iteration": 0, "setup": setup}, {"iteration": 4, "val_miou": 7.0},
                                       {"iteration": 8, "val_miou": 5.0}, {"iteration": 8, "peak_memory": memory}])
    info = trained_run(tmp_path)
    assert (info["config"], info["crop"], info["batch_size"], info["best_miou"]) == ("tiny", [65, 129], 2, 7.0)
    assert (info["amp"], info["channels_last"], info["workers"], info["world_size"]) == ("bfloat16", True, 4, 2)
    assert info["peak_memory"] == memory and info["gpu"] == "H100"
    (tmp_path / "log.jsonl").write_text(json.dumps({"iteration": 0, "setup": setup}) + "\n")  # killed: no peak
    with pytest.raises(StepFailed, match="no setup and peak memory"):
        trained_run(tmp_path)


def test_compare_weights(tmp_path):
    weights = {"a": torch.zeros(3), "b": torch.arange(4)}
    for name, shift in (("x", 0.0), ("y", 0.0), ("z", 0.5)):
        save_checkpoint(tmp_path / f"{name}.pt", {"model": {"a": weights["a"] + shift, "b": weights["b"]},
                                                  "config": {}, "iteration": 1})
    assert compare_weights(tmp_path / "x.pt", tmp_path / "y.pt") == {
        "identical": True, "max_abs_diff": 0.0, "tensors_differing": 0, "tensors": 2}
    differ = compare_weights(tmp_path / "x.pt", tmp_path / "z.pt")
    assert not differ["identical"] and differ["max_abs_diff"] == 0.5 and differ["tensors_differing"] == 1
