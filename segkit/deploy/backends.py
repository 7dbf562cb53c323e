"""Deploy backends: one interface (``Backend``), one table of them (``BACKENDS``), and ``make_backend``.

Every backend executes a prediction's ``segkit.inference.GridPlan``: it turns a photo into the plan's network input
(``inputs``), runs the network to the head logits (``logits``), and takes them to the label map (``labels``); the
same three steps make the evaluator's callable (``__call__``: normalised images and a resolution -> labels). They
differ in how:

- ``"torch"``: the model with BatchNorm folded into the convolutions, channels_last, inference mode; the label map
  by ``segkit.deploy.labelmap.label_map`` (the plan executed sparsely: exact interpolation only where the class
  changes) on a CPU, the plan executed densely on a GPU.
- ``"onnxruntime"``: the network up to the head logits exported to ONNX once per input size and run by ONNX Runtime
  with all graph optimisations; then ``label_map``.
- ``"openvino"`` / ``"openvino-bf16"``: OpenVINO's CPU plugin, float32 or bfloat16 (where the CPU has it natively).
  Its graph starts at the photo's uint8 pixels (``segkit.deploy.export.PhotoLogits``: normalisation and the half-
  resolution resize inside, fused by OpenVINO), then ``label_map``.

- ``"litert"``: LiteRT's interpreter (XNNPACK, the kernels of Android's runtime) on the phone graph
  (``segkit.deploy.litert``); ``"openvino-int8"`` / ``"litert-int8"``: a checkpoint's int8 graphs
  (``segkit.deploy.quantized``, made by ``tools/quantize.py``).

``"auto"`` (``make_backend``) is torch on a GPU; on a CPU the fastest path measured by ``tools/benchmark.py
--backend all`` (BENCHMARKS.md): ``"openvino-int8"`` where the checkpoint has int8 graphs that passed their
accuracy gate on a CPU of this one's kind (with or without VNNI), else ``"openvino-bf16"`` where the CPU has native
bfloat16, else ``"onnxruntime"``. Adding a backend is one class with the interface of
``segkit.deploy.backend.Backend`` and one entry in ``BACKENDS``.
"""
from __future__ import annotations

import copy
import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from segkit.data.classes import ClassTable
from segkit.deploy.backend import Backend, BackendOptions, CompiledGraphs, PhotoInput, cpu_has_bf16
from segkit.deploy.bundle import cached_bundle, write_bundle
from segkit.deploy.folding import optimize_for_inference
from segkit.deploy.litert import optional
from segkit.deploy.quantized import LiteRTInt8Backend, OpenVinoInt8Backend, QuantizedGraphs, warn_once
from segkit.devices import resolve_device
from segkit.errors import UserError
from segkit.inference import GridPlan, network_logits, plan_for, to_labels
from segkit.resolutions import RESOLUTIONS
from segkit.runtime.bundle import Bundle, bundle_key, checkpoint_sha256
from segkit.runtime.choice import BACKEND_CHOICES, default_cpu_backend


class TorchBackend(Backend):
    """PyTorch. ``optimize=False`` is the model as trained, eval mode, the plan executed densely: the reference
    (``segkit.inference.predict_scores`` + ``to_labels``)."""

    cpu_only = False

    def __init__(self, model: nn.Module, options: BackendOptions = BackendOptions(), optimize: bool = True):
        # options.threads is not used: PyTorch's thread pool belongs to the process (torch.set_num_threads, which
        # the tools call for --threads), not to a backend.
        self.name = "torch" if optimize else "torch-eager"
        super().__init__(model, options)
        self.optimize = optimize
        self.model = optimize_for_inference(model, self.device) if optimize else model.eval().to(self.device)
        self.memory_format = torch.channels_last if optimize else torch.contiguous_format

    @torch.inference_mode()
    def logits(self, inputs: torch.Tensor, plan: GridPlan) -> torch.Tensor:
        return network_logits(self.model, inputs.contiguous(memory_format=self.memory_format))

    def labels(self, logits: torch.Tensor, plan: GridPlan) -> torch.Tensor:
        if self.optimize and self.device.type == "cpu":
            return super().labels(logits, plan)
        return to_labels(plan.upsample(logits))[0].cpu()  # the plan executed densely (the reference; GPUs)


class BundledBackend(Backend):
    """ONNX Runtime, OpenVINO and LiteRT: the graph of each plan is a deploy bundle (``segkit.deploy.bundle``: the
    photo's uint8 pixels to the head logits, normalisation and the plan's resize and pad inside) run by its
    runtime's runner (``segkit.runtime.runners``) -- the graph and the runner ``tools/infer.py`` and
    ``segkit.runtime`` use. Where the checkpoint is known (``BackendOptions.checkpoint``) the bundles are the
    cache's (``$SEGKIT_HOME/bundles/``: made once, found by later processes), else this backend's own, made in a
    temporary folder."""

    photo_graph = True
    runtime: str
    precision = "f32"

    def __init__(self, model: nn.Module, options: BackendOptions = BackendOptions()):
        super().__init__(model, options)
        self.model = copy.deepcopy(model).float().eval()
        self.checkpoint, self.table = options.checkpoint, options.table or ClassTable.cityscapes()
        self.checkpoint_sha256 = checkpoint_sha256(options.checkpoint) if options.checkpoint else None
        self.scratch = None if self.checkpoint_sha256 else tempfile.TemporaryDirectory(prefix="segkit-bundles-")
        threads = options.threads
        self.graphs = CompiledGraphs(lambda bundle: bundle.runner(threads))  # holds no reference to the backend

    def logits(self, inputs: PhotoInput, plan: GridPlan) -> torch.Tensor:
        return self.graphs.run(plan, lambda: self.bundle(plan), inputs.pixels)

    def bundle(self, plan: GridPlan) -> Bundle:
        """The deploy bundle of ``plan``: the cache's, made on first use, or this backend's own."""
        resolution = next((name for name in RESOLUTIONS if plan_for(plan.image_size, name, self.stride) == plan),
                          None)
        if resolution is None:
            raise UserError(f"backend={self.name!r} runs whole photos at the resolutions {', '.join(RESOLUTIONS)}.",
                            "backend")
        if self.checkpoint_sha256 is not None:
            return cached_bundle(self.model, self.checkpoint, self.checkpoint_sha256, self.normalize, self.table, plan,
                                 resolution, self.runtime, self.precision)
        folder = Path(self.scratch.name) / bundle_key("", plan.image_size, resolution, self.runtime, self.precision)
        return write_bundle(self.model, folder, None, "", self.normalize, self.table, plan, resolution, self.runtime,
                            self.precision)


class OnnxRuntimeBackend(BundledBackend):
    """ONNX Runtime on the CPU, float32, all graph optimisations."""

    name = "onnxruntime"
    runtime = "onnxruntime"


class OpenVinoBackend(BundledBackend):
    """OpenVINO's CPU plugin, which fuses the graph's normalisation into the first convolution. ``precision="bf16"``
    runs convolutions in bfloat16 with float32 accumulation on CPUs that have it natively (AVX512-BF16 or AMX;
    OpenVINO's own default there): faster than float32, at the cost of a few label pixels flipping at class
    borders (BENCHMARKS.md; measured by ``tools/eval.py --backend openvino-bf16``)."""

    runtime = "openvino"

    def __init__(self, model: nn.Module, options: BackendOptions = BackendOptions(), precision: str = "f32"):
        if precision == "bf16" and not cpu_has_bf16():
            raise UserError("this CPU has no native bfloat16 (AVX512-BF16 or AMX), so backend='openvino-bf16' would "
                            "be emulated and slow; use backend='openvino'.", "backend")
        self.name = "openvino" if precision == "f32" else f"openvino-{precision}"
        self.precision = precision
        super().__init__(model, options)


class LiteRTBackend(BundledBackend):
    """LiteRT's interpreter in float32 (XNNPACK, the kernels of Android's runtime) on the phone graph
    (``segkit.deploy.litert``), converted once per photo size and resolution (tens of seconds each: the converter
    lowers through StableHLO; cached with the checkpoint's bundles)."""

    name = "litert"
    runtime = "litert"

    def __init__(self, model: nn.Module, options: BackendOptions = BackendOptions()):
        optional("ai_edge_litert.interpreter", "backend='litert'")
        super().__init__(model, options)


# The backends by name (segkit.runtime.choice.BACKEND_NAMES, known without PyTorch): what --backend offers (with
# "auto"), the Predictor builds and the benchmark compares.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "torch": TorchBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "openvino": OpenVinoBackend,
    "openvino-bf16": functools.partial(OpenVinoBackend, precision="bf16"),
    "openvino-int8": OpenVinoInt8Backend,
    "litert": LiteRTBackend,
    "litert-int8": LiteRTInt8Backend,
}
NEEDS_QUANTIZED = ("openvino-int8", "litert-int8")  # backends that run a checkpoint's int8 graphs (tools/quantize.py)


def default_backend(device: torch.device | None = None) -> str:
    """The fastest float path of this machine (``tools/benchmark.py --backend all``): torch on a GPU; on a CPU the
    rule of ``segkit.runtime.choice.default_cpu_backend`` (by the CPU's kind)."""
    if (device if device is not None else resolve_device()).type == "cuda":
        return "torch"
    return default_cpu_backend()


def make_backend(model: nn.Module, backend: str = "auto", options: BackendOptions = BackendOptions()) -> Backend:
    """The backend called ``backend`` for ``model``. "auto" is ``default_backend``, or on a CPU "openvino-int8"
    where ``options.checkpoint`` comes with OpenVINO int8 graphs that passed their accuracy gate
    (``tools/quantize.py``) on a CPU of this one's kind (``cpu_int8``: with or without VNNI), the float default
    taking the photo sizes they were not made for; graphs gated on another kind are left, said once."""
    if backend not in BACKEND_CHOICES:
        raise UserError(f"backend={backend!r} is unknown; choose one of {', '.join(BACKEND_CHOICES)}.", "backend")
    if options.threads is not None and options.threads < 1:
        raise UserError(f"threads={options.threads} must be at least 1.", "threads")
    if backend != "auto":
        return BACKENDS[backend](model, options)
    name = default_backend(resolve_device(options.device))
    graphs = QuantizedGraphs.read(options.quantized) if options.quantized is not None and name != "torch" else None
    if graphs is None or options.checkpoint is None or not graphs.validated("openvino", options.checkpoint):
        return BACKENDS[name](model, options)
    other_cpu = graphs.other_cpu("openvino")
    if other_cpu:
        warn_once(f"{other_cpu}; auto uses {name} (quantize again on this machine to use them).")
        return BACKENDS[name](model, options)
    return OpenVinoInt8Backend(model, options, fallback=BACKENDS[name](model, options))
