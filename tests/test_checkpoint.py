import os
import random

import numpy as np
import pytest
import torch

from segkit.checkpoint import (capture_rng_state, find_latest_checkpoint, load_checkpoint, restore_rng_state,
                              save_checkpoint)
from segkit.errors import UserError


def training_state(iteration=3):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: (1 - it / 10) ** 0.9)
    for _ in range(iteration):
        model(torch.randn(2, 3, 8, 8)).square().mean().backward()
        optimizer.step()
        scheduler.step()
    return {
        "model": model.state_dict(),
        "config": {"name": "demo", "train": {"lr": 0.01, "crop_size": [769, 769]}},
        "iteration": iteration,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": torch.amp.GradScaler("cpu", enabled=False).state_dict(),
        "rng": capture_rng_state(),
        "sampler": {"epoch": 1, "position": 5},
    }


def test_round_trip_with_weights_only(tmp_path):
    state = training_state()
    save_checkpoint(tmp_path / "run" / "last.pt", state)  # creates the directory
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["iteration"] == 3  # the bare contract
    loaded = load_checkpoint(tmp_path / "run" / "last.pt")
    assert loaded["iteration"] == 3 and loaded["config"] == state["config"] and loaded["sampler"] == state["sampler"]
    for key, value in state["model"].items():
        assert torch.equal(loaded["model"][key], value)
    assert loaded["scheduler"]["last_epoch"] == 3
    momentum = loaded["optimizer"]["state"][0]["momentum_buffer"]
    assert torch.equal(momentum, state["optimizer"]["state"][0]["momentum_buffer"])
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["last.pt"]


def test_rng_state_survives_weights_only_load(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(0, 1), np.random.normal()  # leave cached gaussians in the states too
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "config": {}, "iteration": 0, "rng": capture_rng_state()})
    expected = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.normal(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)  # move every generator elsewhere
    restore_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = (random.random(), random.gauss(0, 1), np.random.rand(3).tolist(), np.random.normal(), torch.rand(3))
    assert got[:4] == expected[:4] and torch.equal(got[4], expected[4])


def test_crash_mid_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, training_state(iteration=1))

    def crashing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(torch, "save", crashing_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, training_state(iteration=2))
    assert load_checkpoint(path)["iteration"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_truncated_or_garbage_file_is_a_user_error(tmp_path):
    path = tmp_path / "best.pt"
    save_checkpoint(path, training_state(iteration=1))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="truncated or corrupt"):
        load_checkpoint(path)


def test_missing_file_and_foreign_files(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"model": {}, "iteration": 1}, tmp_path / "no_config.pt")
    with pytest.raises(UserError, match="not a segkit checkpoint.*lacks config"):
        load_checkpoint(tmp_path / "no_config.pt")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(UserError, match="lacks model, config, iteration"):
        load_checkpoint(tmp_path / "bare.pt")
    torch.save({"model": {}, "config": {}, "iteration": 1, "obj": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    with pytest.raises(UserError, match="not a segkit checkpoint.*objects"):
        load_checkpoint(tmp_path / "pickled.pt")


def test_find_latest_checkpoint(tmp_path):
    runs = tmp_path / "runs"
    assert find_latest_checkpoint(runs) is None  # no runs directory yet
    for i, (run, name) in enumerate([("a", "best.pt"), ("b", "best.pt"), ("c", "last.pt"), ("b/nested", "best.pt")]):
        (runs / run).mkdir(parents=True, exist_ok=True)
        (runs / run / name).write_bytes(b"x")
        os.utime(runs / run / name, (1000 + i, 1000 + i))
    assert find_latest_checkpoint(runs) == runs / "b" / "best.pt"
    os.utime(runs / "a" / "best.pt", (2000, 2000))
    assert find_latest_checkpoint(runs) == runs / "a" / "best.pt"
    assert find_latest_checkpoint(runs, name="last.pt") == runs / "c" / "last.pt"
