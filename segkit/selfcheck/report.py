"""The self-check's results: one ``Step`` per step, the JSON report (``segkit.fileio``) and the summary table, and
the short texts the steps' summaries share."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from segkit.fileio import write_json_atomic
from segkit.selfcheck.plan import Options


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

    def line(self) -> str:
        """What the self-check prints when the step is done."""
        wall = f" {self.wall_s:.1f} s" if self.wall_s is not None else ""
        return f"[{self.step}] {self.status}{wall}: {self.summary if self.status == 'ok' else self.reason}"


def build_report(options: Options, environment: dict, work: Path, steps: list[Step], total_wall_s: float) -> dict:
    failed, skipped = sum(s.status == "FAILED" for s in steps), sum(s.status == "skipped" for s in steps)
    return {"tool": "tools/selfcheck.py", "device": options.device, "quick": options.quick,
            "budget_s": options.budget_s, "environment": environment, "work_dir": str(work),
            "steps": [clean(asdict(s)) for s in steps], "ok": failed == 0, "total_wall_s": total_wall_s,
            "failed_count": failed, "skipped_count": skipped}


def write_report(path, report: dict) -> None:
    write_json_atomic(path, clean(report))


def clean(value):
    """NaN/inf -> None, so the JSON is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def format_table(report: dict) -> str:
    info = report["environment"]
    where = f"{info['gpu']} x{info['gpus']}" if report["device"] == "cuda" else f"CPU, {info['cpus']} cores"
    head = (f"segkit self-check on {report['device']} ({where}), torch {info['torch']}, python {info['python']}"
            f"{', quick plan' if report['quick'] else ''}")
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


def size_text(size) -> str:
    return f"{size[0]}x{size[1]}"


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
