import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "benchmark.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=600)


def test_table7_report_lists_every_row_beside_the_paper():
    result = run_tool("--table7", "--no-latency")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line[:2].strip().isdigit()]
    assert [int(line[:2]) for line in rows] == list(range(1, 12))
    assert "1.507M  1.51M" in rows[7] and "9.37B  9.74B" in rows[7]


def test_config_json_record():
    result = run_tool(str(ROOT / "configs" / "lraspp_small.py"), "--json", "--repeats", "1", "--resolution", "half",
                      "--threads", "1")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["config"] == "lraspp_small" and record["threads"] == 1 and record["backend"] == "torch"
    assert abs(record["params"] / 0.47e6 - 1) < 0.02
    assert set(record["madds"]) == {"half"} and record["latency_ms"]["half"] > 0


def test_user_errors_are_one_line():
    result = run_tool("missing.py")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "does not exist" in result.stderr
    result = run_tool()
    assert result.returncode == 2 and "--table7" in result.stderr
