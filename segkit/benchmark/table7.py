"""Params, MAdds and eager CPU latency of a config, and Table 7 row by row beside the paper
(``tools/benchmark.py CONFIG`` and ``--table7``); medians of repeated runs, never thresholds."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from torch import nn

from segkit.complexity import count_madds, count_parameters
from segkit.config import Config, load_config, table7_config
from segkit.models import build_model
from segkit.paper import TABLE7, Table7Row
from segkit.resolutions import RESOLUTIONS


@torch.inference_mode()
def measure_latency(model: nn.Module, size: tuple[int, int], repeats: int = 5, warmup: int = 1) -> list[float]:
    """Seconds per forward pass of a 1x3xHxW image in eval mode, ``repeats`` timings after ``warmup`` runs."""
    model.eval()
    images = torch.randn(1, 3, *size)
    return time_calls(lambda: model(images), repeats, warmup)


def time_calls(call, repeats: int, warmup: int = 1) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``call()``, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        call()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        timings.append(time.perf_counter() - start)
    return timings


def benchmark_config(config: Config, resolutions=("full", "half"), repeats: int = 5, latency: bool = True) -> dict:
    """The benchmark record of one config (docs/architecture.md#output-formats): params, MAdds and median latency
    per resolution."""
    model = build_model(config.model)
    record = {
        "config": config.name,
        "params": count_parameters(model),
        "madds": {name: count_madds(model, RESOLUTIONS[name].size) for name in resolutions},
        "latency_ms": {},
        "backend": "torch",
        "threads": torch.get_num_threads(),
    }
    if latency:
        for name in resolutions:
            timings = measure_latency(model, RESOLUTIONS[name].size, repeats=repeats)
            record["latency_ms"][name] = round(1000 * statistics.median(timings), 2)
    return record


def table7_configs(config_dir: Path) -> list[tuple[Table7Row, Config]]:
    """Pair each paper row with ``configs/table7/rowNN_*.py``, checking the file builds the network of
    ``table7_config`` for that row (a file edited by hand may not)."""
    pairs = []
    for row in TABLE7:
        matches = sorted(config_dir.glob(f"row{row.n:02d}_*.py"))
        if len(matches) != 1:
            raise FileNotFoundError(f"expected one config for Table 7 row {row.n} in {config_dir}, "
                                    f"found {len(matches)}")
        config = load_config(matches[0])
        built, expected = vars(config.model), vars(table7_config(row.n).resolved().model)
        differs = [f"model.{key}={value!r}" for key, value in built.items() if value != expected[key]]
        if differs:
            raise ValueError(f"{matches[0]} builds another network than Table 7 row {row.n} "
                             f"(segkit.config.table7_config({row.n})): {', '.join(differs)}")
        pairs.append((row, config))
    return pairs


def _relative(ours: float, paper: float) -> str:
    return f"{100 * (ours / paper - 1):+.1f}%"


def table7_report(config_dir: Path, repeats: int = 3, latency: bool = True) -> tuple[list[dict], str]:
    """Measure every Table 7 row; return the records and a text table beside the paper's numbers."""
    records, lines = [], []
    header = (f"{'N':>2}  {'model':<34} {'Params':>8} {'paper':>6} {'diff':>6}  {'MAdds(f)':>8} {'paper':>6} "
              f"{'diff':>6}  {'MAdds(h)':>8}")
    if latency:
        header += f"  {'CPU(f)':>8} {'Pixel3':>7} {'ratio':>6}  {'CPU(h)':>8} {'Pixel3':>7} {'ratio':>6}"
    lines += [header, "-" * len(header)]
    for row, config in table7_configs(config_dir):
        record = benchmark_config(config, repeats=repeats, latency=latency)
        params, full, half = record["params"] / 1e6, record["madds"]["full"] / 1e9, record["madds"]["half"] / 1e9
        record["paper"] = {"params": row.params, "madds": row.madds, "cpu_full": row.cpu_full, "cpu_half": row.cpu_half}
        records.append(record)
        label = (f"{row.backbone.replace('mobilenet_', '')} x{row.width_mult:g}{' RF2' if row.rf2 else ''} "
                 f"{row.head} F={row.head_channels}")
        line = (f"{row.n:>2}  {label:<34} {params:>7.3f}M {row.params:>5.2f}M {_relative(params, row.params):>6}  "
                f"{full:>7.2f}B {row.madds:>5.2f}B {_relative(full, row.madds):>6}  {half:>7.2f}B")
        if latency:
            f_ms, h_ms = record["latency_ms"]["full"], record["latency_ms"]["half"]
            line += (f"  {f_ms:>6.0f}ms {1000 * row.cpu_full:>5.0f}ms {f_ms / (1000 * row.cpu_full):>6.2f}"
                     f"  {h_ms:>6.0f}ms {1000 * row.cpu_half:>5.0f}ms {h_ms / (1000 * row.cpu_half):>6.2f}")
        lines.append(line)
    notes = ["MAdds: conv/linear multiply-adds (torch.utils.flop_counter FLOPs / 2); the paper also counts some",
             "BN/activation/resize work, so ours sit a few percent under. Params: all trainable parameters."]
    if latency:
        notes.append(f"CPU: median of {repeats} eager PyTorch forward passes, {torch.get_num_threads()} threads on this"
                     " machine; Pixel3: one large core of a Pixel 3 (the paper). Different hardware: compare ratios"
                     " between rows, not absolute times.")
    return records, "\n".join(lines + [""] + notes)
