"""What a user meets first (``tools/benchmark.py --cold``): the whole-process wall time of ``tools/infer.py PHOTO``
for one photo, outputs written, with its deploy bundle cached and the first time (an empty cache: the model loaded
and the bundle made), beside ``python -c "import torch"`` and a plain torchvision LR-ASPP script on the same photo
(read, normalise, network, upsample, argmax, one PNG written). The commands alternate, one after another, for
``repeats`` rounds; medians are reported, with each as a ratio to importing torch.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from segkit.cpu import describe as describe_cpu

ROOT = Path(__file__).resolve().parents[2]

# The naive script a user would write with torchvision (random weights: the work, not the answer, is measured).
TORCHVISION_SCRIPT = """\
import sys
import numpy as np
import torch
from PIL import Image
from torchvision.models.segmentation import lraspp_mobilenet_v3_large

torch.set_num_threads({threads})
model = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=19).eval()
photo = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
images = ((torch.from_numpy(photo).float() / 255 - mean) / std).permute(2, 0, 1)[None]
with torch.inference_mode():
    labels = model(images)["out"].argmax(1)[0].to(torch.uint8).numpy()
Image.fromarray(labels).save(sys.argv[2])
"""


def cold_report(checkpoint: Path, photo: Path, backend: str = "auto", repeats: int = 5, threads: int | None = None,
                say=print) -> dict:
    """Medians (seconds) of each command over ``repeats`` alternating rounds, and their ratios to importing torch."""
    threads = threads or os.cpu_count() or 1
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="segkit-cold-") as scratch:
        scratch = Path(scratch)
        script = scratch / "torchvision_lraspp.py"
        script.write_text(TORCHVISION_SCRIPT.format(threads=threads))
        infer = [python, str(ROOT / "tools" / "infer.py"), str(photo), "--checkpoint", str(checkpoint),
                 "--backend", backend, "--threads", str(threads), "--out", str(scratch / "out")]
        warm, cold = scratch / "warm", scratch / "cold"
        commands = {
            "tools/infer.py, bundle cached": (infer, warm),
            "tools/infer.py, first time": (infer, cold),
            'python -c "import torch"': ([python, "-c", "import torch"], warm),
            "torchvision LR-ASPP script": ([python, str(script), str(photo), str(scratch / "tv.png")], warm),
        }
        _run(infer, warm)  # the cache the "cached" runs find
        times = {name: [] for name in commands}
        for round_ in range(repeats):
            for name, (command, home) in commands.items():
                if home == cold:
                    shutil.rmtree(cold, ignore_errors=True)  # the first time, every time: no bundle, no cache
                times[name].append(_run(command, home))
            say(f"round {round_ + 1}/{repeats}: " + ", ".join(f"{n} {t[-1]:.2f} s" for n, t in times.items()))
    medians = {name: statistics.median(values) for name, values in times.items()}
    torch_import = medians['python -c "import torch"']
    return {"photo": str(photo), "checkpoint": str(checkpoint), "backend": backend, "threads": threads,
            "cpu": describe_cpu(), "repeats": repeats, "seconds": times, "median_s": medians,
            "ratio_to_import_torch": {name: value / torch_import for name, value in medians.items()}}


def cold_text(record: dict) -> str:
    lines = [f"whole-process wall time, median of {record['repeats']} alternating rounds ({record['cpu']}; "
             f"tools/infer.py --backend {record['backend']}, {record['threads']} threads)"]
    for name, value in record["median_s"].items():
        lines.append(f"  {name:32} {value:6.2f} s  {record['ratio_to_import_torch'][name]:5.2f}x import torch")
    return "\n".join(lines)


def _run(command: list[str], home: Path) -> float:
    """Seconds of one whole process, with ``$SEGKIT_HOME`` at ``home``; a failure is one line with its stderr."""
    from segkit.errors import UserError

    environment = {**os.environ, "SEGKIT_HOME": str(home)}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"{' '.join(command[:3])} ... failed ({last}).")
    return elapsed
