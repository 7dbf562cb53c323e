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

``"auto"`` (``default_backend``) is torch on a GPU; on a CPU the fastest path measured by ``tools/benchmark.py
--backend all`` (BENCHMARKS.md): ``"openvino-bf16"`` where the CPU has native bfloat16, else ``"onnxruntime"``.
Adding a backend is one class with this interface and one entry in ``BACKENDS``.
"""
from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from segkit.data.transforms import image_to_tensor
from segkit.deploy.export import head_graph, ort_session, photo_graph
from segkit.deploy.folding import optimize_for_inference
from segkit.deploy.labelmap import label_map
from segkit.devices import resolve_device
from segkit.errors import UserError
from segkit.inference import GridPlan, grid_stride, network_logits, plan_for, to_labels

CACHED_SIZES = 4  # compiled graphs kept per backend (one per photo size): a camera's photos share one size


class Backend:
    """What every backend provides: ``name`` (its entry in ``BACKENDS``), ``device``, ``stride`` (the model's
    pixel-grid stride, which its plans are made with), and the three steps. Subclasses set ``name``, call this
    ``__init__`` and implement ``logits``; ``inputs`` and ``labels`` have the common definitions below."""

    name: str
    cpu_only = True  # only the CPU: device None means the CPU, any other device is refused

    def __init__(self, model: nn.Module, device=None):
        if device is None and self.cpu_only:
            device = "cpu"
        self.device = resolve_device(device)  # the project's one device rule (None: CUDA where there is a GPU)
        if self.cpu_only and self.device.type != "cpu":
            raise UserError(f"backend={self.name!r} runs on the CPU; use device='cpu' or backend='torch'.", "backend")
        self.stride = grid_stride(model)

    def inputs(self, photo: np.ndarray, plan: GridPlan, normalize: str):
        """What ``logits`` takes for an RGB uint8 photo: its normalised image resized and padded as ``plan`` says."""
        return plan.network_input(image_to_tensor(photo, normalize)[None].to(self.device))

    def logits(self, inputs, plan: GridPlan) -> torch.Tensor:
        """Head logits (1, C, h, w), on ``device``, of what ``inputs`` made for ``plan``."""
        raise NotImplementedError

    def labels(self, logits: torch.Tensor, plan: GridPlan) -> torch.Tensor:
        """The label map (H, W) uint8 at the plan's image size, on the CPU: the plan executed sparsely."""
        return label_map(logits.cpu(), plan)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, resolution: str) -> torch.Tensor:
        """Labels (H, W) of normalised images (1, 3, H, W) at ``resolution``: the evaluator's callable."""
        plan = plan_for(images.shape[-2:], resolution, self.stride)
        return self.labels(self.logits(plan.network_input(images.to(self.device)), plan), plan)


class TorchBackend(Backend):
    """PyTorch. ``optimize=False`` is the model as trained, eval mode, the plan executed densely: the reference
    (``segkit.inference.predict_scores`` + ``to_labels``)."""

    cpu_only = False

    def __init__(self, model: nn.Module, device=None, threads: int | None = None, optimize: bool = True):
        # threads is not used: PyTorch's thread pool belongs to the process (torch.set_num_threads, which the tools
        # call for --threads), not to a backend.
        self.name = "torch" if optimize else "torch-eager"
        super().__init__(model, device)
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


class CompiledGraphs(OrderedDict):
    """The graphs a runtime compiled, one per key (an input size, or a photo size and plan), the last
    ``CACHED_SIZES`` used kept (least recently used dropped first): a folder of photos of many sizes does not grow
    memory without limit. ``compile`` turns ONNX bytes into a callable from a numpy array to the output array."""

    def __init__(self, compile: Callable[[bytes], Callable[[np.ndarray], np.ndarray]]):
        super().__init__()
        self.compile = compile

    def run(self, key, graph: Callable[[], bytes], array: np.ndarray) -> torch.Tensor:
        if key in self:
            self.move_to_end(key)
        else:
            self[key] = self.compile(graph())
            while len(self) > CACHED_SIZES:
                self.popitem(last=False)
        return torch.from_numpy(np.array(self[key](array), copy=True))  # a copy: runtimes reuse their buffers


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on the CPU: the head graph (``segkit.deploy.export.HeadLogits``) exported once per input size."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, device=None, threads: int | None = None):
        super().__init__(model, device)
        self.model = copy.deepcopy(model).float().eval()
        self.graphs = CompiledGraphs(lambda graph: _ort_runner(ort_session(graph, threads)))

    def logits(self, inputs: torch.Tensor, plan: GridPlan) -> torch.Tensor:
        size = tuple(inputs.shape[-2:])
        return self.graphs.run(size, lambda: head_graph(self.model, size), inputs.contiguous().numpy())


def _ort_runner(session) -> Callable[[np.ndarray], np.ndarray]:
    return lambda array: session.run(None, {"images": array})[0]


class OpenVinoBackend(Backend):
    """OpenVINO's CPU plugin. For photos the graph starts at the uint8 pixels (``PhotoLogits``: normalisation and
    the plan's resize and pad inside); normalised images (the evaluator) take the head graph. ``precision="bf16"``
    runs convolutions in bfloat16 with float32 accumulation on CPUs that have it natively (AVX512-BF16 or AMX;
    OpenVINO's own default there): faster than float32, at the cost of a few label pixels flipping at class
    borders (BENCHMARKS.md; measured by ``tools/eval.py --backend openvino-bf16``)."""

    def __init__(self, model: nn.Module, device=None, threads: int | None = None, precision: str = "f32"):
        import openvino

        if precision == "bf16" and not cpu_has_bf16():
            raise UserError("this CPU has no native bfloat16 (AVX512-BF16 or AMX), so backend='openvino-bf16' would "
                            "be emulated and slow; use backend='openvino'.", "backend")
        self.name = "openvino" if precision == "f32" else f"openvino-{precision}"
        super().__init__(model, device)
        self.model = copy.deepcopy(model).float().eval()
        core = openvino.Core()
        settings = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                    "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
        self.graphs = CompiledGraphs(
            lambda graph: _openvino_runner(core.compile_model(core.read_model(graph, b""), "CPU", settings)))

    def inputs(self, photo: np.ndarray, plan: GridPlan, normalize: str):
        if any(n % m for n, m in zip(plan.image_size, plan.network_size)):
            # An area resize by a non-integer factor exports as an adaptive pooling the exporter rejects: resize
            # outside the graph (odd photo sizes at half resolution).
            return super().inputs(photo, plan, normalize)
        return PhotoInput(np.ascontiguousarray(photo)[None], normalize)

    def logits(self, inputs, plan: GridPlan) -> torch.Tensor:
        if isinstance(inputs, PhotoInput):
            return self.graphs.run((plan, inputs.normalize), lambda: photo_graph(self.model, inputs.normalize, plan),
                                   inputs.pixels)
        size = tuple(inputs.shape[-2:])
        return self.graphs.run(size, lambda: head_graph(self.model, size), inputs.contiguous().numpy())


class PhotoInput:
    """A photo's uint8 pixels (1, H, W, 3) as they go into OpenVINO's photo graph, and how to normalise them."""

    def __init__(self, pixels: np.ndarray, normalize: str):
        self.pixels, self.normalize = pixels, normalize


def _openvino_runner(compiled) -> Callable[[np.ndarray], np.ndarray]:
    request = compiled.create_infer_request()
    return lambda array: request.infer({0: array})[0]


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether OpenVINO finds native bfloat16 arithmetic on this CPU (AVX512-BF16 or AMX); asked once, as the
    answer cannot change within a process and each question starts an OpenVINO core."""
    import openvino

    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


# The backends by name: what --backend offers (with "auto"), the Predictor builds and the benchmark compares.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "torch": TorchBackend,
    "onnxruntime": OnnxRuntimeBackend,
    "openvino": OpenVinoBackend,
    "openvino-bf16": functools.partial(OpenVinoBackend, precision="bf16"),
}
BACKEND_CHOICES = ("auto", *BACKENDS)


def default_backend(device: torch.device | None = None) -> str:
    """``"auto"`` resolved, the fastest measured path of this machine (``tools/benchmark.py --backend all``):
    torch on a GPU; on a CPU "openvino-bf16" where bfloat16 is native, else "onnxruntime" (float32)."""
    if (device if device is not None else resolve_device()).type == "cuda":
        return "torch"
    return "openvino-bf16" if cpu_has_bf16() else "onnxruntime"


def make_backend(model: nn.Module, backend: str = "auto", device=None, threads: int | None = None) -> Backend:
    """The backend called ``backend`` (or "auto") for ``model`` on ``device`` (``segkit.devices.resolve_device``:
    None is CUDA where there is a GPU); ``threads``: the thread pool of the ONNX Runtime and OpenVINO backends."""
    if backend not in BACKEND_CHOICES:
        raise UserError(f"backend={backend!r} is unknown; choose one of {', '.join(BACKEND_CHOICES)}.", "backend")
    if threads is not None and threads < 1:
        raise UserError(f"threads={threads} must be at least 1.", "threads")
    name = default_backend(resolve_device(device)) if backend == "auto" else backend
    return BACKENDS[name](model, device, threads)
