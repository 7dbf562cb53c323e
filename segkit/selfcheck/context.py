"""What the self-check's steps share: the options and plan, the work folder and its child processes, what one step
leaves the next (the checkpoint, the single-process rate), and the training command they all build."""
from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from segkit.selfcheck.plan import Options, Plan, Run
from segkit.selfcheck.processes import Processes, module_command
from segkit.selfcheck.report import Step

ROOT = Path(__file__).resolve().parents[2]  # the repository: tools/ and configs/ beside segkit/
TRAIN_PY = ROOT / "tools" / "train.py"


@dataclass
class Check:
    options: Options
    plan: Plan
    work: Path
    processes: Processes
    checkpoint: Path | None = None  # what eval and predict use: train's, else an untrained one
    single_rate: float | None = None  # train's images/s: the yardstick of ddp's scaling

    @property
    def data(self) -> Path:
        return self.work / "data"


def train_command(check: Check, run: Run, work_dir: Path, resume: bool = False, launcher: list[str] | None = None,
                  workers: int | None = None) -> list[str]:
    """tools/train.py on the plan's config, sized by ``run``, into ``work_dir`` (``launcher``: e.g. torchrun)."""
    sets = [f"train.iterations={run.iterations}", f"train.checkpoint_every={run.checkpoint_every}",
            "train.eval_every=0", f"train.log_every={run.log_every}", f"data.root={check.data}",
            f"data.workers={check.options.workers if workers is None else workers}"]
    if run.crop is not None:
        sets.append(f"data.crop_size={run.crop[0]},{run.crop[1]}")
    if run.batch is not None:
        sets.append(f"train.batch_size={run.batch}")
    cmd = (launcher or [sys.executable]) + [str(TRAIN_PY), check.plan.config, "--work-dir", str(work_dir),
                                            "--device", check.options.device, "--no-progress"]
    for item in sets:
        cmd += ["--set", item]
    return cmd + (["--resume"] if resume else [])


def ensure_checkpoint(check: Check, step: Step, deadline: float) -> Path:
    """train's checkpoint, else (training gave none) one of the config's untrained model, made once."""
    if check.checkpoint is not None and check.checkpoint.is_file():
        return check.checkpoint
    path = check.work / "untrained.pt"
    if not path.is_file():
        cmd = module_command("segkit.selfcheck.children.untrained", config=check.plan.config, out=path)
        step.commands.append(shlex.join(cmd))
        check.processes.run(cmd, "untrained.log", deadline, "untrained checkpoint")
    step.metrics["untrained_weights"] = True
    check.checkpoint = path
    return path
