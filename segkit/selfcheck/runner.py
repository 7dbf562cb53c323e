"""The self-check's steps in order. Every step runs even when an earlier one failed; one starts only with
``plan.min_start_s`` of the budget left ("skipped (budget)") and is cut at its cap or at the budget's end. The JSON
report is rewritten after every step, so a check cut from outside (SIGTERM) still leaves what it measured."""
from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from segkit.selfcheck.context import ROOT, Check
from segkit.selfcheck.plan import STEPS, Options, full_plan, quick_plan
from segkit.selfcheck.processes import Processes, StepFailed
from segkit.selfcheck.report import Step, build_report, format_table, write_report
from segkit.selfcheck.steps import data, ddp, predict, resume, train
from segkit.selfcheck.steps import eval as eval_step  # not the builtin

RUN = {"data": data.run, "train": train.run, "eval": eval_step.run, "predict": predict.run, "resume": resume.run,
       "ddp": ddp.run}


@dataclass
class Budget:
    seconds: float
    start: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def left(self) -> float:
        return self.seconds - self.elapsed


def environment(device: str) -> dict:
    """Python, torch, cores and GPUs; asks torch how many GPUs exist without a CUDA context (which would hold GPU
    memory for the whole check: the children own the GPU)."""
    info = {"python": platform.python_version(), "torch": torch.__version__, "device": device,
            "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "cuda_available": torch.cuda.is_available(), "gpus": 0, "gpu": None}
    if info["cuda_available"]:
        info["gpus"] = torch.cuda.device_count()
        info["cuda"] = torch.version.cuda
        try:
            names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                   text=True, timeout=10).stdout.strip().splitlines()
            info["gpu"] = names[0].strip() if names else None
        except (OSError, subprocess.SubprocessError):
            pass  # filled in from the first step that reports it
    return info


def skip_reason(check: Check, name: str, info: dict, left: float) -> str | None:
    """Why step ``name`` does not start, or None."""
    options = check.options
    if name == "ddp" and not (options.device == "cuda" and info["gpus"] >= 2) and not options.ddp_gloo:
        return ("skipped (1 GPU)" if options.device == "cuda"
                else "skipped (CPU run: DDP is checked with 2 GPUs, or here with the gloo option)")
    if left < check.plan.min_start_s:
        return f"skipped (budget: {max(left, 0):.0f} s left of {options.budget_s:.0f} s)"
    return None


def run_step(check: Check, step: Step, left: float) -> bool:
    """Run ``step`` within its cap and ``left``; it ends ok or FAILED with one line. True when interrupted."""
    cap = check.plan.caps[step.step]
    limit, start_s, interrupted = min(cap, left), time.perf_counter(), False
    try:
        RUN[step.step](check, step, start_s + limit)
        step.status = "ok"
    except StepFailed as exc:
        step.status, step.reason, step.log_tail = "FAILED", str(exc), exc.tail
        if "time limit" in step.reason:
            cut_by = "what was left of the budget" if limit < cap else "this step's cap"
            step.reason += f" ({limit:.0f} s: {cut_by})"
    except KeyboardInterrupt:
        step.status, step.reason, interrupted = "FAILED", "interrupted", True
    except Exception as exc:  # a bug of the self-check or an unreadable result: still one line
        step.status, step.reason = "FAILED", f"{type(exc).__name__}: {exc}"[:300]
    finally:
        check.processes.kill_all()
    step.wall_s = time.perf_counter() - start_s
    return interrupted


def run_steps(check: Check, steps: list[Step], info: dict, budget: Budget) -> bool:
    """Each step in turn (the report rewritten after each); True when one was interrupted."""
    for step in steps:
        left = budget.left
        step.reason = skip_reason(check, step.step, info, left)
        interrupted = step.reason is None and run_step(check, step, left)
        if not info.get("gpu") and step.metrics.get("gpu"):
            info["gpu"] = step.metrics["gpu"]
        print(step.line(), flush=True)
        publish(check, steps, info, budget)
        if interrupted:
            return True
    return False


def publish(check: Check, steps: list[Step], info: dict, budget: Budget) -> dict:
    report = build_report(check.options, info, check.work, steps, budget.elapsed)
    if check.options.json:
        write_report(check.options.json, report)
    return report


def run_selfcheck(options: Options) -> int:
    """The whole check; prints the table and returns the exit status: 0 when no step failed, 1 otherwise, 130
    when interrupted."""
    budget, info = Budget(options.budget_s), environment(options.device)
    work = Path(options.work_dir) if options.work_dir else Path(tempfile.mkdtemp(prefix="segkit-selfcheck-"))
    work.mkdir(parents=True, exist_ok=True)
    check = Check(options, quick_plan() if options.quick else full_plan(), work, Processes(ROOT, work / "logs"))
    steps = [Step(name) for name in STEPS if name in options.steps]
    print(f"segkit self-check: {options.device}{' (quick plan)' if options.quick else ''}, budget "
          f"{options.budget_s:.0f} s, work dir {work}", flush=True)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        interrupted = run_steps(check, steps, info, budget)
    finally:
        signal.signal(signal.SIGTERM, previous)
        report = wrap_up(check, steps, info, budget)
    print()
    print(format_table(report))
    if options.json:
        print(f"json: {options.json}")
    return 130 if interrupted else (0 if report["ok"] else 1)


def wrap_up(check: Check, steps: list[Step], info: dict, budget: Budget) -> dict:
    """The last report (steps never started say so), logs copied out, a temporary work folder removed."""
    for step in steps:
        if step.status == "skipped" and not step.reason:
            step.reason = "skipped (interrupted)"
    check.processes.kill_all()
    report = publish(check, steps, info, budget)
    if check.options.log_dir and check.processes.logs.is_dir():
        shutil.copytree(check.processes.logs, check.options.log_dir, dirs_exist_ok=True)
    if not check.options.work_dir:
        shutil.rmtree(check.work, ignore_errors=True)
    return report


def _terminate(signum, frame):
    raise KeyboardInterrupt  # SIGTERM (e.g. a caller's time limit): stop the children, write what was measured
