"""tools/selfcheck.py: the GPU self-check, run here shrunk (--device cpu --quick) and with no budget."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOL = REPO / "tools" / "selfcheck.py"
STEPS = ["data", "train", "eval", "predict", "resume", "ddp"]
TOP_FIELDS = {"tool", "device", "quick", "budget_s", "environment", "steps", "ok", "total_wall_s", "failed_count",
              "skipped_count"}
STEP_FIELDS = {"step", "status", "wall_s", "summary", "reason", "metrics", "commands", "log_tail"}


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

    # What the trainer used, as it recorded it in its log.jsonl (quick: the CPU, full precision, no workers).
    train = steps["train"]["metrics"]
    assert train["images_per_s"] > 0 and train["steady_steps"] > 0 and train["batch_size"] == 2
    assert train["crop"] == [65, 129] and train["peak_rss_gib"] > 0
    assert train["amp"] is None and train["channels_last"] is True and train["workers"] == 0
    assert train["device"] == "cpu" and train["peak_allocated_gib"] is None and train["exit"] == 0
    for resolution in ("full", "half"):
        assert 0 <= steps["eval"]["metrics"][resolution]["miou"] <= 100
        assert steps["eval"]["metrics"][resolution]["ms_per_image"] > 0
        assert steps["predict"]["metrics"][resolution]["median_ms"] > 0
    assert steps["predict"]["metrics"]["full"]["photo"] == [128, 256]
    assert steps["predict"]["metrics"]["small_full"]["photo"] == [64, 128]

    resume = steps["resume"]["metrics"]
    assert 0 < resume["killed_at"] < resume["iterations"]
    assert resume["identical"] and resume["max_abs_diff"] == 0.0 and resume["tensors_differing"] == 0

    # The children: modules run with flags, tools/train.py itself for training.
    assert " -m segkit.selfcheck.children.data --root " in steps["data"]["commands"][0]
    assert " -m segkit.selfcheck.children.predict --checkpoint " in steps["predict"]["commands"][-1]
    assert "tools/train.py configs/lraspp_small.py --work-dir" in steps["train"]["commands"][0]

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


@pytest.mark.parametrize("args, message", [(["--cuda", "--device", "cpu"], "contradict each other"),
                                           (["--steps", "data,tran"], "unknown step(s) tran")])
def test_usage_errors_exit_2(tool, capsys, args, message):
    with pytest.raises(SystemExit) as exit:
        tool("selfcheck").parse_args(args)
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_options_from_the_command_line(tool):
    options = tool("selfcheck").parse_args(["--cuda", "--steps", "data, train", "--budget-s", "30"])
    assert options.device == "cuda" and options.steps == ["data", "train"] and options.budget_s == 30.0
    assert not options.quick and 0 <= options.workers <= 12
    quick = tool("selfcheck").parse_args(["--device", "cpu", "--quick"])
    assert quick.device == "cpu" and quick.workers == 0 and quick.steps == STEPS
