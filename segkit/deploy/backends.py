"""Deploy backends: normalised images (1, 3, H, W) + a resolution -> trainId labels (H, W) uint8.

Every backend computes what ``segkit.inference`` computes (at half resolution area-downsample with
``resize_images``; pad to the model's pixel grid; network; upsample the logits to the padded size, crop, and at
half resolution upsample to the image size; per-pixel max), and they differ in how:

- ``"torch"``: the model with BatchNorm folded into the convolutions, channels_last, inference mode; on a CPU the
  label map comes from the head's 1/8 logits by ``segkit.deploy.labelmap.label_map`` (exact interpolation only
  where the class changes, instead of materialising 19 full-size logit planes); on a GPU, ``predict_scores`` +
  ``to_labels`` there.
- ``"onnxruntime"``: the network up to the head's logits, exported to ONNX once per input size
  (``segkit.deploy.export``), run by ONNX Runtime with all graph optimisations; then ``label_map``.
- ``"openvino"`` / ``"openvino-bf16"``: OpenVINO's CPU plugin, float32 or bfloat16 (where the CPU has it
  natively). For photos the graph starts at the uint8 pixels (``PhotoLogits``: normalisation and the half-
  resolution area resize inside, fused by OpenVINO), then ``label_map``.
- ``"auto"``: ``"torch"`` on a GPU; on a CPU the fastest path measured by ``tools/benchmark.py --backend all``
  (BENCHMARKS.md): ``"openvino-bf16"`` where the CPU has native bfloat16, else ``"onnxruntime"``, else
  ``"torch"``.
"""
from __future__ import annotations

import copy
import functools
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from segkit.data.transforms import image_to_tensor, scale_offset
from segkit.deploy.export import onnx_bytes, ort_session
from segkit.deploy.folding import optimize_for_inference
from segkit.deploy.labelmap import label_map, resize_steps
from segkit.errors import UserError
from segkit.inference import grid_size, grid_stride, pad_to_grid, predict_scores, resize_images, scaled_size, to_labels
from segkit.resolutions import RESOLUTIONS

BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "openvino-bf16")
CACHED_SIZES = 4  # compiled graphs kept per backend (one per photo size): a camera's photos share one size


class SizeCache(OrderedDict):
    """The compiled graphs of the last ``CACHED_SIZES`` sizes used (least recently used dropped first), so a folder
    of photos of many sizes does not grow memory without limit."""

    def get_or_build(self, key, build):
        if key in self:
            self.move_to_end(key)
        else:
            self[key] = build()
            while len(self) > CACHED_SIZES:
                self.popitem(last=False)
        return self[key]


class HeadLogits(nn.Module):
    """``Segmentor.logits`` as the module to export: normalised images on the pixel grid -> head logits."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.logits(images)


@torch.inference_mode()
def logits_and_steps(network, images: torch.Tensor, resolution: str, stride: int):
    """(head logits on the CPU, the ``ResizeStep``s from them to the label map) of normalised ``images``
    (1, 3, H, W) through ``network`` (images on the pixel grid of ``stride`` -> head logits): resize for
    ``resolution``, pad to the grid, network. ``label_map`` of the pair is the label map; video smoothing averages
    the logits first."""
    size = tuple(images.shape[-2:])
    network_size = scaled_size(size, RESOLUTIONS[resolution].scale)
    padded = pad_to_grid(resize_images(images, network_size), stride)
    return network(padded).cpu(), resize_steps(network_size, size, padded.shape[-2:])


@torch.inference_mode()
def network_labels(network, images: torch.Tensor, resolution: str, stride: int) -> torch.Tensor:
    """Labels (H, W) uint8 of normalised ``images`` (1, 3, H, W) through ``network`` (``logits_and_steps``)."""
    return label_map(*logits_and_steps(network, images, resolution, stride))


class PhotoLogits(nn.Module):
    """The whole input side in one graph, for export: uint8 RGB photos (1, H, W, 3) -> normalise -> resize to the
    network size (``resize_images``: a 2x2 area mean at half resolution) -> pad to the pixel grid -> head logits.
    The same operations as ``to_input`` + ``network_labels`` up to the logits, so a runtime can fuse the
    normalisation into the first convolution and never write a float copy of the photo."""

    def __init__(self, model: nn.Module, normalize: str, network_size: tuple[int, int]):
        super().__init__()
        scale, offset = scale_offset(normalize)
        self.model = model
        self.network_size = tuple(network_size)
        self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1))
        self.register_buffer("offset", torch.from_numpy(offset).view(1, 3, 1, 1))

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        images = photos.permute(0, 3, 1, 2).float() * self.scale - self.offset  # as image_to_tensor
        images = pad_to_grid(resize_images(images, self.network_size), grid_stride(self.model))
        return self.model.logits(images)


class TorchBackend:
    """``optimize=False`` is the model as trained through ``predict_scores`` + ``to_labels`` (the reference)."""

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu", optimize: bool = True):
        self.device = torch.device(device)
        self.optimize = optimize
        self.name = "torch" if optimize else "torch-eager"
        self.model = optimize_for_inference(model, self.device) if optimize else model.eval().to(self.device)
        self.memory_format = torch.channels_last if optimize else torch.contiguous_format
        self.stride = grid_stride(model)

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor, resolution: str) -> torch.Tensor:
        images = images.to(self.device).contiguous(memory_format=self.memory_format)
        if not self.optimize or self.device.type != "cpu":
            return to_labels(predict_scores(self.model, images, resolution))[0].cpu()
        return network_labels(self.network, images, resolution, self.stride)

    @torch.inference_mode()
    def network(self, images: torch.Tensor) -> torch.Tensor:
        """Head logits of normalised images on the pixel grid (the optimised model)."""
        return self.model.logits(images.to(self.device).contiguous(memory_format=self.memory_format))


class OnnxRuntimeBackend:
    """One ONNX Runtime session per network input size, exported on first use: the LR-ASPP gate kernel is fixed
    per size (segkit.export), and photos of one camera share one size."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, threads: int | None = None):
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise UserError("backend 'onnxruntime' needs the onnxruntime package; pip install onnxruntime, or use "
                            "--backend torch.") from None
        self.model = copy.deepcopy(model).float().eval()
        self.threads = threads
        self.stride = grid_stride(model)
        self.sessions = SizeCache()

    def session(self, size: tuple[int, int]):
        return self.sessions.get_or_build(size, lambda: ort_session(onnx_bytes(HeadLogits(self.model), size),
                                                                     self.threads))

    def __call__(self, images: torch.Tensor, resolution: str) -> torch.Tensor:
        return network_labels(self.network, images, resolution, self.stride)

    def network(self, images: torch.Tensor) -> torch.Tensor:
        """Head logits of normalised images on the pixel grid."""
        images = images.contiguous()
        return torch.from_numpy(self.session(tuple(images.shape[-2:])).run(None, {"images": images.numpy()})[0])


class OpenVinoBackend:
    """OpenVINO's CPU plugin on the same per-size ONNX graph. ``precision="bf16"`` runs convolutions in bfloat16
    with float32 accumulation on CPUs that have it natively (AVX512-BF16 or AMX; OpenVINO's own default there):
    faster than float32, at the cost of a few label pixels flipping at class borders (BENCHMARKS.md; measured by
    ``tools/eval.py --backend openvino-bf16``)."""

    def __init__(self, model: nn.Module, threads: int | None = None, precision: str = "f32"):
        try:
            import openvino
        except ImportError:
            raise UserError("backend 'openvino' needs the openvino package; pip install openvino, or use "
                            "--backend onnxruntime.") from None
        self.core = openvino.Core()
        if precision == "bf16" and not cpu_has_bf16():
            raise UserError("this CPU has no native bfloat16 (AVX512-BF16 or AMX), so 'openvino-bf16' would be "
                            "emulated and slow; use --backend openvino.")
        self.name = "openvino" if precision == "f32" else f"openvino-{precision}"
        self.model = copy.deepcopy(model).float().eval()
        self.stride = grid_stride(model)
        self.settings = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
                         "INFERENCE_NUM_THREADS": threads or torch.get_num_threads()}
        self.requests = SizeCache()

    def request(self, size: tuple[int, int], photo: tuple | None = None):
        """The compiled network for normalised images of ``size`` (on the pixel grid), or with ``photo`` =
        (photo size, normalize) for uint8 photos of that size resized to ``size`` (``PhotoLogits``)."""
        def build():
            if photo is None:
                graph = onnx_bytes(HeadLogits(self.model), size)
            else:
                photo_size, normalize = photo
                graph = onnx_bytes(PhotoLogits(self.model, normalize, size), photo_size, input_dtype=torch.uint8,
                                   channels_last_input=True)
            compiled = self.core.compile_model(self.core.read_model(graph, b""), "CPU", self.settings)
            return compiled.create_infer_request()

        return self.requests.get_or_build((size, photo), build)

    @torch.inference_mode()
    def predict_photo(self, photo: np.ndarray, resolution: str, normalize: str) -> torch.Tensor:
        """Labels (H, W) uint8 of an RGB uint8 photo (H, W, 3): its bytes go straight into the graph."""
        return label_map(*self.photo_logits(photo, resolution, normalize))

    @torch.inference_mode()
    def photo_logits(self, photo: np.ndarray, resolution: str, normalize: str):
        """``logits_and_steps`` of an RGB uint8 photo with the photo graph: normalisation and the half-resolution
        resize inside."""
        size = photo.shape[:2]
        network_size = scaled_size(size, RESOLUTIONS[resolution].scale)
        if size[0] % network_size[0] or size[1] % network_size[1]:
            # An area resize by a non-integer factor exports as an adaptive pooling the exporter rejects: resize
            # outside the graph (odd photo sizes at half resolution).
            return logits_and_steps(self.network, image_to_tensor(photo, normalize)[None], resolution, self.stride)
        request = self.request(network_size, (tuple(size), normalize))
        logits = torch.from_numpy(np.array(request.infer({0: np.ascontiguousarray(photo)[None]})[0], copy=True))
        return logits, resize_steps(network_size, size, grid_size(network_size, self.stride))

    def __call__(self, images: torch.Tensor, resolution: str) -> torch.Tensor:
        return network_labels(self.network, images, resolution, self.stride)

    def network(self, images: torch.Tensor) -> torch.Tensor:
        """Head logits of normalised images on the pixel grid (a copy: the request reuses its buffer)."""
        images = images.contiguous()
        output = self.request(tuple(images.shape[-2:])).infer({0: images.numpy()})[0]
        return torch.from_numpy(np.array(output, copy=True))


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """Whether OpenVINO finds native bfloat16 arithmetic on this CPU (AVX512-BF16 or AMX); asked once, as the
    answer cannot change within a process and each question starts an OpenVINO core."""
    try:
        import openvino
    except ImportError:
        return False
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def default_backend() -> str:
    """``"auto"`` resolved, the fastest measured path of this machine (``tools/benchmark.py --backend all``):
    torch on a GPU; on a CPU with native bfloat16 "openvino-bf16", else "onnxruntime" (float32), else torch."""
    if torch.cuda.is_available():
        return "torch"
    if cpu_has_bf16():
        return "openvino-bf16"
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return "torch"
    return "onnxruntime"


def make_backend(model: nn.Module, backend: str = "auto", device=None, threads: int | None = None):
    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}.")
    if threads is not None:
        if threads < 1:
            raise UserError(f"--threads must be at least 1, got {threads}.")
        torch.set_num_threads(threads)
    if backend == "auto":
        backend = "torch" if device not in (None, "cpu") else default_backend()
    if backend != "torch" and device not in (None, "cpu"):
        raise UserError(f"backend {backend!r} runs on the CPU here; drop --device {device} or use torch.")
    if backend == "onnxruntime":
        return OnnxRuntimeBackend(model, threads)
    if backend in ("openvino", "openvino-bf16"):
        return OpenVinoBackend(model, threads, "bf16" if backend == "openvino-bf16" else "f32")
    return TorchBackend(model, device or ("cuda" if torch.cuda.is_available() else "cpu"))
