"""predict: segkit.predict.Predictor (backend torch) on a val photo at full and half resolution and on the photo
area-downsampled by 2 at full: median ms of the plan's calls after warm-up (its child process times it)."""
from __future__ import annotations

import json
import shlex

from segkit.data.cityscapes import IMAGE_SUFFIX
from segkit.selfcheck.context import Check, ensure_checkpoint
from segkit.selfcheck.processes import module_command
from segkit.selfcheck.report import Step, memory_text, size_text


def run(check: Check, step: Step, deadline: float) -> None:
    p, checkpoint = check.plan, ensure_checkpoint(check, step, deadline)
    out = check.work / "predict.json"
    photos = sorted((check.data / "leftImg8bit" / "val").glob(f"*/*{IMAGE_SUFFIX}"))
    photo = photos[0] if photos else None  # None: noise of the plan's image size
    cmd = module_command("segkit.selfcheck.children.predict", checkpoint=checkpoint, device=check.options.device,
                         photo=photo, height=p.image_size[0], width=p.image_size[1], warmup=p.predict_warmup,
                         repeats=p.predict_repeats, out=out)
    step.commands.append(shlex.join(cmd))
    check.processes.run(cmd, "predict.log", deadline, "Predictor")
    result = json.loads(out.read_text())
    step.metrics.update(result)
    parts = [f"{size_text(result[k]['photo'])} {result[k]['resolution']} {result[k]['median_ms']:.1f} ms"
             for k in ("full", "half", "small_full")]
    step.summary = (f"Predictor torch on {result['device']}: " + ", ".join(parts) +
                    f" (median of {p.predict_repeats} after {p.predict_warmup} warm-up"
                    f"{'; noise photo' if photo is None else ''}"
                    f"{'; untrained weights' if step.metrics.get('untrained_weights') else ''}), "
                    f"{memory_text(result)}")
