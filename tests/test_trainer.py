"""The training engine: resumable stream, exact resume after SIGKILL, DDP = one process, non-finite loss."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from segkit.config import Config, DataConfig, ModelConfig, TrainConfig
from segkit.data.synthetic import make_synthetic
from segkit.engine.checkpoint import load_checkpoint
from segkit.engine.trainer import TrainStream, train
from segkit.errors import UserError
from segkit.models import build_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.backbone=mobilenet_v3_small", "data.crop_size=65,129", "data.scale_range=0.5,1.0",
        "data.workers=1", "train.batch_size=2", "train.eval_every=0", "train.log_every=1", "train.lr=0.02"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic(root, train=6, val=2, height=96, width=192, seed=3)
    return root


def run_train(work_dir, data_root, *overrides, resume=False, env=None, nproc=0):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"] if nproc \
        else [sys.executable]
    command = launcher + [str(ROOT / "tools" / "train.py"), str(ROOT / "configs" / "lraspp_small.py"),
                          "--data-root", str(data_root), "--work-dir", str(work_dir), "--device", "cpu",
                          "--no-progress"]
    for item in list(TINY) + list(overrides):
        command += ["--set", item]
    if resume:
        command.append("--resume")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return out


def test_stream_shards_make_the_same_global_batches():
    single = TrainStream(10, seed=5, rank=0, world_size=1)
    ranks = [TrainStream(10, seed=5, rank=r, world_size=2) for r in range(2)]
    take = lambda stream, n: [next(it) for it in [iter(stream)] for _ in range(n)]  # noqa: E731
    one = take(single, 24)  # crosses two epoch boundaries
    two = [take(s, 12) for s in ranks]
    for t in range(6):  # global batch 4 = 2 per rank
        assert sorted(one[4 * t:4 * t + 4]) == sorted(two[0][2 * t:2 * t + 2] + two[1][2 * t:2 * t + 2])


def test_stream_resumes_where_it_stopped():
    full = TrainStream(7, seed=1)
    resumed = TrainStream(7, seed=1, start=9)
    it_full, it_resumed = iter(full), iter(resumed)
    head = [next(it_full) for _ in range(20)]
    assert [next(it_resumed) for _ in range(11)] == head[9:]
    assert sorted(index for index, _ in head[:7]) == list(range(7))  # an epoch is a permutation


def test_sigkill_then_resume_is_bit_identical(tmp_path, data_root):
    steps = ["train.iterations=14", "train.checkpoint_every=2"]
    reference = run_train(tmp_path / "reference", data_root, *steps)
    finish(reference)

    victim = run_train(tmp_path / "victim", data_root, *steps)
    last = tmp_path / "victim" / "last.pt"
    deadline = time.time() + 300
    while not last.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    assert victim.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    interrupted_at = load_checkpoint(last)["iteration"]
    assert 0 < interrupted_at < 14

    finish(run_train(tmp_path / "victim", data_root, *steps, resume=True))
    expected, actual = load_checkpoint(tmp_path / "reference" / "last.pt"), load_checkpoint(last)
    assert actual["iteration"] == expected["iteration"] == 14
    for key, value in expected["model"].items():
        assert torch.equal(actual["model"][key], value), key
    momentum = lambda ckpt: [s["momentum_buffer"] for s in ckpt["optimizer"]["state"].values()]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(momentum(actual), momentum(expected)))
    log = [json.loads(line) for line in (tmp_path / "victim" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["iteration"] == 14


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, data_root):
    # BatchNorm in eval mode: CPU has no SyncBatchNorm, and per-rank batch statistics would differ by design.
    common = ["train.iterations=4", "train.checkpoint_every=4", "train.bn_eval=true", "train.lr=0.5"]
    env = {"OMP_NUM_THREADS": "1"}
    one = run_train(tmp_path / "one", data_root, *common, "train.batch_size=4", env=env)
    finish(one)
    two = run_train(tmp_path / "two", data_root, *common, "train.batch_size=2", env=env, nproc=2)
    finish(two)
    a, b = load_checkpoint(tmp_path / "one" / "last.pt"), load_checkpoint(tmp_path / "two" / "last.pt")
    assert a["iteration"] == b["iteration"] == 4
    for key, value in a["model"].items():
        if value.is_floating_point():
            torch.testing.assert_close(b["model"][key], value, atol=2e-6, rtol=1e-5)
    # The comparison means something only if training moved the weights well beyond that tolerance.
    torch.manual_seed(0)
    initial = build_model(Config.from_dict(a["config"]).model).state_dict()
    moved = [k for k, v in a["model"].items() if v.is_floating_point() and (v - initial[k]).abs().max() > 1e-3]
    # (With eval-mode BN and random weights the signal fades with depth, so mostly the later layers move.)
    assert len(moved) >= 10 and any(k.startswith("backbone.") for k in moved), moved


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, data_root, monkeypatch):
    import segkit.engine.trainer as trainer

    real_build_loss = trainer.build_loss

    class Poisoned(torch.nn.Module):
        """The real loss, but NaN on its 4th call."""

        def __init__(self, loss):
            super().__init__()
            self.loss, self.calls = loss, 0

        def forward(self, logits, target):
            self.calls += 1
            value = self.loss(logits, target)
            return value * float("nan") if self.calls == 4 else value

    def poisoned(*args, **kwargs):
        return Poisoned(real_build_loss(*args, **kwargs))

    monkeypatch.setattr(trainer, "build_loss", poisoned)
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"),
                    data=DataConfig(crop_size=(65, 129), workers=0),
                    train=TrainConfig(iterations=10, batch_size=2, checkpoint_every=2, eval_every=0, log_every=1))
    with pytest.raises(UserError, match="the loss became nan at iteration 4"):
        train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_resume_without_checkpoint_is_a_user_error(tmp_path, data_root):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"), data=DataConfig(crop_size=(65, 129)))
    with pytest.raises(UserError, match="--resume found no"):
        train(config, tmp_path / "empty", data_root=str(data_root), resume=True, device="cpu", progress=False)


def test_work_dir_contents_and_log(tmp_path, data_root):
    config = Config(name="tiny", model=ModelConfig(backbone="mobilenet_v3_small"),
                    data=DataConfig(crop_size=(65, 129), workers=0),
                    train=TrainConfig(iterations=4, batch_size=2, checkpoint_every=2, eval_every=2, log_every=2))
    summary = train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {"config.json", "log.jsonl", "last.pt", "best.pt", "curves.png"}
    assert json.loads((run / "config.json").read_text())["train"]["iterations"] == 4
    records = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if "loss" in r] == [2, 4]
    evals = [r for r in records if "val_miou" in r]
    assert [r["iteration"] for r in evals] == [2, 4] and 0 <= summary["best_miou"] <= 100
    assert load_checkpoint(run / "best.pt")["best_miou"] == pytest.approx(max(r["val_miou"] for r in evals))
    # The learning rate followed the poly schedule to zero.
    assert [r["lr"] for r in records if "loss" in r][-1] == 0.0


def test_optimizer_choice_and_no_decay_groups():
    from segkit.engine.trainer import build_optimizer

    model = build_model(ModelConfig(backbone="mobilenet_v3_small"))
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", weight_decay=4e-5))
    adamw = build_optimizer(model, TrainConfig(optimizer="adamw", lr=1e-3, weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD) and isinstance(adamw, torch.optim.AdamW)
    decayed, undecayed = adamw.param_groups
    assert decayed["weight_decay"] == 1e-4 and undecayed["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim <= 1 for p in undecayed["params"])
    with pytest.raises(UserError, match="train.optimizer='adam' is unknown"):
        build_optimizer(model, TrainConfig(optimizer="adam"))


def test_training_crops_must_lie_on_the_pixel_grid(tmp_path, data_root):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"), data=DataConfig(crop_size=(64, 128)))
    with pytest.raises(UserError, match=r"data.crop_size=64,128 is off the pixel grid .* use data.crop_size=65,129"):
        train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    assert not (tmp_path / "run").exists()
