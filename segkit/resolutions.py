"""The evaluation resolutions, one table for evaluation, inference, benchmarks and command-line choices.

Full resolution runs the network on the photo as it is; half on the photo area-downsampled by 2 (segkit's
definition: TF cannot build the authors' graph at 513x1025, see docs/paper.md). ``size`` is the input Table 7
times on: CPU(f) at 1024x2048 and CPU(h) at 512x1024.
"""
from __future__ import annotations

from dataclasses import dataclass

from segkit.errors import check_choice


@dataclass(frozen=True)
class Resolution:
    name: str
    scale: float  # network input size / photo size
    size: tuple[int, int]  # (height, width) of Table 7's input at this resolution


RESOLUTIONS = {"full": Resolution("full", 1.0, (1024, 2048)), "half": Resolution("half", 0.5, (512, 1024))}


def resolution(name: str) -> Resolution:
    """The resolution called ``name``, or one sentence naming the choices (the one check of a resolution name)."""
    check_choice("resolution", name, RESOLUTIONS, "resolution")
    return RESOLUTIONS[name]
