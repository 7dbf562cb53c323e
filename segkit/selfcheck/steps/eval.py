"""eval: tools/eval.py --resolution full half on the synthetic val split: mIoU and ms/image (model time)."""
from __future__ import annotations

import json
import shlex
import sys

from segkit.selfcheck.context import ROOT, Check, ensure_checkpoint
from segkit.selfcheck.report import Step, size_text

EVAL_PY = ROOT / "tools" / "eval.py"


def run(check: Check, step: Step, deadline: float) -> None:
    checkpoint = ensure_checkpoint(check, step, deadline)
    out = check.work / "eval.json"
    cmd = [sys.executable, str(EVAL_PY), "--checkpoint", str(checkpoint), "--data-root", str(check.data),
           "--resolution", "full", "half", "--device", check.options.device, "--json", str(out),
           "--workers", str(check.options.workers)]
    step.commands.append(shlex.join(cmd))
    check.processes.run(cmd, "eval.log", deadline, "tools/eval.py")
    scores = json.loads(out.read_text())
    for r in ("full", "half"):
        step.metrics[r] = {"miou": scores[r]["miou"], "ms_per_image": scores[r]["ms_per_image"]}
    step.metrics["images"] = scores["images"]
    height, width = check.plan.image_size
    sizes = {"full": (height, width), "half": (height // 2, width // 2)}
    step.summary = "; ".join(
        f"{r} ({size_text(sizes[r])}): mIoU {step.metrics[r]['miou']:.2f} %, "
        f"{step.metrics[r]['ms_per_image']:.1f} ms/image" for r in ("full", "half")
    ) + f" ({scores['images']} val images{', untrained weights' if step.metrics.get('untrained_weights') else ''})"
