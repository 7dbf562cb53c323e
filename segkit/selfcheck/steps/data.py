"""data: the synthetic city (segkit.data.synthetic), train and val images at the plan's size, one process per
core."""
from __future__ import annotations

import shlex
import time

from segkit.selfcheck.context import Check
from segkit.selfcheck.processes import module_command
from segkit.selfcheck.report import Step, size_text


def run(check: Check, step: Step, deadline: float) -> None:
    p, processes = check.plan, max(1, check.options.cpus)
    cmd = module_command("segkit.selfcheck.children.data", root=check.data, train=p.train_images, val=p.val_images,
                         height=p.image_size[0], width=p.image_size[1], processes=processes)
    step.commands.append(shlex.join(cmd))
    start_s = time.perf_counter()
    check.processes.run(cmd, "data.log", deadline, "make_synthetic")
    step.metrics = {"train_images": p.train_images, "val_images": p.val_images, "size": list(p.image_size),
                    "seconds": time.perf_counter() - start_s}
    step.summary = (f"{p.train_images} train + {p.val_images} val images, {size_text(p.image_size)} "
                    f"(seed 0, {processes} processes)")
