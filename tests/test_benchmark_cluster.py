"""segkit.benchmark.cluster (tools/benchmark.py --ray): the job's rate read from tools/infer.py --ray's summary line,
peak memory over a process and its children, the report's text."""
import os
import subprocess
import sys
import time

from segkit.benchmark.cluster import JOB_RATE, cluster_text, tree_pss_mib
from segkit.cluster import JobReport


def test_the_job_rate_is_read_from_the_summary_line():
    line = JobReport(segmented=38, failed=2, skipped=5, seconds=20.0, actors=3).summary()
    match = JOB_RATE.search(f"40 photos on Ray: ...\n{line}\n")
    assert line.startswith("38 segmented, 2 failed, 5 skipped (already done)")
    assert (float(match.group(1)), float(match.group(2)), int(match.group(3))) == (2.0, 20.0, 3)


def test_peak_memory_counts_the_children_of_a_process():
    # a child holding 128 MiB of its own pages: they count under it, and under its parent's tree
    code = "import time; b = bytearray(128 << 20); b[::4096] = b'x' * len(b[::4096]); print(1, flush=True); " \
           "time.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        child.stdout.readline()  # its pages are touched
        alone = tree_pss_mib(child.pid)
        assert alone > 128
        assert tree_pss_mib(os.getpid()) > alone
    finally:
        child.kill()
        child.wait()
    time.sleep(0.1)
    assert tree_pss_mib(child.pid) == 0  # gone: nothing counted


def test_the_report_says_both_paths_and_their_ratio():
    record = {"cpu": "x86_64, bf16 no, int8 vnni (avx512_vnni)", "load_average": 0.1, "photos": 40, "backend": "auto",
              "repeats": 3, "actors": 1, "images_per_s": {"one process": 2.5, "--ray": 2.0},
              "ray_job_images_per_s": 2.6, "ratio": {"end_to_end": 0.8, "job": 1.04},
              "peak_mib": {"one process": 600.0, "--ray": 1500.0}}
    text = cluster_text(record)
    assert "one process      2.50 images/s end to end; peak memory 600 MiB" in text
    assert "2.00 images/s end to end, 2.60 in the job (1 actor); peak memory 1500 MiB" in text
    assert "0.80x end to end" in text and "1.04x in the job" in text
