"""The backend interface: what every deploy backend provides (``Backend``), what it is built with
(``BackendOptions``), and what the runtimes share: the per-size cache of compiled graphs (``CompiledGraphs``),
OpenVINO's compiler (``openvino_compiler``) and whether this CPU has native bfloat16 (``cpu_has_bf16``).

A backend executes a prediction's ``segkit.inference.GridPlan`` in three steps: the photo to what its network takes
(``inputs``), the network to the head logits (``logits``), the logits to the label map (``labels``); the same steps
make the evaluator's callable (``__call__``: normalised images and a resolution -> labels). The backends themselves
and their table are ``segkit.deploy.backends``.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from segkit.cpu import has_bf16
from segkit.data.classes import ClassTable
from segkit.data.normalize import image_to_tensor, tensor_to_image
from segkit.deploy.labelmap import label_map
from segkit.devices import resolve_device
from segkit.errors import UserError
from segkit.inference import GridPlan, grid_stride, plan_for
from segkit.runtime.runners import openvino_core

CACHED_SIZES = 4  # compiled graphs kept per backend (one per photo size): a camera's photos share one size


@dataclass(frozen=True)
class BackendOptions:
    """What a backend is built with besides the model: the ``device`` (``segkit.devices.resolve_device``), the
    runtime's ``threads`` (PyTorch's pool is the process's: ``torch.set_num_threads``), how photos are normalised
    (the checkpoint's ``data.normalize``), ``quantized``: the folder of the checkpoint's int8 graphs
    (``tools/quantize.py``), the ``checkpoint`` file the model came from (int8 graphs must be made from it; deploy
    bundles are cached under its hash) and its class ``table`` (what a bundle records; default Cityscapes')."""

    device: str | torch.device | None = None
    threads: int | None = None
    normalize: str = "tf"
    quantized: Path | None = None
    checkpoint: Path | None = None
    table: ClassTable | None = None


@dataclass(frozen=True)
class PhotoInput:
    """A photo's uint8 pixels (1, H, W, 3), as they go into a graph that starts at the pixels."""

    pixels: np.ndarray


class Backend:
    """What every backend provides: ``name`` (its entry in ``segkit.deploy.backends.BACKENDS``), ``device``,
    ``stride`` (the model's pixel-grid stride, which its plans are made with), ``normalize``, and the three steps.
    Subclasses set ``name``, call this ``__init__`` and implement ``logits``; ``photo_graph = True`` makes the
    backend take photos as uint8 pixels (its graph normalises)."""

    name: str
    cpu_only = True  # only the CPU: device None means the CPU, any other device is refused
    photo_graph = False

    def __init__(self, model: nn.Module, options: BackendOptions):
        device = "cpu" if options.device is None and self.cpu_only else options.device
        self.device = resolve_device(device)  # the project's one device rule (None: CUDA where there is a GPU)
        if self.cpu_only and self.device.type != "cpu":
            raise UserError(f"backend={self.name!r} runs on the CPU; use device='cpu' or backend='torch'.", "backend")
        self.stride = grid_stride(model)
        self.normalize = options.normalize

    def inputs(self, photo: np.ndarray, plan: GridPlan):
        """What ``logits`` takes for an RGB uint8 photo: the pixels (a photo graph), or the normalised image
        resized and padded as ``plan`` says."""
        if self.photo_graph:
            return PhotoInput(np.ascontiguousarray(photo)[None])
        return plan.network_input(image_to_tensor(photo, self.normalize)[None].to(self.device))

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
        if self.photo_graph:  # the photo back from its normalised image (exact for photos read as uint8)
            inputs = PhotoInput(tensor_to_image(images, self.normalize)[None])
        else:
            inputs = plan.network_input(images.to(self.device))
        return self.labels(self.logits(inputs, plan), plan)


class CompiledGraphs(OrderedDict):
    """The graphs a runtime compiled, one per key (an input size, or a plan), the last ``CACHED_SIZES`` used kept
    (least recently used dropped first): a folder of photos of many sizes does not grow memory without limit.
    ``compile`` turns a graph (bytes) into a callable from a numpy array to the output array."""

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


def openvino_compiler(precision: str, threads: int | None) -> Callable[[bytes], Callable[[np.ndarray], np.ndarray]]:
    """ONNX bytes, or a graph file (ONNX or OpenVINO IR) -> a callable running it on OpenVINO's CPU plugin at
    ``precision``."""
    core = openvino_core()
    settings = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}

    def compile(graph) -> Callable[[np.ndarray], np.ndarray]:
        model = core.read_model(graph, b"") if isinstance(graph, bytes) else core.read_model(str(graph))
        request = core.compile_model(model, "CPU", settings).create_infer_request()
        return lambda array: request.infer({0: array})[0]

    return compile


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX) that oneDNN may use: its flags, as
    ``segkit.cpu`` reads them (OpenVINO's own list of capabilities ignores oneDNN's ISA cap)."""
    return has_bf16()
