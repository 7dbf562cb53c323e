"""tools/selfcheck.py: the GPU self-check, run here shrunk (--device cpu --quick) and with no budget."""
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "selfcheck.py"
STEPS = ["data", "train", "eval", "predict", "resume", "ddp"]
TOP_FIELDS = {"tool", "device", "quick", "budget_s", "environment", "steps", "ok", "total_wall_s", "failed_count",
              "skipped_count"}
STEP_FIELDS = {"step", "status", "wall_s", "summary", "reason", "metrics", "commands", "log_tail"}


def load_tool():
    spec = importlib.util.spec_from_file_location("segkit_tools_selfcheck", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def run_selfcheck(args, timeout):
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_quick_cpu_selfcheck_runs_every_step(tmp_path):
    out = tmp_path / "selfcheck.json"
    result = run_selfcheck(["--device", "cpu", "--quick", "--json", str(out), "--log-dir", str(tmp_path / "logs")],
                           timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert TOP_FIELDS <= set(report)
    assert report["ok"] and report["device"] == "cpu" and report["quick"] and report["failed_count"] == 0
    steps = {s["step"]: s for s in report["steps"]}
    assert list(steps) == STEPS
    for step in steps.values():
        assert STEP_FIELDS <= set(step)
    for name in STEPS[:-1]:
        assert steps[name]["status"] == "ok", steps[name]
        assert steps[name]["wall_s"] > 0 and steps[name]["summary"]
    assert steps["ddp"]["status"] == "skipped" and "skipped" in steps["ddp"]["reason"]

    train = steps["train"]["metrics"]
    assert train["images_per_s"] > 0 and train["steady_steps"] > 0 and train["batch_size"] == 2
    assert train["crop"] == [65, 129] and train["peak_rss_gib"] > 0
    for resolution in ("full", "half"):
        assert 0 <= steps["eval"]["metrics"][resolution]["miou"] <= 100
        assert steps["eval"]["metrics"][resolution]["ms_per_image"] > 0
        assert steps["predict"]["metrics"][resolution]["median_ms"] > 0
    assert steps["predict"]["metrics"]["full"]["photo"] == [128, 256]
    assert steps["predict"]["metrics"]["small_full"]["photo"] == [64, 128]

    resume = steps["resume"]["metrics"]
    assert 0 < resume["killed_at"] < resume["iterations"]
    assert resume["identical"] and resume["max_abs_diff"] == 0.0 and resume["tensors_differing"] == 0

    # The printed table: one row per step, and the logs copied out.
    for name in STEPS + ["total"]:
        assert any(line.startswith(name + " ") for line in result.stdout.splitlines()), name
    assert (tmp_path / "logs" / "train.log").is_file()


def test_no_budget_skips_every_step_without_failing(tmp_path):
    out = tmp_path / "selfcheck.json"
    result = run_selfcheck(["--device", "cpu", "--quick", "--budget-s", "0", "--json", str(out)], timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["ok"] and report["failed_count"] == 0 and report["skipped_count"] == len(STEPS)
    for step in report["steps"]:
        assert step["status"] == "skipped" and step["wall_s"] is None
        if step["step"] != "ddp":
            assert "budget" in step["reason"]
    assert "skipped (budget" in result.stdout


def test_steady_rate_leaves_out_the_warm_up_windows(tmp_path):
    tool = load_tool()
    log = tmp_path / "log.jsonl"
    records = [{"iteration": 20, "loss": 3.0, "lr": 0.01, "it_per_s": 1.0},  # start-up: 20 s
               {"iteration": 40, "loss": 2.0, "lr": 0.01, "it_per_s": 10.0},  # 2 s
               {"iteration": 50, "loss": 1.0, "lr": 0.01, "it_per_s": 5.0},  # 2 s
               {"iteration": 50, "val_miou": 12.0, "resolutions": ["half"]}]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    rate = tool.steady_rate(log, images_per_step=8, warm_windows=1)
    assert rate["steady_steps"] == 30 and rate["warm_steps"] == 20
    assert rate["it_per_s"] == pytest.approx(30 / 4) and rate["images_per_s"] == pytest.approx(8 * 30 / 4)
    assert rate["warm_images_per_s"] == pytest.approx(8.0)
    assert (rate["first_loss"], rate["last_loss"]) == (3.0, 1.0)


def test_failure_line_is_the_tools_error_or_the_traceback_end(tmp_path):
    tool = load_tool()

    class Proc:  # what failure_line reads: the log file's name
        def __init__(self, text):
            path = tmp_path / "log.txt"
            path.write_text(text)
            self.log_file = types.SimpleNamespace(name=str(path))

    assert tool.failure_line(Proc("$ cmd\nerror: --resume found no last.pt; start without --resume.\n")) == \
        "--resume found no last.pt; start without --resume."
    traceback = ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n    f()\n'
                 "TypeError: can't convert cuda:0 device type tensor to numpy.\n")
    assert tool.failure_line(Proc(traceback)).startswith("TypeError: can't convert cuda:0")
