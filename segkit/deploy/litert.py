"""The phone format: LiteRT (TFLite) graphs, the runtime Android ships (XNNPACK kernels, also on x86).

A phone graph (``segkit.deploy.export.PhoneGraph``) takes a photo of one fixed size as the camera gives it -- uint8
RGB, (1, H, W, 3) -- normalises it, resizes it for the resolution, pads it to the pixel grid and returns the head
logits channels-last (1, h, w, C) at the head's stride of the padded grid (1/8; R-ASPP without the skip: 1/output
stride; at half resolution, of the downsampled photo: ``describe_output`` says which), or with ``labels`` the label
map (1, H, W) uint8 at the photo's size. ``litert-torch`` converts it from PyTorch (no TensorFlow),
``ai-edge-litert``'s interpreter runs it here, as on a phone; both come with the optional ``segkit[mobile]``.
"""
from __future__ import annotations

import contextlib
import copy
import importlib
import io

import numpy as np
import torch
from torch import nn

from segkit.deploy.export import Parity, PhoneGraph
from segkit.deploy.labelmap import label_map
from segkit.errors import UserError, quiet_native_stderr
from segkit.fileio import atomic_write_bytes
from segkit.inference import GridPlan, grid_stride, plan_for

def optional(module: str, what: str, extra: str = "mobile"):
    """Import an optional package's ``module``, or one sentence naming the extra that installs it."""
    try:
        with quiet_native_stderr():  # TensorFlow Lite's and absl's start-up lines
            return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs the optional package {module.split('.')[0]}; install it with "
                        f"pip install -e '.[{extra}]' (or pip install 'segkit[{extra}]').") from None


def tflite_bytes(model: nn.Module, normalize: str, plan: GridPlan, labels: bool = False) -> bytes:
    """The float LiteRT graph (``PhoneGraph``) of ``model`` for photos of ``plan.image_size``."""
    litert_torch = optional("litert_torch", "the LiteRT (.tflite) export")
    litert_torch.config.show_progress = False
    graph = PhoneGraph(copy.deepcopy(model).float().eval(), normalize, plan, labels).eval()
    example = torch.zeros(1, *plan.image_size, 3, dtype=torch.uint8)
    with quiet_native_stderr(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        try:
            return bytes(litert_torch.convert(graph, (example,)).model_content())
        except Exception as exc:  # the converter's own failure: say which and where, not its traceback
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise UserError(f"LiteRT's converter rejected the graph for {plan.image_size[1]}x{plan.image_size[0]} "
                            f"photos ({type(exc).__name__}: {reason}); use the ONNX or OpenVINO format for this "
                            "size.") from None


def describe_output(model: nn.Module, plan: GridPlan, labels: bool = False) -> str:
    """The phone graph's output for ``plan``, as an app developer needs it: shape, type and where its cells lie."""
    height, width = plan.image_size
    if labels:
        return f"labels (1, {height}, {width}) uint8 class indices at the photo's size"
    stride = getattr(model, "logits_stride", 1)
    cells = tuple((n - 1) // stride + 1 for n in plan.padded_size)
    scale = plan.image_size[0] / plan.network_size[0]  # 1, or about 2 at half resolution
    where = (f"1/{stride} of the photo, cell i on pixel {stride}i" if scale == 1 else
             f"1/{round(stride * scale)} of the photo (1/{stride} of the photo downsampled by {scale:g})")
    return f"logits (1, {cells[0]}, {cells[1]}, {model.num_classes}) float32, channels-last, at {where}"


class TfliteRunner:
    """One .tflite graph in LiteRT's interpreter: the uint8 photo in, the first output out as float32 (an int8
    output dequantized with its scale and zero point)."""

    def __init__(self, content: bytes, threads: int | None = None):
        interpreter = optional("ai_edge_litert.interpreter", "running LiteRT (.tflite) graphs").Interpreter
        with quiet_native_stderr():  # the XNNPACK delegate's start-up lines
            self.interpreter = interpreter(model_content=content, num_threads=threads or torch.get_num_threads())
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.input["shape"])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], pixels)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])
        scale, zero_point = self.output["quantization"]
        if out.dtype in (np.int8, np.uint8) and scale:  # quantized logits; labels (uint8, no scale) stay as they are
            return (out.astype(np.float32) - zero_point) * np.float32(scale)
        return np.array(out, copy=True)


def nchw(logits: torch.Tensor) -> torch.Tensor:
    """A phone graph's channels-last logits (1, h, w, C) as the label map takes them (1, C, h, w)."""
    return logits.permute(0, 3, 1, 2).contiguous()


@torch.inference_mode()
def export_tflite(model: nn.Module, path, size: tuple[int, int], normalize: str, resolution: str = "full",
                  labels: bool = False, seed: int = 0) -> Parity:
    """Write the phone graph of ``model`` for photos of ``size`` at ``resolution`` to ``path`` (atomically) after
    running it in LiteRT's interpreter on a random photo against PyTorch: its parity (logits, and labels at the
    photo's size)."""
    plan = plan_for(size, resolution, grid_stride(model))
    content = tflite_bytes(model, normalize, plan, labels)
    photo = np.random.default_rng(seed).integers(0, 256, (1, *size, 3), dtype=np.uint8)
    reference = PhoneGraph(model.float().eval(), normalize, plan)(torch.from_numpy(photo))
    expected = label_map(nchw(reference), plan)
    if labels:
        got, max_diff = torch.from_numpy(TfliteRunner(content)(photo)[0]).long(), float("nan")
        logits = reference
    else:
        logits = torch.from_numpy(TfliteRunner(content)(photo))
        got, max_diff = label_map(nchw(logits), plan), (logits - reference).abs().max().item()
    parity = Parity(max_diff, 100.0 * (got == expected).double().mean().item(), reference.abs().max().item())
    try:
        atomic_write_bytes(path, content)
    except OSError as e:
        raise UserError(f"cannot write out={str(path)!r} ({e.strerror}); choose another file.", "out") from None
    return parity
