"""Batch inference on Ray against one process (``tools/benchmark.py --ray``): ``tools/infer.py PHOTOS`` and
``tools/infer.py PHOTOS --ray`` (a local Ray of this machine's cores, its default pool) on the same photos, as whole
processes, alternating for ``repeats`` rounds after one untimed run of each (bundles made, OpenVINO's compiled
graphs cached); medians. Reported: images/s end to end (whole process: for Ray, its start and stop included), the
Ray job's own images/s (its summary line: from the pool's start to the last manifest line), their ratios to the
single process, and peak memory: the sum of PSS (proportional set size, so that shared pages such as Ray's object
store count once) over the process and everything it started, sampled every 0.25 s.
"""
from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from segkit.cpu import describe as describe_cpu

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_S = 0.25
JOB_RATE = re.compile(r"; ([0-9.]+) images/s over ([0-9.]+) s on (\d+) actor")


def cluster_report(checkpoint: Path, photos: Path, count: int, backend: str = "auto", repeats: int = 3,
                   say=print) -> dict:
    """Medians of each path over ``repeats`` alternating rounds on the ``count`` photos in ``photos``."""
    infer = [sys.executable, str(ROOT / "tools" / "infer.py"), str(photos), "--checkpoint", str(checkpoint),
             "--backend", backend]
    paths = {"one process": infer, "--ray": [*infer, "--ray"]}
    runs = {name: [] for name in paths}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="segkit-ray-bench-") as scratch:
        for round_ in range(repeats + 1):
            for name, command in paths.items():
                out = Path(scratch) / f"out_{round_}_{'ray' if '--ray' in command else 'one'}"
                run = _run([*command, "--out", str(out)])
                shutil.rmtree(out)  # a fresh folder each run: --ray would skip what its manifest says is done
                if round_ > 0:  # the first round makes the bundles and warms the caches
                    runs[name].append(run)
                say(f"{'warm-up' if round_ == 0 else f'round {round_}/{repeats}'}: {name} {run['seconds']:.1f} s, "
                    f"peak {run['peak_mib']:.0f} MiB")
    seconds = {name: statistics.median(run["seconds"] for run in values) for name, values in runs.items()}
    job = statistics.median(run["job_images_per_s"] for run in runs["--ray"])
    single = count / seconds["one process"]
    return {"cpu": describe_cpu(), "load_average": load, "photos": count, "checkpoint": str(checkpoint),
            "backend": backend, "repeats": repeats, "actors": runs["--ray"][0]["actors"],
            "seconds": {name: [run["seconds"] for run in values] for name, values in runs.items()},
            "images_per_s": {name: count / value for name, value in seconds.items()},
            "ray_job_images_per_s": job,
            "ratio": {"end_to_end": count / seconds["--ray"] / single, "job": job / single},
            "peak_mib": {name: max(run["peak_mib"] for run in values) for name, values in runs.items()}}


def cluster_text(record: dict) -> str:
    rates, peak, actors = record["images_per_s"], record["peak_mib"], record["actors"]
    return "\n".join([
        f"Ray against one process ({record['cpu']}; --backend {record['backend']}; {record['photos']} photos; load "
        f"average {record['load_average']:.2f} at the start; medians of {record['repeats']} alternating rounds)",
        f"  one process    {rates['one process']:6.2f} images/s end to end; peak memory {peak['one process']:.0f} MiB",
        f"  --ray (local)  {rates['--ray']:6.2f} images/s end to end, {record['ray_job_images_per_s']:.2f} in the job "
        f"({actors} actor{'s' if actors > 1 else ''}); peak memory {peak['--ray']:.0f} MiB (driver + Ray's processes)",
        f"  Ray / one process: {record['ratio']['end_to_end']:.2f}x end to end (Ray's start and stop included), "
        f"{record['ratio']['job']:.2f}x in the job"])


def _run(command: list[str]) -> dict:
    """One whole process: its seconds, its peak PSS with its children (MiB) and, for --ray, the job's rate."""
    from segkit.errors import UserError

    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, done = [0.0], threading.Event()

    def sample():
        while not done.wait(SAMPLE_S):
            peak[0] = max(peak[0], tree_pss_mib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"{' '.join(command[1:3])} ... failed ({last}).")
    run = {"seconds": seconds, "peak_mib": peak[0]}
    match = JOB_RATE.search(stdout)
    if "--ray" in command:
        if match is None:
            raise UserError(f"tools/infer.py --ray printed no summary line ({stdout.strip()[-200:]!r}).")
        run["job_images_per_s"], run["actors"] = float(match.group(1)), int(match.group(3))
    return run


def tree_pss_mib(root: int) -> float:
    """The PSS of ``root`` and every process below it, in MiB (0 for processes gone meanwhile)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        tree += children
        frontier += children
    total_kib = 0
    for pid in tree:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kib += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue
    return total_kib / 1024
