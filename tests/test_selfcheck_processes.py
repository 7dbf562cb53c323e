"""segkit.selfcheck.processes: child commands, the one line of a failure, a failed or hung child."""
import sys
import time

import pytest

from segkit.selfcheck.processes import Processes, StepFailed, failure_line, module_command


def test_failure_line_is_the_tools_error_or_the_traceback_end(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("$ cmd\nerror: --resume found no last.pt; start without --resume.\n")
    assert failure_line(log) == "--resume found no last.pt; start without --resume."
    log.write_text('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    f()\n'
                   "TypeError: can't convert cuda:0 device type tensor to numpy.\n")
    assert failure_line(log).startswith("TypeError: can't convert cuda:0")


def test_module_command_has_flags():
    assert module_command("segkit.selfcheck.children.data", root="/d", train=4, photo=None, max_frames=2) == [
        sys.executable, "-m", "segkit.selfcheck.children.data", "--root", "/d", "--train", "4", "--max-frames", "2"]


def test_a_failing_or_hung_child_is_one_line(tmp_path):
    processes = Processes(tmp_path, tmp_path / "logs")
    fail = [sys.executable, "-c", "raise SystemExit('error: no data')"]
    with pytest.raises(StepFailed, match="^crash exited 1: no data$"):
        processes.run(fail, "fail.log", time.perf_counter() + 60, "crash")
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    with pytest.raises(StepFailed, match="still running at the step's time limit; killed"):
        processes.run(hang, "hang.log", time.perf_counter() + 0.5, "sleeper")
    assert processes.running == [] and (tmp_path / "logs" / "hang.log").read_text().startswith("$ ")
