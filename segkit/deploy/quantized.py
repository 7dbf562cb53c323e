"""A checkpoint's int8 graphs, and the backends that run them.

``tools/quantize.py`` writes them into a folder beside the checkpoint (``runs/demo/best.int8/`` for
``runs/demo/best.pt``): one graph per format, photo size (the evaluation split's) and resolution, and
``quantized.json``, which says which checkpoint they were made from (its SHA-256) and, per graph, what it is for,
the float and int8 mIoU it scored, the gate it passed and the kind of CPU it passed it on (``cpu_int8``):

    {"checkpoint": "runs/demo/best.pt", "checkpoint_sha256": "...", "graphs": [{"format": "openvino",
     "photo_size": [1024, 2048], "resolution": "full", "file": "openvino_full_h1024_w2048.xml", "float": 72.1,
     "int8": 71.8, "drop": 0.3, "max_drop": 1.0, "keep_float": [], "calibration": {...}, "cpu_int8": "vnni",
     "cpu_isa": "avx512_vnni"}, ...]}

The folder is written whole, and only when every graph of the run passed its gate, so every graph listed is one
``tools/quantize.py`` validated.

``"openvino-int8"`` runs the OpenVINO graphs (bfloat16 for what stays float where the CPU has it), ``"litert-int8"``
the LiteRT ones. Both start at the photo's uint8 pixels, like the phone graph (``segkit.deploy.export.PhoneGraph``).
How exact a CPU's int8 arithmetic is depends on its kind (``cpu_int8``), so ``"openvino-int8"`` says once when its
graphs passed their gate on another kind, and ``"auto"`` takes them only on the kind they passed it on.
"""
from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segkit.cpu import cpu_int8
from segkit.deploy.backend import Backend, BackendOptions, CompiledGraphs, cpu_has_bf16, openvino_compiler
from segkit.deploy.litert import TfliteRunner, nchw
from segkit.errors import UserError
from segkit.hub import file_sha256
from segkit.inference import GridPlan, plan_for

MANIFEST = "quantized.json"
@functools.lru_cache(maxsize=None)
def warn_once(text: str) -> None:
    """``text`` as one warning line on stderr, once per process."""
    print(f"warning: {text}", file=sys.stderr)


@dataclass
class QuantizedGraphs:
    """A folder of int8 graphs and its ``quantized.json``."""

    folder: Path
    manifest: dict

    @classmethod
    def read(cls, folder) -> "QuantizedGraphs | None":
        """The folder's graphs, or None where it holds no ``quantized.json``."""
        path = Path(folder) / MANIFEST
        if not path.is_file():
            return None
        try:
            return cls(Path(folder), json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} cannot be read ({exc}); quantize again with tools/quantize.py.") from None

    def records(self, format: str) -> list[dict]:
        return [record for record in self.manifest.get("graphs", []) if record.get("format") == format]

    def made_from(self, checkpoint) -> bool:
        return self.manifest.get("checkpoint_sha256") == file_sha256(checkpoint)

    def validated(self, format: str, checkpoint=None) -> bool:
        """Whether there are ``format`` graphs (each passed its gate when written), made from ``checkpoint``."""
        return bool(self.records(format)) and (checkpoint is None or self.made_from(checkpoint))

    def graph_for(self, format: str, plan: GridPlan, stride: int) -> Path | None:
        """The graph file of ``format`` that executes ``plan``, or None where none was made for it."""
        for record in self.records(format):
            if plan_for(tuple(record["photo_size"]), record["resolution"], stride) == plan:
                return self.folder / record["file"]
        return None

    def other_cpu(self, format: str) -> str | None:
        """None where every ``format`` graph passed its gate on a CPU of this one's kind (``cpu_int8``); else the
        start of a sentence saying on which kinds they did ("unrecorded": written before the kind was)."""
        kinds = {(r.get("cpu_int8", "unrecorded"), r.get("cpu_isa", "?")) for r in self.records(format)}
        kind, isa = cpu_int8()
        if {k for k, _ in kinds} == {kind}:
            return None
        listed = ", ".join(sorted(f"{k}/{i}" for k, i in kinds))
        return (f"the {format} int8 graphs in {self.folder} passed their accuracy gate on a CPU of kind {listed}, "
                f"not on one like this ({kind}/{isa})")

    def sizes(self, format: str) -> str:
        """The photo sizes and resolutions ``format``'s graphs were made for, as a phrase."""
        return ", ".join(f"{r['photo_size'][1]}x{r['photo_size'][0]} {r['resolution']}" for r in self.records(format))


class QuantizedBackend(Backend):
    """What the int8 backends share: the graphs of one format from ``options.quantized``, one compiled graph per
    plan, and for plans no graph was made for a ``fallback`` backend (the float default, when "auto" chose int8)
    or one sentence."""

    format: str
    photo_graph = True

    def __init__(self, model: nn.Module, options: BackendOptions, fallback: Backend | None = None):
        super().__init__(model, options)
        graphs = QuantizedGraphs.read(options.quantized) if options.quantized is not None else None
        if graphs is None or not graphs.records(self.format):
            raise UserError(f"backend={self.name!r} needs the {self.format} int8 graphs of this checkpoint "
                            f"({options.quantized or 'no folder given'}); make them with tools/quantize.py.", "backend")
        if options.checkpoint is not None and not graphs.made_from(options.checkpoint):
            raise UserError(f"the int8 graphs in {graphs.folder} were made from another checkpoint than "
                            f"{options.checkpoint}; quantize it again with tools/quantize.py.", "backend")
        self.graphs, self.fallback = graphs, fallback
        # compile is a static method: the cache must not hold the backend (a reference cycle would leave the
        # compiled graphs to a later garbage collection, on whatever thread runs it).
        self.compiled = CompiledGraphs(functools.partial(self.compile, threads=options.threads))

    @staticmethod
    def compile(path, threads: int | None):
        raise NotImplementedError

    def covers(self, plan: GridPlan) -> bool:
        return self.graphs.graph_for(self.format, plan, self.stride) is not None

    def inputs(self, photo: np.ndarray, plan: GridPlan):
        if not self.covers(plan) and self.fallback is not None:
            return self.fallback.inputs(photo, plan)
        return super().inputs(photo, plan)

    def logits(self, inputs, plan: GridPlan) -> torch.Tensor:
        path = self.graphs.graph_for(self.format, plan, self.stride)
        if path is None and self.fallback is not None:
            return self.fallback.logits(inputs, plan)
        if path is None:
            raise UserError(f"the {self.format} int8 graphs in {self.graphs.folder} are for "
                            f"{self.graphs.sizes(self.format)}, not {plan.image_size[1]}x{plan.image_size[0]} at this "
                            "resolution; quantize for it (tools/quantize.py) or use a float backend.", "backend")
        return self.compiled.run(plan, lambda: path, inputs.pixels)

    def __call__(self, images: torch.Tensor, resolution: str) -> torch.Tensor:
        if self.fallback is not None and not self.covers(plan_for(images.shape[-2:], resolution, self.stride)):
            return self.fallback(images, resolution)
        return super().__call__(images, resolution)


class OpenVinoInt8Backend(QuantizedBackend):
    """OpenVINO's CPU plugin on the NNCF-quantized graphs (int8 convolutions; bfloat16 for what stays float where
    the CPU has it natively, else float32)."""

    name = "openvino-int8"
    format = "openvino"

    def __init__(self, model: nn.Module, options: BackendOptions, fallback: Backend | None = None):
        super().__init__(model, options, fallback)
        other_cpu = self.graphs.other_cpu(self.format)
        if other_cpu:
            warn_once(f"{other_cpu}, whose int8 arithmetic differs; quantize again on this machine "
                      "(tools/quantize.py) to check them here.")

    @staticmethod
    def compile(path, threads: int | None):
        return openvino_compiler("bf16" if cpu_has_bf16() else "f32", threads)(path)


class LiteRTInt8Backend(QuantizedBackend):
    """LiteRT's interpreter (XNNPACK) on the AI Edge Quantizer's int8 phone graphs; their logits come out
    channels-last and int8, dequantized here."""

    name = "litert-int8"
    format = "litert"

    @staticmethod
    def compile(path, threads: int | None):
        return TfliteRunner(Path(path).read_bytes(), threads)

    def logits(self, inputs, plan: GridPlan) -> torch.Tensor:
        logits = super().logits(inputs, plan)
        return nchw(logits) if self.covers(plan) else logits
