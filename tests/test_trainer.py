"""The training engine: resumable stream, exact resume after SIGKILL, DDP = one process, non-finite loss."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from segkit.cli import user_message
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig, validate
from segkit.data.labels import CLASS_NAMES
from segkit.data.synthetic import make_synthetic
from segkit.checkpoint import load_checkpoint
from segkit.engine.runlog import tag_name
from segkit.engine.trainer import train
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


@pytest.fixture(scope="module")
def odd_data_root(tmp_path_factory):
    """7 training images: not divisible by 2 processes."""
    root = tmp_path_factory.mktemp("synthetic7")
    make_synthetic(root, train=7, val=1, height=96, width=192, seed=4)
    return root


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(tmp_path, odd_data_root):
    # BatchNorm in eval mode: CPU has no SyncBatchNorm, and per-rank batch statistics would differ by design.
    # 4 steps of 4 samples on 7 images: two epoch boundaries, an odd data set.
    common = ["train.iterations=4", "train.checkpoint_every=4", "train.bn_eval=true", "train.lr=0.5"]
    env = {"OMP_NUM_THREADS": "1"}
    one = run_train(tmp_path / "one", odd_data_root, *common, "train.batch_size=4", env=env)
    finish(one)
    two = run_train(tmp_path / "two", odd_data_root, *common, "train.batch_size=2", env=env, nproc=2)
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
    with pytest.raises(UserError, match=r"^work_dir='.*empty' holds no last.pt to resume from; start a new run") as exc:
        train(config, tmp_path / "empty", data_root=str(data_root), resume=True, device="cpu", progress=False)
    # A tool shows the flag in place of the parameter.
    assert user_message(exc.value).startswith(f"--work-dir '{tmp_path / 'empty'}' holds no last.pt")


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
    # The logged rate is the one the step used: poly(0.9) at steps 2 and 4 of 4 -> factors (1 - 1/4)^0.9, (1/4)^0.9
    lrs = [r["lr"] for r in records if "loss" in r]
    assert lrs == pytest.approx([0.01 * 0.75 ** 0.9, 0.01 * 0.25 ** 0.9])

    # TensorBoard: the training windows, every validation's scores and pictures, at their iterations
    events = read_events(run)
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    window_tags = {"train/loss", "train/lr", "train/it_per_s", "train/data_time"}
    val_tags = {"val/miou", "val/miou_full", "val/miou_half", "val/iou_full/road", "val/iou_half/road"}
    assert window_tags | val_tags <= scalars
    names = {f"val/iou_{r}/{tag_name(n)}" for r in ("full", "half") for n in CLASS_NAMES}
    assert scalars - window_tags - val_tags <= names and "val/iou_full/traffic_light" in names
    for tag in window_tags:
        assert [e.step for e in events.Scalars(tag)] == [2, 4], tag
    assert [e.value for e in events.Scalars("train/lr")] == pytest.approx(lrs)
    assert [e.step for e in events.Scalars("val/miou")] == [2, 4]
    assert [e.value for e in events.Scalars("val/miou")] == pytest.approx([r["val_miou"] for r in evals], abs=1e-4)
    assert images == {"val/overlay_full/0", "val/overlay_full/1"}  # 2 validation images, the first resolution
    for tag in images:
        pictures = events.Images(tag)
        assert [p.step for p in pictures] == [2, 4] and (pictures[0].height, pictures[0].width) == (96, 2 * 192)


def read_events(work_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(work_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def test_a_resumed_run_drops_the_events_an_interrupted_process_wrote_after_its_checkpoint(tmp_path, data_root):
    from torch.utils.tensorboard import SummaryWriter

    config = Config(name="tiny", model=ModelConfig(backbone="mobilenet_v3_small"),
                    data=DataConfig(crop_size=(65, 129), workers=0),
                    train=TrainConfig(iterations=2, batch_size=2, checkpoint_every=2, eval_every=0, log_every=1))
    train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    orphans = SummaryWriter(str(tmp_path / "run" / "tensorboard"))  # as if killed after a validation at 3
    orphans.add_scalar("val/miou", 99.0, 3)
    orphans.close()
    config.train.iterations = 4
    train(config, tmp_path / "run", data_root=str(data_root), resume=True, device="cpu", progress=False)
    events = read_events(tmp_path / "run")
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3, 4]
    assert [e.step for e in events.Scalars("val/miou")] == [2, 4]  # 3 was the interrupted process's
    assert 99.0 not in [e.value for e in events.Scalars("val/miou")]
    # A new run in the same folder starts a new stream.
    config.train.iterations = 1
    train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    assert [e.step for e in read_events(tmp_path / "run").Scalars("val/miou")] == [1]


def test_log_records_the_setup_and_peak_memory_of_each_start(tmp_path, data_root):
    # Two tiny starts in one folder: 2 iterations, then resumed to 3. Each start logs its setup and its peak memory.
    config = Config(name="tiny", model=ModelConfig(backbone="mobilenet_v3_small"),
                    data=DataConfig(crop_size=(65, 129), workers=0),
                    train=TrainConfig(iterations=2, batch_size=2, checkpoint_every=2, eval_every=0, log_every=2,
                                      channels_last=False))
    train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    config.train.iterations = 3
    train(config, tmp_path / "run", data_root=str(data_root), resume=True, device="cpu", progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    setups = [(r["iteration"], r["setup"]) for r in records if "setup" in r]
    assert [iteration for iteration, _ in setups] == [0, 2]
    assert setups[0][1] == {"device": "cpu", "gpu": None, "world_size": 1, "amp": None, "channels_last": False,
                            "compile": False, "workers": 0}
    peaks = [(r["iteration"], r["peak_memory"]) for r in records if "peak_memory" in r]
    assert [iteration for iteration, _ in peaks] == [2, 3] and all(len(ranks) == 1 for _, ranks in peaks)
    for _, (memory,) in peaks:
        assert memory["peak_rss_gib"] > 0 and memory["peak_allocated_gib"] is None is memory["peak_reserved_gib"]
    assert records[-1] == {"iteration": 3, "peak_memory": peaks[-1][1]}


def test_optimizer_choice_and_no_decay_groups():
    from segkit.config import OptimizerConfig
    from segkit.engine.trainer import build_optimizer

    model = build_model(ModelConfig(backbone="mobilenet_v3_small"))
    sgd = build_optimizer(model, OptimizerConfig(name="sgd", weight_decay=4e-5))
    adamw = build_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=1e-4))
    assert isinstance(sgd, torch.optim.SGD) and isinstance(adamw, torch.optim.AdamW)
    decayed, undecayed = adamw.param_groups
    assert decayed["weight_decay"] == 1e-4 and undecayed["weight_decay"] == 0.0
    assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim <= 1 for p in undecayed["params"])
    with pytest.raises(UserError, match="optimizer.name='adam' is unknown"):
        validate(Config(optimizer=OptimizerConfig(name="adam")))


def test_training_crops_must_lie_on_the_pixel_grid(tmp_path, data_root):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"), data=DataConfig(crop_size=(64, 128)))
    with pytest.raises(UserError, match=r"data.crop_size=64,128 is off the pixel grid .* use data.crop_size=65,129"):
        train(config, tmp_path / "run", data_root=str(data_root), device="cpu", progress=False)
    assert not (tmp_path / "run").exists()


def descendants(pid):
    """Process ids below ``pid`` (torchrun's workers may sit in their own process groups)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_when_checkpointed(process, last, deadline_s=300):
    deadline = time.time() + deadline_s
    while not last.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    for pid in descendants(process.pid) + [process.pid]:  # the workers and their launcher, at once
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.communicate()


def test_ddp_sigkill_then_resume_is_bit_identical_with_per_rank_dropout(tmp_path, data_root):
    # R-ASPP has dropout: each rank draws its own masks (seed + rank), saves its own RNG state and gets it back.
    steps = ["model.head=raspp", "model.head_channels=64", "train.iterations=6", "train.checkpoint_every=2"]
    env = {"OMP_NUM_THREADS": "1"}
    finish(run_train(tmp_path / "reference", data_root, *steps, env=env, nproc=2))
    victim = run_train(tmp_path / "victim", data_root, *steps, env=env, nproc=2)
    last = tmp_path / "victim" / "last.pt"
    kill_when_checkpointed(victim, last)
    interrupted_at = load_checkpoint(last)["iteration"]
    assert 0 < interrupted_at < 6, "the run finished before it could be killed"
    finish(run_train(tmp_path / "victim", data_root, *steps, resume=True, env=env, nproc=2))
    expected, actual = load_checkpoint(tmp_path / "reference" / "last.pt"), load_checkpoint(last)
    assert actual["iteration"] == 6 and actual["world_size"] == 2
    for key, value in expected["model"].items():
        assert torch.equal(actual["model"][key], value), key
    # one RNG state per rank, and the ranks' dropout masks differ
    states = actual["rng"]
    assert len(states) == 2
    masks = []
    for state in states:
        torch.set_rng_state(state["torch"])
        masks.append(torch.nn.functional.dropout(torch.ones(1000), 0.5) > 0)
    assert not torch.equal(masks[0], masks[1])


def test_resume_reads_the_checkpoint_on_the_cpu_whatever_the_device(tmp_path, monkeypatch):
    # On a GPU, loading last.pt onto the device made the saved NumPy RNG state a CUDA tensor (.numpy() failed).
    import segkit.engine.trainer as trainer
    from segkit.engine.distributed import Runtime

    config = Config(model=ModelConfig(backbone="mobilenet_v3_small")).resolved()
    state = trainer.build_training(config, Runtime())
    state.iteration = 3
    trainer.save(state, config, Runtime(), tmp_path / "last.pt")
    seen = []
    real_load = trainer.load_checkpoint
    monkeypatch.setattr(trainer, "load_checkpoint", lambda path, map_location="cpu": seen.append(map_location)
                        or real_load(path, map_location=map_location))
    fresh = trainer.build_training(config, Runtime())
    runtime = Runtime(device=torch.device("cuda", 0))  # as on a GPU; nothing here touches the device
    trainer.restore(fresh, tmp_path / "last.pt", config, runtime)
    assert fresh.iteration == 3 and seen == ["cpu"]


def test_resume_refuses_another_model_or_batch(tmp_path, data_root):
    finish(run_train(tmp_path / "run", data_root, "train.iterations=2", "train.checkpoint_every=2"))
    run = tmp_path / "run"
    for change, messages in (("model.head_channels=64", ["another model (model.head_channels differ)",
                                                          f"another folder (not --work-dir '{run}')"]),  # the flag
                             ("train.batch_size=3", ["train.batch_size=2; resume with the same"])):
        process = run_train(run, data_root, "train.iterations=4", change, resume=True)
        out, err = process.communicate(timeout=300)
        assert process.returncode == 2 and all(m in err for m in messages) and "Traceback" not in err, err


