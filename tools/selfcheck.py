#!/usr/bin/env python
"""One-call self-check of the whole pipeline on a device, with one summary table (issue 11, item 12).

    python tools/selfcheck.py --cuda --json selfcheck.json          # a lent GPU: sized for < 5 min, one H100
    python tools/selfcheck.py --device cpu --quick --json out.json   # the same steps, shrunk (CI, ~1 min)

Everything runs on a synthetic city made on the spot in a temporary folder (nothing from the network), each step
in its own process, so one that fails or hangs leaves the others their measurement:

  data     segkit.data.synthetic: train and val images (1024x2048, Cityscapes' size; --quick: 128x256)
  train    tools/train.py configs/lraspp_large.py at the recipe's 769x769 crop and batch 8 (AMP and channels_last
           as the config has them on CUDA) for 300 iterations: steady-state images/s from log.jsonl's it_per_s
           windows (the first windows, start-up and autotuning, left out) and the peak GPU memory, read by a
           wrapper that runs tools/train.py's main() in-process and then asks torch.cuda.max_memory_allocated()
  eval     tools/eval.py --resolution full half on the synthetic val split: mIoU and ms/image (model time)
  predict  segkit.deploy.Predictor (backend torch) on a 1024x2048 photo at full and half resolution and on a
           512x1024 photo at full: median ms of 20 calls after warm-up (predict returns numpy, so it syncs)
  resume   an uninterrupted run beside one killed with SIGKILL once its first last.pt exists, then continued
           with --resume: both must end with the same weights (asserted bit for bit on the CPU; on CUDA the
           largest difference is reported, since cuDNN and AMP need not be deterministic)
  ddp      torchrun --nproc_per_node 2 tools/train.py (the same wrapper) when two GPUs exist, else skipped

Every step runs even when an earlier one failed (eval and predict fall back to untrained weights when training
gave no checkpoint); a failed step shows FAILED and its one-line reason. --budget-s stops starting steps (they
show "skipped (budget)") and cuts a running one when the time is spent. Exit status: 0 when no step failed, 1
otherwise, 2 for a usage error. (_train, _data, _predict and _untrained as first argument are the steps' own
child processes.) The parent process never imports segkit and uses torch only to ask what devices exist and to
read checkpoints, without a CUDA context (its children own the GPU and may fail alone): the functions that need
them import them inside, on purpose.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRAIN_PY = ROOT / "tools" / "train.py"
EVAL_PY = ROOT / "tools" / "eval.py"
SELF = Path(__file__).resolve()
STEPS = ("data", "train", "eval", "predict", "resume", "ddp")
GIB = 1024 ** 3
EXCEPTION_LINE = re.compile(r"^(?:\[rank\d+\]:\s*)?([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))(?::\s|:$|$)")
RUNNING: list = []  # the child processes started and not yet reaped (killed on interruption)


# --------------------------------------------------------------------------------------------------- sizes
@dataclass
class Plan:
    """What each step does; ``full`` for a GPU, ``quick`` shrinks everything for a CPU (tests, CI)."""

    config: str  # the training config, relative to the repository
    train_images: int
    val_images: int
    image_size: tuple[int, int]  # (height, width) of the synthetic images; val "full" resolution = this
    crop: tuple[int, int] | None  # None: the config's own (769x769)
    batch: int | None  # None: the config's own (8)
    iterations: int
    log_every: int
    warm_windows: int  # log windows left out of the steady-state rate
    resume_crop: tuple[int, int]
    resume_batch: int
    resume_iterations: int
    resume_checkpoint_every: int
    ddp_iterations: int
    predict_warmup: int
    predict_repeats: int
    min_start_s: float  # a step does not start with less budget than this
    caps: dict = field(default_factory=dict)  # per-step time limits (s)


def full_plan() -> Plan:
    return Plan(config="configs/lraspp_large.py", train_images=16, val_images=10, image_size=(1024, 2048),
                crop=None, batch=None, iterations=300, log_every=20, warm_windows=2,
                resume_crop=(257, 257), resume_batch=8, resume_iterations=40, resume_checkpoint_every=10,
                ddp_iterations=100, predict_warmup=3, predict_repeats=20, min_start_s=15.0,
                caps={"data": 60, "train": 150, "eval": 60, "predict": 60, "resume": 120, "ddp": 100})


def quick_plan() -> Plan:
    return Plan(config="configs/lraspp_small.py", train_images=4, val_images=2, image_size=(128, 256),
                crop=(65, 129), batch=2, iterations=12, log_every=4, warm_windows=1,
                resume_crop=(65, 129), resume_batch=2, resume_iterations=12, resume_checkpoint_every=4,
                ddp_iterations=8, predict_warmup=1, predict_repeats=5, min_start_s=2.0,
                caps={"data": 60, "train": 60, "eval": 60, "predict": 60, "resume": 90, "ddp": 60})


# ------------------------------------------------------------------------------------------------- results
@dataclass
class Step:
    step: str
    status: str = "skipped"  # ok | FAILED | skipped
    wall_s: float | None = None
    summary: str = ""
    reason: str | None = None
    metrics: dict = field(default_factory=dict)
    commands: list = field(default_factory=list)
    log_tail: list = field(default_factory=list)


class StepFailed(Exception):
    """A step's one-line reason (and, where there is one, the tail of the log that explains it)."""

    def __init__(self, reason: str, tail: list[str] | None = None):
        super().__init__(reason)
        self.tail = tail or []


class Budget:
    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, time.perf_counter()

    @property
    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.start)


# ----------------------------------------------------------------------------------------------- processes
def child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not any(Path(p).resolve() == ROOT for p in paths):
        paths.append(str(ROOT))  # after what the caller put first (e.g. the carried wheels)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"  # albumentations' import-time version check: 2 s without internet
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def start(cmd: list[str], log_path: Path, env: dict | None = None) -> subprocess.Popen:
    """Start ``cmd`` in its own process group (so a kill takes its loader workers and ranks too)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")
    log.write("$ " + shlex.join(cmd) + "\n")
    log.flush()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    proc.log_file = log  # type: ignore[attr-defined]
    RUNNING.append(proc)
    return proc


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group we started for ``proc`` (by its id)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    if proc in RUNNING:
        RUNNING.remove(proc)


def finish(proc: subprocess.Popen, deadline: float, what: str) -> None:
    """Wait for ``proc`` until ``deadline`` (perf_counter); StepFailed on a timeout or a non-zero exit."""
    try:
        proc.wait(timeout=max(0.0, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        kill(proc)
        proc.log_file.close()
        raise StepFailed(f"{what} still running at the step's time limit; killed", tail_lines(proc)) from None
    if proc in RUNNING:
        RUNNING.remove(proc)
    proc.log_file.close()
    if proc.returncode != 0:
        raise StepFailed(f"{what} exited {proc.returncode}: {failure_line(proc)}", tail_lines(proc))


def run(cmd: list[str], log_path: Path, deadline: float, what: str, env: dict | None = None) -> None:
    finish(start(cmd, log_path, env), deadline, what)


def tail_lines(proc, count: int = 15) -> list[str]:
    lines = Path(proc.log_file.name).read_text(errors="replace").splitlines()
    return [line[:300] for line in lines[-count:]]


def failure_line(proc) -> str:
    """The one line that says why: ``error: ...`` of a segkit tool, else the last exception line of a traceback
    (not torchrun's ChildFailedError, which only says that a rank failed), else the last line."""
    lines = [line.strip() for line in Path(proc.log_file.name).read_text(errors="replace").splitlines()
             if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: "):][:300]
    for line in reversed(lines):
        match = EXCEPTION_LINE.match(line)
        if match and "ChildFailedError" not in match.group(1):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def python() -> list[str]:
    return [sys.executable]


def size_text(size) -> str:
    return f"{size[0]}x{size[1]}"


# ---------------------------------------------------------------------------------------------------- steps
class SelfCheck:
    def __init__(self, args, plan: Plan, work: Path, info: dict):
        self.args, self.plan, self.work, self.info = args, plan, work, info
        self.device = args.device
        self.data = work / "data"
        self.logs = work / "logs"
        self.workers = args.workers
        self.checkpoint: Path | None = None  # what eval and predict use
        self.single_gpu_rate: float | None = None
        self.twin_run = self.device != "cpu"  # resume: a second uninterrupted run, the run-to-run yardstick

    # -- data
    def step_data(self, step: Step, deadline: float) -> None:
        p = self.plan
        cmd = python() + [str(SELF), "_data", str(self.data), str(p.train_images), str(p.val_images),
                          str(p.image_size[0]), str(p.image_size[1]), str(max(1, self.args.cpus))]
        step.commands.append(shlex.join(cmd))
        start_s = time.perf_counter()
        run(cmd, self.logs / "data.log", deadline, "make_synthetic")
        seconds = time.perf_counter() - start_s
        step.metrics = {"train_images": p.train_images, "val_images": p.val_images,
                        "size": list(p.image_size), "seconds": seconds}
        step.summary = (f"{p.train_images} train + {p.val_images} val images, {size_text(p.image_size)} "
                        f"(seed 0, {self.args.cpus} processes)")

    # -- training
    def train_overrides(self, iterations: int, checkpoint_every: int, crop, batch, log_every: int,
                        workers: int | None = None) -> list[str]:
        sets = [f"train.iterations={iterations}", f"train.checkpoint_every={checkpoint_every}",
                "train.eval_every=0", f"train.log_every={log_every}", f"data.root={self.data}",
                f"data.workers={self.workers if workers is None else workers}"]
        if crop is not None:
            sets.append(f"data.crop_size={crop[0]},{crop[1]}")
        if batch is not None:
            sets.append(f"train.batch_size={batch}")
        out = []
        for item in sets:
            out += ["--set", item]
        return out

    def train_cmd(self, work_dir: Path, stats: Path, overrides: list[str], resume: bool = False,
                  launcher: list[str] | None = None) -> list[str]:
        cmd = (launcher or python()) + [str(SELF), "_train", str(stats), "--", self.plan.config,
                                        "--work-dir", str(work_dir), "--device", self.device, "--no-progress"]
        return cmd + overrides + (["--resume"] if resume else [])

    def step_train(self, step: Step, deadline: float) -> None:
        p = self.plan
        work_dir, stats = self.work / "train", self.work / "train_stats.json"
        cmd = self.train_cmd(work_dir, stats, self.train_overrides(p.iterations, p.iterations, p.crop, p.batch,
                                                                   p.log_every))
        step.commands.append(shlex.join(cmd))
        start_s = time.perf_counter()
        run(cmd, self.logs / "train.log", deadline, "tools/train.py")
        wall = time.perf_counter() - start_s
        info = read_stats(stats)
        rate = steady_rate(work_dir / "log.jsonl", info["batch_size"], p.warm_windows)
        for name in ("best.pt", "last.pt"):
            if (work_dir / name).is_file():
                self.checkpoint = work_dir / name
                break
        m = {**info, **rate, "iterations": p.iterations, "wall_s": wall,
             "images_per_s_overall": p.iterations * info["batch_size"] / wall}
        self.single_gpu_rate = rate["images_per_s"]
        step.metrics = m
        step.summary = (f"{info['config']} {size_text(info['crop'])} batch {info['batch_size']} "
                        f"{precision_text(info)}, {info['workers']} loader workers: "
                        f"{rate['images_per_s']:.1f} img/s steady ({rate['it_per_s']:.2f} it/s over "
                        f"{rate['steady_steps']} steps; first {rate['warm_steps']} steps "
                        f"{rate['warm_images_per_s']:.1f} img/s), "
                        f"{memory_text(info)}, loss {rate['first_loss']:.2f}->{rate['last_loss']:.2f}, "
                        f"val mIoU {miou_text(info.get('best_miou'))} (half)")

    # -- evaluation
    def ensure_checkpoint(self, step: Step, deadline: float) -> Path:
        if self.checkpoint is not None and self.checkpoint.is_file():
            return self.checkpoint
        path = self.work / "untrained.pt"
        if not path.is_file():
            cmd = python() + [str(SELF), "_untrained", str(path), self.plan.config]
            step.commands.append(shlex.join(cmd))
            run(cmd, self.logs / "untrained.log", deadline, "untrained checkpoint")
        step.metrics["untrained_weights"] = True
        self.checkpoint = path
        return path

    def step_eval(self, step: Step, deadline: float) -> None:
        checkpoint = self.ensure_checkpoint(step, deadline)
        out = self.work / "eval.json"
        cmd = python() + [str(EVAL_PY), "--checkpoint", str(checkpoint), "--data-root", str(self.data),
                          "--resolution", "full", "half", "--device", self.device, "--json", str(out),
                          "--workers", str(self.workers)]
        step.commands.append(shlex.join(cmd))
        run(cmd, self.logs / "eval.log", deadline, "tools/eval.py")
        scores = json.loads(out.read_text())
        for r in ("full", "half"):
            step.metrics[r] = {"miou": scores[r]["miou"], "ms_per_image": scores[r]["ms_per_image"]}
        step.metrics["images"] = scores["images"]
        size = self.plan.image_size
        step.summary = "; ".join(
            f"{r} ({size_text(size if r == 'full' else (size[0] // 2, size[1] // 2))}): mIoU "
            f"{step.metrics[r]['miou']:.2f} %, {step.metrics[r]['ms_per_image']:.1f} ms/image" for r in ("full", "half")
        ) + f" ({scores['images']} val images{', untrained weights' if step.metrics.get('untrained_weights') else ''})"

    # -- predictor latency
    def step_predict(self, step: Step, deadline: float) -> None:
        checkpoint = self.ensure_checkpoint(step, deadline)
        out = self.work / "predict.json"
        photos = sorted((self.data / "leftImg8bit" / "val").glob("*/*_leftImg8bit.png"))
        photo = str(photos[0]) if photos else "noise"
        cmd = python() + [str(SELF), "_predict", str(checkpoint), self.device, photo, str(self.plan.image_size[0]),
                          str(self.plan.image_size[1]), str(self.plan.predict_warmup),
                          str(self.plan.predict_repeats), str(out)]
        step.commands.append(shlex.join(cmd))
        run(cmd, self.logs / "predict.log", deadline, "Predictor")
        result = json.loads(out.read_text())
        step.metrics.update(result)
        parts = [f"{size_text(result[k]['photo'])} {result[k]['resolution']} {result[k]['median_ms']:.1f} ms"
                 for k in ("full", "half", "small_full")]
        step.summary = (f"Predictor torch on {result['device']}: " + ", ".join(parts) +
                        f" (median of {self.plan.predict_repeats} after {self.plan.predict_warmup} warm-up"
                        f"{'; noise photo' if photo == 'noise' else ''}"
                        f"{'; untrained weights' if step.metrics.get('untrained_weights') else ''}), "
                        f"{memory_text(result)}")

    # -- SIGKILL + --resume
    def step_resume(self, step: Step, deadline: float) -> None:
        p = self.plan
        side_by_side = 3 if self.twin_run else 2
        overrides = self.train_overrides(p.resume_iterations, p.resume_checkpoint_every, p.resume_crop,
                                         p.resume_batch, p.resume_checkpoint_every,
                                         workers=self.workers // side_by_side)
        # Runs share the machine: a share of the cores' threads each, and the same count for the resumed run (on
        # the CPU a different thread count may round differently, which is not what this step asks about).
        threads = str(max(1, self.args.cpus // side_by_side))
        env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        ref_dir, cut_dir = self.work / "resume_reference", self.work / "resume_killed"
        ref_cmd = self.train_cmd(ref_dir, self.work / "ref_stats.json", overrides)
        cut_cmd = self.train_cmd(cut_dir, self.work / "cut_stats.json", overrides)
        resume_cmd = self.train_cmd(cut_dir, self.work / "resumed_stats.json", overrides, resume=True)
        step.commands += [shlex.join(c) for c in (ref_cmd, cut_cmd, resume_cmd)]
        # The uninterrupted run and the one to kill run side by side (one start-up's time, not two). On CUDA a
        # second uninterrupted run beside them measures how far two runs differ anyway (nondeterministic kernels),
        # the yardstick for the resumed run's difference.
        ref = start(ref_cmd, self.logs / "resume_reference.log", env)
        cut = start(cut_cmd, self.logs / "resume_killed.log", env)
        procs = [ref, cut]
        twin_dir = self.work / "resume_reference2"
        if self.twin_run:
            twin_cmd = self.train_cmd(twin_dir, self.work / "ref2_stats.json", overrides)
            step.commands.append(shlex.join(twin_cmd))
            procs.append(start(twin_cmd, self.logs / "resume_reference2.log", env))
        try:
            last = cut_dir / "last.pt"
            while not last.is_file() and cut.poll() is None and time.perf_counter() < deadline:
                time.sleep(0.005)
            if cut.poll() is not None:
                cut.log_file.close()
                if cut.returncode != 0:
                    raise StepFailed(f"the run to kill exited {cut.returncode} before its first checkpoint: "
                                     f"{failure_line(cut)}", tail_lines(cut))
                raise StepFailed("the run to kill finished before it could be killed (raise resume iterations)")
            if not last.is_file():
                kill(cut)
                cut.log_file.close()
                raise StepFailed("no last.pt from the run to kill at the step's time limit", tail_lines(cut))
            kill(cut)  # SIGKILL, right after a checkpoint landed (maybe while it writes the next one)
            cut.log_file.write(f"\n[selfcheck] SIGKILL sent after {last} appeared\n")
            cut.log_file.close()
            killed_at = checkpoint_iteration(last)
            if killed_at >= p.resume_iterations:
                raise StepFailed(f"the run to kill had finished all {killed_at} iterations when it was killed")
            step.metrics["killed_at"] = killed_at
            run(resume_cmd, self.logs / "resume_resumed.log", deadline, "tools/train.py --resume", env)
            finish(ref, deadline, "the uninterrupted run")
            if len(procs) == 3:
                finish(procs[2], deadline, "the second uninterrupted run")
        finally:
            for proc in procs:
                if proc.poll() is None:
                    kill(proc)
        for path in (ref_dir / "last.pt", last):
            done = checkpoint_iteration(path)
            if done != p.resume_iterations:
                raise StepFailed(f"{path.parent.name}/last.pt is at iteration {done}, not {p.resume_iterations}")
        diff = compare_weights(ref_dir / "last.pt", last)
        step.metrics.update(diff, iterations=p.resume_iterations, checkpoint_every=p.resume_checkpoint_every,
                            crop=list(p.resume_crop), batch_size=p.resume_batch)
        what = (f"killed (SIGKILL) at iteration {killed_at}/{p.resume_iterations}, resumed with --resume: ")
        if diff["identical"]:
            step.summary = what + f"weights bit-identical to the uninterrupted run ({diff['tensors']} tensors)"
        else:
            step.summary = what + (f"weights differ from the uninterrupted run: max |diff| "
                                   f"{diff['max_abs_diff']:.3g} in {diff['tensors_differing']}/{diff['tensors']} "
                                   f"tensors")
            if self.device == "cpu":
                raise StepFailed(step.summary)
        if len(procs) == 3:
            twin = compare_weights(ref_dir / "last.pt", twin_dir / "last.pt")
            step.metrics["run_to_run"] = twin
            spread = "bit-identical" if twin["identical"] else f"max |diff| {twin['max_abs_diff']:.3g}"
            step.summary += (f"; two uninterrupted runs: {spread} (the trainer does not set deterministic mode: "
                             "reported, not asserted)")

    # -- DDP
    def step_ddp(self, step: Step, deadline: float) -> None:
        p = self.plan
        work_dir, stats = self.work / "ddp", self.work / "ddp_stats.json"
        launcher = python() + ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
        cmd = self.train_cmd(work_dir, stats, self.train_overrides(p.ddp_iterations, p.ddp_iterations, p.crop,
                                                                   p.batch, p.log_every), launcher=launcher)
        step.commands.append(shlex.join(cmd))
        start_s = time.perf_counter()
        run(cmd, self.logs / "ddp.log", deadline, "torchrun tools/train.py")
        wall = time.perf_counter() - start_s
        ranks = [read_stats(Path(f"{stats}.rank{r}")) for r in range(2)]
        rate = steady_rate(work_dir / "log.jsonl", ranks[0]["batch_size"] * 2, p.warm_windows)
        step.metrics = {**rate, "wall_s": wall, "world_size": 2, "batch_per_gpu": ranks[0]["batch_size"],
                        "peak_allocated_gib": [r.get("peak_allocated_gib") for r in ranks],
                        "peak_reserved_gib": [r.get("peak_reserved_gib") for r in ranks]}
        scaling = ""
        if self.single_gpu_rate:
            step.metrics["scaling_vs_1gpu"] = rate["images_per_s"] / self.single_gpu_rate
            scaling = f", {step.metrics['scaling_vs_1gpu']:.2f}x one {'GPU' if self.device == 'cuda' else 'process'}"
        step.summary = (f"2 ranks x batch {ranks[0]['batch_size']}: {rate['images_per_s']:.1f} img/s steady"
                        f"{scaling}; per rank: " + "; ".join(memory_text(r) for r in ranks))


# ----------------------------------------------------------------------------------------------- reading
def read_stats(path: Path) -> dict:
    if not path.is_file():
        raise StepFailed(f"the training wrapper wrote no {path.name}")
    info = json.loads(path.read_text())
    if "stats_error" in info:
        raise StepFailed(f"training ran, but reading its settings failed: {info['stats_error']}")
    return info


def steady_rate(log_path: Path, images_per_step: int, warm_windows: int) -> dict:
    """Images/s from log.jsonl's it_per_s windows, the first ``warm_windows`` (start-up) left out."""
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    windows, previous = [], 0
    for record in records:
        if "it_per_s" in record:
            steps = record["iteration"] - previous
            windows.append((steps, steps / record["it_per_s"], record["loss"]))
            previous = record["iteration"]
    if not windows:
        raise StepFailed(f"{log_path} has no it_per_s records")
    warm = min(warm_windows, len(windows) - 1)
    steady = windows[warm:]
    steps, seconds = sum(w[0] for w in steady), sum(w[1] for w in steady)
    warm_steps, warm_seconds = sum(w[0] for w in windows[:warm]), sum(w[1] for w in windows[:warm])
    return {"images_per_s": images_per_step * steps / seconds, "it_per_s": steps / seconds, "steady_steps": steps,
            "warm_steps": warm_steps,
            "warm_images_per_s": images_per_step * warm_steps / warm_seconds if warm_steps else float("nan"),
            "first_loss": windows[0][2], "last_loss": windows[-1][2]}


def checkpoint_iteration(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["iteration"])


def compare_weights(a: Path, b: Path) -> dict:
    import torch

    sa = torch.load(a, map_location="cpu", weights_only=True)["model"]
    sb = torch.load(b, map_location="cpu", weights_only=True)["model"]
    if sa.keys() != sb.keys():
        raise StepFailed("the two runs' checkpoints hold different tensors")
    max_diff, differing = 0.0, 0
    for key in sa:
        x, y = sa[key], sb[key]
        if not torch.equal(x, y):
            differing += 1
            if x.is_floating_point():
                max_diff = max(max_diff, (x.double() - y.double()).abs().max().item())
            else:
                max_diff = max(max_diff, float((x.long() - y.long()).abs().max().item()))
    return {"identical": differing == 0, "max_abs_diff": max_diff, "tensors_differing": differing,
            "tensors": len(sa)}


def miou_text(value) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def precision_text(info: dict) -> str:
    parts = [f"AMP {info['amp']}" if info.get("amp") else "fp32"]
    if info.get("channels_last"):
        parts.append("channels_last")
    return " ".join(parts)


def memory_text(info: dict) -> str:
    if info.get("peak_allocated_gib") is not None:
        return (f"peak GPU memory {info['peak_allocated_gib']:.2f} GiB allocated / "
                f"{info['peak_reserved_gib']:.2f} GiB reserved")
    return f"peak host RSS {info.get('peak_rss_gib', float('nan')):.2f} GiB"


# ------------------------------------------------------------------------------------------ child entry points
def peak_memory(device_type: str) -> dict:
    import resource

    import torch

    out = {"peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB,
           "peak_allocated_gib": None, "peak_reserved_gib": None}
    if device_type == "cuda" and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / GIB
        out["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / GIB
        out["gpu"] = torch.cuda.get_device_name()
    return out


def child_train(stats: str, argv: list[str]) -> None:
    """tools/train.py's main() in this process, then its peak memory and settings into ``stats`` (JSON)."""
    import runpy

    if argv and argv[0] == "--":
        argv = argv[1:]
    tool = runpy.run_path(str(TRAIN_PY))
    args = tool["parse_args"](argv)
    code = 0
    try:
        tool["main"](argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        try:
            info = train_info(args, code)
        except Exception as exc:  # noqa: BLE001 -- the run's own error is the one to see
            info = {"exit": code, "stats_error": f"{type(exc).__name__}: {exc}"}
        rank = os.environ.get("RANK")
        path = Path(stats if os.environ.get("WORLD_SIZE", "1") == "1" else f"{stats}.rank{rank}")
        path.write_text(json.dumps(info, indent=1))
    sys.exit(code)


def train_info(args, code: int) -> dict:
    import torch

    from segkit.config import load_config
    from segkit.engine.runlog import read_log
    from segkit.engine.trainer import amp_dtype

    config = load_config(args.config, args.overrides)
    use_cuda = (args.device or ("cuda" if torch.cuda.is_available() else "cpu")).startswith("cuda")
    dtype = amp_dtype(torch.device("cuda" if use_cuda else "cpu"), config.train.amp)
    best = max((r["val_miou"] for r in read_log(Path(args.work_dir) / "log.jsonl") if "val_miou" in r), default=None)
    return {"config": config.name, "crop": list(config.data.crop_size), "batch_size": config.train.batch_size,
            "amp": str(dtype).replace("torch.", "") if dtype is not None else None,
            "channels_last": config.train.channels_last, "workers": config.data.workers, "best_miou": best,
            "exit": code, **peak_memory("cuda" if use_cuda else "cpu")}


def child_data(root: str, train: str, val: str, height: str, width: str, processes: str) -> None:
    """The synthetic city (segkit.data.synthetic) into ``root``; images made in parallel, the same files as
    make_synthetic(root, train, val, height, width, seed=0) writes."""
    from segkit.data.synthetic import make_synthetic

    train_n, val_n, h, w, n = int(train), int(val), int(height), int(width), int(processes)
    start_s = time.perf_counter()
    if n <= 1:
        make_synthetic(root, train=train_n, val=val_n, height=h, width=w, seed=0)
    else:
        from concurrent.futures import ProcessPoolExecutor

        jobs = [(root, "train", i, h, w) for i in range(train_n)] + [(root, "val", i, h, w) for i in range(val_n)]
        with ProcessPoolExecutor(min(n, len(jobs) or 1)) as pool:
            list(pool.map(_one_image, jobs))
    print(f"wrote {train_n} train + {val_n} val images of {h}x{w} to {root} in {time.perf_counter() - start_s:.1f} s")


def _one_image(job) -> None:
    from segkit.data.synthetic import write_image

    write_image(*job, seed=0)


def child_untrained(path: str, config_path: str) -> None:
    """A checkpoint of the config's untrained model (what eval and predict use when training gave none)."""
    import torch

    from segkit.config import load_config
    from segkit.checkpoint import save_checkpoint
    from segkit.models import build_model

    config = load_config(config_path)
    torch.manual_seed(config.train.seed)
    save_checkpoint(path, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                           "iteration": 0})


def child_predict(checkpoint: str, device: str, photo: str, height: str, width: str, warmup: str, repeats: str,
                  out: str) -> None:
    """Median latency of Predictor.predict (backend torch) on a photo at full and half resolution, and on the
    photo area-downsampled by 2 at full resolution."""
    import cv2
    import numpy as np
    import torch

    from segkit.deploy.predictor import Predictor

    if photo == "noise":
        image = np.random.default_rng(0).integers(0, 256, (int(height), int(width), 3), dtype=np.uint8)
    else:
        image = cv2.cvtColor(cv2.imread(photo, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    small = cv2.resize(image, (image.shape[1] // 2, image.shape[0] // 2), interpolation=cv2.INTER_AREA)
    predictor = Predictor.from_checkpoint(checkpoint, backend="torch", device=device)
    result = {"device": str(predictor.backend.device), "backend": predictor.backend_name}
    for key, picture, resolution in (("full", image, "full"), ("half", image, "half"), ("small_full", small, "full")):
        for _ in range(int(warmup)):
            labels = predictor.predict(picture, resolution=resolution)
        times = []
        for _ in range(int(repeats)):
            start_s = time.perf_counter()
            labels = predictor.predict(picture, resolution=resolution)  # numpy out: the GPU has finished
            times.append(1000 * (time.perf_counter() - start_s))
        assert labels.shape == picture.shape[:2], (labels.shape, picture.shape)
        result[key] = {"photo": list(picture.shape[:2]), "resolution": resolution,
                       "median_ms": statistics.median(times), "min_ms": min(times)}
    result.update(peak_memory(torch.device(device).type))
    Path(out).write_text(json.dumps(result, indent=1))


CHILDREN = {"_train": None, "_data": child_data, "_untrained": child_untrained, "_predict": child_predict}


# ---------------------------------------------------------------------------------------------------- main
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuda", action="store_true", help="run on the GPU (same as --device cuda)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="cpu or cuda (default: cuda with --cuda, else cpu)")
    parser.add_argument("--quick", action="store_true",
                        help="shrink everything (128x256 images, 65x129 crops, MobileNetV3-Small, a few steps)")
    parser.add_argument("--budget-s", type=float, default=270.0,
                        help="wall-time budget: steps that would start with less left are skipped, a running "
                             "one is cut at it (default %(default)s)")
    parser.add_argument("--json", help="also write the table as JSON to this file")
    parser.add_argument("--work-dir", help="keep data, runs and logs here (default: a temporary folder, removed)")
    parser.add_argument("--log-dir", help="copy every step's log here")
    parser.add_argument("--workers", type=int, help="data loader workers (default: up to 12 on CUDA, 0 quick)")
    parser.add_argument("--ddp-gloo", action="store_true",
                        help="on the CPU, run the ddp step too (2 processes, gloo) instead of skipping it")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma list of steps (default: {','.join(STEPS)})")
    args = parser.parse_args(argv)
    if args.cuda and args.device == "cpu":
        parser.error("--cuda and --device cpu contradict each other")
    args.device = "cuda" if args.cuda else (args.device or "cpu")
    args.steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in args.steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    args.cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if args.workers is None:
        args.workers = 0 if args.quick else max(0, min(12, args.cpus - 2))
    return args


def environment(device: str) -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cuda_available": torch.cuda.is_available(), "gpus": 0, "gpu": None}
    if torch.cuda.is_available():  # no CUDA context here (it would hold GPU memory for the whole run)
        info["gpus"] = torch.cuda.device_count()
        info["cuda"] = torch.version.cuda
        try:
            names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                   text=True, timeout=10).stdout.strip().splitlines()
            info["gpu"] = names[0].strip() if names else None
        except (OSError, subprocess.SubprocessError):
            pass  # filled in from the first step that reports it
    return info


def format_table(report: dict) -> str:
    info = report["environment"]
    where = f"{info['gpu']} x{info['gpus']}" if report["device"] == "cuda" else f"CPU, {info['cpus']} cores"
    head = (f"segkit self-check on {report['device']} ({where}), torch {info['torch']}, python {info['python']}"
            f"{', --quick' if report['quick'] else ''}")
    rows = [("step", "status", "wall s", "result")]
    for s in report["steps"]:
        text = s["summary"] if s["status"] == "ok" else (s["reason"] or "")
        wall = f"{s['wall_s']:.1f}" if s["wall_s"] is not None else "-"
        rows.append((s["step"], s["status"], wall, text))
    rows.append(("total", "ok" if report["ok"] else "FAILED", f"{report['total_wall_s']:.1f}",
                 f"budget {report['budget_s']:.0f} s; {report['failed_count']} failed, "
                 f"{report['skipped_count']} skipped"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [head]
    for index, row in enumerate(rows):
        lines.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")
        if index == 0:
            lines.append("-" * (sum(widths) + 6 + 60))
    return "\n".join(lines)


def write_report(path, report: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    os.replace(tmp, target)


def _json_default(value):
    return str(value)


def _clean(value):
    """NaN/inf -> None, so the JSON is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_train":
        child_train(argv[1], argv[2:])
        return 0
    if argv and argv[0] in CHILDREN:
        CHILDREN[argv[0]](*argv[1:])
        return 0
    args = parse_args(argv)
    budget = Budget(args.budget_s)
    info = environment(args.device)
    if args.device == "cuda" and not info["cuda_available"]:
        print("error: --cuda asked for a GPU but torch sees none; use --device cpu --quick.", file=sys.stderr)
        return 2
    plan = quick_plan() if args.quick else full_plan()
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="segkit-selfcheck-"))
    work.mkdir(parents=True, exist_ok=True)
    check = SelfCheck(args, plan, work, info)
    steps = [Step(name) for name in STEPS if name in args.steps]
    report = {"tool": "tools/selfcheck.py", "device": args.device, "quick": args.quick, "budget_s": args.budget_s,
              "environment": info, "work_dir": str(work), "steps": [], "ok": True, "total_wall_s": 0.0,
              "failed_count": 0, "skipped_count": 0}

    def publish():
        report["steps"] = [_clean(asdict(s)) for s in steps]
        report["failed_count"] = sum(s.status == "FAILED" for s in steps)
        report["skipped_count"] = sum(s.status == "skipped" for s in steps)
        report["ok"] = report["failed_count"] == 0
        report["total_wall_s"] = args.budget_s - budget.left
        if args.json:
            write_report(args.json, report)

    print(f"segkit self-check: {args.device}{' --quick' if args.quick else ''}, budget {args.budget_s:.0f} s, "
          f"work dir {work}", flush=True)
    interrupted = False
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for step in steps:
            left = budget.left
            if step.step == "ddp" and not (args.device == "cuda" and info["gpus"] >= 2) and not args.ddp_gloo:
                step.status = "skipped"
                step.reason = ("skipped (1 GPU)" if args.device == "cuda"
                               else "skipped (CPU run: DDP is checked with 2 GPUs; --ddp-gloo runs it here)")
            elif left < plan.min_start_s:
                step.status = "skipped"
                step.reason = f"skipped (budget: {max(left, 0):.0f} s left of {args.budget_s:.0f} s)"
            else:
                limit = min(plan.caps[step.step], left)
                start_s = time.perf_counter()
                try:
                    getattr(check, f"step_{step.step}")(step, start_s + limit)
                    step.status = "ok"
                except StepFailed as exc:
                    step.status, step.reason, step.log_tail = "FAILED", str(exc), exc.tail
                    if "time limit" in step.reason:
                        step.reason += (f" ({limit:.0f} s: " + ("what was left of --budget-s)" if limit < plan.caps[
                            step.step] else "this step's cap)"))
                except KeyboardInterrupt:
                    step.status, step.reason = "FAILED", "interrupted"
                    interrupted = True
                except Exception as exc:  # a bug of this tool or an unreadable result: still one line
                    step.status, step.reason = "FAILED", f"{type(exc).__name__}: {exc}"[:300]
                finally:
                    for proc in list(RUNNING):
                        kill(proc)
                step.wall_s = time.perf_counter() - start_s
            if not info.get("gpu") and step.metrics.get("gpu"):
                info["gpu"] = step.metrics["gpu"]
            text = step.summary if step.status == "ok" else step.reason
            wall = f" {step.wall_s:.1f} s" if step.wall_s is not None else ""
            print(f"[{step.step}] {step.status}{wall}: {text}", flush=True)
            publish()
            if interrupted:
                break
    finally:
        signal.signal(signal.SIGTERM, previous)
        for step in steps:
            if step.status == "skipped" and not step.reason:
                step.reason = "skipped (interrupted)"
        for proc in list(RUNNING):
            kill(proc)
        publish()
        if args.log_dir and check.logs.is_dir():
            shutil.copytree(check.logs, args.log_dir, dirs_exist_ok=True)
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(format_table(report))
    if args.json:
        print(f"json: {args.json}")
    if interrupted:
        return 130
    return 0 if report["ok"] else 1


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. a caller's time limit): stop the children, write what was measured


if __name__ == "__main__":
    sys.exit(main())
