"""resume: an uninterrupted run beside one killed with SIGKILL once its first last.pt exists, then continued with
--resume: both must end with the same weights (asserted bit for bit on the CPU; on CUDA the largest difference is
reported, since cuDNN and AMP need not be deterministic). On CUDA a second uninterrupted run beside them measures
how far two runs differ anyway (nondeterministic kernels), the yardstick for the resumed run's difference."""
from __future__ import annotations

import shlex
import time
from pathlib import Path

from segkit.selfcheck.context import Check, train_command
from segkit.selfcheck.processes import Child, StepFailed, failure_line, tail_lines
from segkit.selfcheck.readings import checkpoint_iteration, compare_weights
from segkit.selfcheck.report import Step


def run(check: Check, step: Step, deadline: float) -> None:
    size = check.plan.resume
    names = ["resume_reference", "resume_killed"] + (["resume_reference2"] if check.options.device != "cpu" else [])
    # The runs share the machine: a share of the cores' threads each, and the same count for the resumed run (on
    # the CPU a different thread count may round differently, which is not what this step asks about).
    threads = str(max(1, check.options.cpus // len(names)))
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    workers = check.options.workers // len(names)
    commands = {name: train_command(check, size, check.work / name, workers=workers) for name in names}
    resume_cmd = train_command(check, size, check.work / "resume_killed", resume=True, workers=workers)
    step.commands += [shlex.join(c) for c in (commands["resume_reference"], commands["resume_killed"], resume_cmd)]
    step.commands += [shlex.join(commands[name]) for name in names[2:]]
    # Side by side: one start-up's time, not two (or three).
    children = {name: check.processes.start(commands[name], f"{name}.log", env) for name in names}
    last = check.work / "resume_killed" / "last.pt"
    killed_at = kill_after_first_checkpoint(check, children["resume_killed"], last, size.iterations, deadline)
    step.metrics["killed_at"] = killed_at
    check.processes.run(resume_cmd, "resume_resumed.log", deadline, "tools/train.py, resumed", env)
    check.processes.finish(children["resume_reference"], deadline, "the uninterrupted run")
    if "resume_reference2" in children:
        check.processes.finish(children["resume_reference2"], deadline, "the second uninterrupted run")
    compare_runs(check, step, killed_at, twin=len(names) == 3)


def kill_after_first_checkpoint(check: Check, child: Child, last: Path, iterations: int, deadline: float) -> int:
    """SIGKILL ``child`` as soon as ``last`` exists; the iteration it holds."""
    while not last.is_file() and child.process.poll() is None and time.perf_counter() < deadline:
        time.sleep(0.005)
    if child.process.poll() is not None:
        child.close()
        if child.process.returncode != 0:
            raise StepFailed(f"the run to kill exited {child.process.returncode} before its first checkpoint: "
                             f"{failure_line(child.log_path)}", tail_lines(child.log_path))
        raise StepFailed("the run to kill finished before it could be killed (raise resume iterations)")
    check.processes.kill(child)  # right after a checkpoint landed (maybe while it writes the next one)
    if not last.is_file():
        child.close()
        raise StepFailed("no last.pt from the run to kill at the step's time limit", tail_lines(child.log_path))
    child.log_file.write(f"\n[selfcheck] SIGKILL sent after {last} appeared\n")
    child.close()
    killed_at = checkpoint_iteration(last)
    if killed_at >= iterations:
        raise StepFailed(f"the run to kill had finished all {killed_at} iterations when it was killed")
    return killed_at


def compare_runs(check: Check, step: Step, killed_at: int, twin: bool) -> None:
    """Both runs at their last iteration, the resumed one's weights against the uninterrupted one's (and, with
    ``twin``, the two uninterrupted runs' against each other)."""
    size, work = check.plan.resume, check.work
    reference, resumed = work / "resume_reference" / "last.pt", work / "resume_killed" / "last.pt"
    for path in (reference, resumed):
        done = checkpoint_iteration(path)
        if done != size.iterations:
            raise StepFailed(f"{path.parent.name}/last.pt is at iteration {done}, not {size.iterations}")
    diff = compare_weights(reference, resumed)
    step.metrics.update(diff, iterations=size.iterations, checkpoint_every=size.checkpoint_every,
                        crop=list(size.crop), batch_size=size.batch)
    what = f"killed (SIGKILL) at iteration {killed_at}/{size.iterations}, resumed: "
    if diff["identical"]:
        step.summary = what + f"weights bit-identical to the uninterrupted run ({diff['tensors']} tensors)"
    else:
        step.summary = what + (f"weights differ from the uninterrupted run: max |diff| {diff['max_abs_diff']:.3g} "
                               f"in {diff['tensors_differing']}/{diff['tensors']} tensors")
        if check.options.device == "cpu":
            raise StepFailed(step.summary)
    if twin:
        spread = compare_weights(reference, work / "resume_reference2" / "last.pt")
        step.metrics["run_to_run"] = spread
        text = "bit-identical" if spread["identical"] else f"max |diff| {spread['max_abs_diff']:.3g}"
        step.summary += (f"; two uninterrupted runs: {text} (the trainer does not set deterministic mode: "
                         "reported, not asserted)")
