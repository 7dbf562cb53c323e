"""The paper's latency protocol in the phone runtime (``tools/benchmark.py --table7 --runtime litert --threads 1``).

Table 7's CPU(f) / CPU(h) are one large core of a Pixel 3 running TFLite on 1024x2048 and 512x1024 inputs. Here
every row's phone graph (``segkit.deploy.litert``, float32, random weights) runs in LiteRT's interpreter with
XNNPACK -- the kernels Android runs -- on this machine's CPU with ``threads`` threads. Absolute times differ with
the hardware; the ratio of each row to row 8 (the paper's chosen model) is what can be compared with the paper's.
Rows 8 and 11 are also timed as int8 graphs (the AI Edge Quantizer's static recipe, calibrated on synthetic
street scenes: latency only, their accuracy is ``tools/quantize.py``'s business).
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch

from segkit.benchmark.table7 import table7_configs, time_calls
from segkit.data.synthetic import generate_scene
from segkit.deploy.litert import TfliteRunner, tflite_bytes
from segkit.deploy.quantize import quantize_litert
from segkit.inference import grid_stride, plan_for
from segkit.models import build_model
from segkit.resolutions import RESOLUTIONS

INT8_ROWS = (8, 11)
REFERENCE_ROW = 8


def median_ms(runner: TfliteRunner, photo: np.ndarray, repeats: int) -> float:
    """Median milliseconds of ``repeats`` invocations after one untimed."""
    return 1000 * statistics.median(time_calls(lambda: runner(photo), repeats))


def row_latency(config, repeats: int, threads: int, int8: bool) -> dict:
    """One row's float (and with ``int8`` int8) milliseconds at "full" (1024x2048) and "half" (512x1024)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model(config.model).eval()
    record = {"float_ms": {}, "int8_ms": {}}
    for name in ("full", "half"):
        size = RESOLUTIONS[name].size
        plan = plan_for(size, "full", grid_stride(model))  # Table 7 times each input size as it is
        photo = np.random.default_rng(0).integers(0, 256, (1, *size, 3), dtype=np.uint8)
        graph = tflite_bytes(model, config.data.normalize, plan)
        record["float_ms"][name] = round(median_ms(TfliteRunner(graph, threads), photo, repeats), 1)
        if int8:
            scenes = [generate_scene(*size, np.random.default_rng(seed))[0] for seed in range(4)]
            quantized = quantize_litert(model, config.data.normalize, plan, scenes)
            record["int8_ms"][name] = round(median_ms(TfliteRunner(quantized, threads), photo, repeats), 1)
    return record


def phone_table(config_dir: Path, repeats: int = 5, threads: int = 1, say=print) -> tuple[list[dict], str]:
    """Every Table 7 row in LiteRT; the records and the text table of ratios to row 8 beside the paper's."""
    records = []
    for row, config in table7_configs(config_dir):
        say(f"row {row.n}: converting and timing ...")
        record = {"row": row.n, "config": config.name, "threads": threads, "runtime": "litert",
                  "paper_s": {"full": row.cpu_full, "half": row.cpu_half},
                  **row_latency(config, repeats, threads, row.n in INT8_ROWS)}
        records.append(record)
    reference = next(r for r in records if r["row"] == REFERENCE_ROW)
    for record in records:
        record["ratio"] = {name: round(record["float_ms"][name] / reference["float_ms"][name], 3)
                           for name in ("full", "half")}
        record["paper_ratio"] = {name: round(record["paper_s"][name] / reference["paper_s"][name], 3)
                                 for name in ("full", "half")}
    return records, phone_text(records, repeats, threads)


def phone_text(records: list[dict], repeats: int, threads: int) -> str:
    header = (f"{'N':>2}  {'ms(f)':>8} {'/row8':>6} {'paper':>6}  {'ms(h)':>8} {'/row8':>6} {'paper':>6}  "
              f"{'int8 ms(f)':>10} {'int8 ms(h)':>10}")
    lines = [header, "-" * len(header)]
    for r in records:
        int8 = r["int8_ms"]
        lines.append(f"{r['row']:>2}  {r['float_ms']['full']:>8.1f} {r['ratio']['full']:>6.2f} "
                     f"{r['paper_ratio']['full']:>6.2f}  {r['float_ms']['half']:>8.1f} {r['ratio']['half']:>6.2f} "
                     f"{r['paper_ratio']['half']:>6.2f}  {int8.get('full', float('nan')):>10.1f} "
                     f"{int8.get('half', float('nan')):>10.1f}")
    errors = [abs(r["ratio"][n] / r["paper_ratio"][n] - 1) for r in records for n in ("full", "half")]
    worst = max(((abs(r["ratio"][n] / r["paper_ratio"][n] - 1), r["row"], n) for r in records
                 for n in ("full", "half")))
    lines += ["", f"LiteRT float32 (XNNPACK), {threads} thread(s), median of {repeats}; /row8: this row's time over "
              "row 8's here; paper: the same ratio of Table 7's Pixel 3 CPU(f) / CPU(h).",
              f"Largest ratio error: {100 * worst[0]:.1f} % (row {worst[1]}, {worst[2]}); median "
              f"{100 * statistics.median(errors):.1f} %. int8: rows 8 and 11 quantized (static int8, AI Edge "
              "Quantizer)."]
    return "\n".join(lines)
