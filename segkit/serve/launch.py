"""The service as a child process: ``tools/serve.py`` started on a loopback port the system picks, its address read
from its ``serving on http://...`` line, stopped by SIGTERM. What the tests and ``tools/benchmark.py --serve`` use
to talk to the real service over HTTP."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from segkit.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SERVING = re.compile(r"^serving on (http://\S+)$", re.MULTILINE)


class ServiceProcess:
    """``python tools/serve.py ARGS --host 127.0.0.1 --port 0``, its stdout and stderr in ``log``. ``url`` once
    ``wait_until_serving`` returned; ``stop`` sends SIGTERM and returns the exit status."""

    def __init__(self, args: list[str], log: Path, env: dict | None = None):
        self.log = Path(log)
        self.url: str | None = None
        command = [sys.executable, str(ROOT / "tools" / "serve.py"), *args, "--host", "127.0.0.1", "--port", "0"]
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, **(env or {})})

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self, timeout: float = 300.0) -> str:
        """The service's base URL once its port is open (the model warm), or one sentence with its last lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = SERVING.search(self.output())
            if found:
                self.url = found.group(1)
                return self.url
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        tail = " | ".join(self.output().strip().splitlines()[-5:])
        state = f"exited with status {self.process.returncode}" if self.process.poll() is not None else \
            f"did not open its port within {timeout:.0f} s"
        self.kill()
        raise UserError(f"the service {state} (its log {self.log}: {tail}).")

    def memory_kib(self) -> dict[str, int]:
        """VmRSS (now) and VmHWM (the peak) of the service's process, in KiB, from /proc."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        return {key: int(value.split()[0]) for key, value in
                (line.split(":", 1) for line in status.splitlines()) if key in ("VmRSS", "VmHWM")}

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM, then the exit status once the requests in flight were answered (killed after ``timeout``)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
