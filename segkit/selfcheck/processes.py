"""The self-check's child processes: each in its own process group (a kill takes its loader workers and ranks
along), its output in a log file, and the one line that says why one failed."""
from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

EXCEPTION_LINE = re.compile(r"^(?:\[rank\d+\]:\s*)?([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit))(?::\s|:$|$)")


class StepFailed(Exception):
    """A step's one-line reason (and, where there is one, the tail of the log that explains it)."""

    def __init__(self, reason: str, tail: list[str] | None = None):
        super().__init__(reason)
        self.tail = tail or []


@dataclass
class Child:
    """A started process and the log file its output goes to."""

    process: subprocess.Popen
    log_path: Path
    log_file: TextIO

    def close(self) -> None:
        self.log_file.close()


def module_command(module: str, **flags) -> list[str]:
    """``python -m module --flag value ...`` (underscores of a flag name become dashes; None leaves it out)."""
    cmd = [sys.executable, "-m", module]
    for name, value in flags.items():
        if value is not None:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    return cmd


def child_env(root: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if not any(Path(p).resolve() == root for p in paths):
        paths.append(str(root))  # after what the caller put first (e.g. the carried wheels)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["NO_ALBUMENTATIONS_UPDATE"] = "1"  # albumentations' import-time version check: 2 s without internet
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class Processes:
    """Starts children in ``root`` (the repository) with their logs in ``logs``, and keeps those not yet reaped,
    to kill them when a step ends or the check is interrupted."""

    root: Path
    logs: Path
    running: list[Child] = field(default_factory=list)

    def start(self, cmd: list[str], log_name: str, env: dict | None = None) -> Child:
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / log_name
        log = open(log_path, "w")
        log.write("$ " + shlex.join(cmd) + "\n")
        log.flush()
        process = subprocess.Popen(cmd, cwd=self.root, env=child_env(self.root, env), stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        child = Child(process, log_path, log)
        self.running.append(child)
        return child

    def kill(self, child: Child) -> None:
        """SIGKILL the process group started for ``child`` (by its id)."""
        if child.process.poll() is None:
            try:
                os.killpg(child.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        child.process.wait()
        if child in self.running:
            self.running.remove(child)

    def finish(self, child: Child, deadline: float, what: str) -> int:
        """Wait for ``child`` until ``deadline`` (perf_counter); StepFailed on a timeout or a non-zero exit."""
        try:
            child.process.wait(timeout=max(0.0, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            self.kill(child)
            child.close()
            raise StepFailed(f"{what} still running at the step's time limit; killed",
                             tail_lines(child.log_path)) from None
        if child in self.running:
            self.running.remove(child)
        child.close()
        if child.process.returncode != 0:
            raise StepFailed(f"{what} exited {child.process.returncode}: {failure_line(child.log_path)}",
                             tail_lines(child.log_path))
        return child.process.returncode

    def run(self, cmd: list[str], log_name: str, deadline: float, what: str, env: dict | None = None) -> int:
        return self.finish(self.start(cmd, log_name, env), deadline, what)

    def kill_all(self) -> None:
        for child in list(self.running):
            self.kill(child)
            child.close()


def tail_lines(log_path: Path, count: int = 15) -> list[str]:
    lines = Path(log_path).read_text(errors="replace").splitlines()
    return [line[:300] for line in lines[-count:]]


def failure_line(log_path: Path) -> str:
    """The one line that says why: ``error: ...`` of a segkit tool, else the last exception line of a traceback
    (not torchrun's ChildFailedError, which only says that a rank failed), else the last line."""
    lines = [line.strip() for line in Path(log_path).read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: "):][:300]
    for line in reversed(lines):
        match = EXCEPTION_LINE.match(line)
        if match and "ChildFailedError" not in match.group(1):
            return line[:300]
    return lines[-1][:300] if lines else "no output"
