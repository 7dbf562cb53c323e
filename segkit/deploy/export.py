"""ONNX graphs of a segmentor: the wrappers every exported graph is made of, the export itself, and the parity
check against PyTorch.

The wrappers put a prediction's ``segkit.inference.GridPlan`` inside the graph, so that what a runtime computes is
what ``segkit.inference.predict_scores`` computes for that image size:

- ``PhotoLogits``: uint8 RGB photos (1, H, W, 3) -> normalise -> the plan's resize and pad -> head logits (the
  deploy bundles' graph, ``segkit.deploy.bundle``; OpenVINO fuses the normalisation into the first convolution and
  never writes a float copy of the photo);
- ``GridLogits``: normalised images of the photo's size -> the whole plan -> logits at the photo's size, or the
  label map (``tools/export.py``);
- ``PhoneGraph``: what a phone app calls (``segkit.deploy.litert``): uint8 RGB photos (1, H, W, 3) -> the plan ->
  head logits channels-last (1, h, w, C), or the label map (1, H, W) uint8 at the photo's size.

One graph per input size: LR-ASPP's gate pool clips its kernel to the feature map (49x49 at 1024x2048, global
along an axis at smaller sizes), so the kernel is a static value of the traced size. A fixed-size graph is also
what lets ONNX Runtime fold every shape computation and pick the fastest kernels.

Exporter: the TorchScript exporter (``dynamo=False``). On these models both exporters give the same ops and the
same ONNX Runtime latency after graph optimisation, but the TorchScript one exports in about a second instead of
many, which matters because the backends export on first use of each image size.
"""
from __future__ import annotations

import copy
import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from segkit.data.normalize import scale_offset
from segkit.errors import UserError
from segkit.fileio import atomic_write_bytes
from segkit.inference import GridPlan, grid_stride, network_logits, plan_for, predict_scores, to_labels

OPSET = 17


class PhotoLogits(nn.Module):
    """uint8 RGB photos (1, H, W, 3) of ``plan.image_size`` -> normalise (as ``image_to_tensor``) -> the plan's
    network input -> head logits."""

    def __init__(self, model: nn.Module, normalize: str, plan: GridPlan):
        super().__init__()
        scale, offset = scale_offset(normalize)
        self.model, self.plan = model, plan
        self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1))
        self.register_buffer("offset", torch.from_numpy(offset).view(1, 3, 1, 1))

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        images = photos.permute(0, 3, 1, 2).float() * self.scale - self.offset
        return network_logits(self.model, self.plan.network_input(images))


class GridLogits(nn.Module):
    """Normalised images of ``plan.image_size`` -> the whole plan (resize, pad, network, upsample, crop) -> logits
    at the image size, or with ``labels`` the label map (N, H, W) uint8 (``to_labels``' max exports as ONNX ArgMax,
    the first index on ties as in torch)."""

    def __init__(self, model: nn.Module, plan: GridPlan, labels: bool = False):
        super().__init__()
        self.model, self.plan, self.labels = model, plan, labels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.plan.upsample(network_logits(self.model, self.plan.network_input(images)))
        return to_labels(logits) if self.labels else logits


class PhoneGraph(nn.Module):
    """uint8 RGB photos (1, H, W, 3) of ``plan.image_size`` -> ``PhotoLogits`` -> head logits (1, h, w, C), the
    channels-last layout of TFLite/LiteRT, or with ``labels`` the plan's upsampling and the per-pixel max: the
    label map (1, H, W) uint8 at the photo's size."""

    def __init__(self, model: nn.Module, normalize: str, plan: GridPlan, labels: bool = False):
        super().__init__()
        self.photo_logits, self.plan, self.labels = PhotoLogits(model, normalize, plan), plan, labels

    def forward(self, photos: torch.Tensor) -> torch.Tensor:
        logits = self.photo_logits(photos)
        return to_labels(self.plan.upsample(logits)) if self.labels else logits.permute(0, 2, 3, 1)


def onnx_bytes(module: nn.Module, example: torch.Tensor, output_name: str = "logits", opset: int = OPSET) -> bytes:
    """The ONNX graph of ``module`` (a copy in eval mode, float32) traced on ``example``: input ``images``, one
    output ``output_name``."""
    module = copy.deepcopy(module).float().eval().to(memory_format=torch.contiguous_format)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about Python ints taken from shapes: sizes are fixed
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=opset, input_names=["images"],
                          output_names=[output_name], do_constant_folding=True)
    return buffer.getvalue()


def photo_graph(model: nn.Module, normalize: str, plan: GridPlan) -> bytes:
    """``PhotoLogits`` for (1, H, W, 3) uint8 photos of the plan's image size."""
    return onnx_bytes(PhotoLogits(model, normalize, plan), torch.zeros(1, *plan.image_size, 3, dtype=torch.uint8))


def grid_graph(model: nn.Module, plan: GridPlan, labels: bool = False, opset: int = OPSET) -> bytes:
    """``GridLogits`` for normalised (1, 3, H, W) float32 images of the plan's image size."""
    return onnx_bytes(GridLogits(model, plan, labels), torch.zeros(1, 3, *plan.image_size),
                      "labels" if labels else "logits", opset)


def ort_session(model_bytes_or_path, threads: int | None = None):
    """An ONNX Runtime CPU session with all graph optimisations and ``threads`` intra-op threads
    (default: torch's thread count, i.e. the cores), no inter-op parallelism (one image at a time), no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # No busy-waiting after a run: spinning workers took the cores from the torch label-map step that follows
    # (BENCHMARKS.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    source = str(model_bytes_or_path) if isinstance(model_bytes_or_path, (str, os.PathLike)) else model_bytes_or_path
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Parity:
    """ONNX Runtime vs PyTorch on the same random input: max |logit difference| and label agreement in %."""

    max_abs_diff: float
    label_agreement: float
    max_abs_logit: float  # the scale the difference is relative to

    def __str__(self) -> str:
        labels = f"labels agree on {self.label_agreement:.3f}% of pixels"
        if math.isnan(self.max_abs_diff):  # a graph that ends in labels: nothing else to compare
            return labels
        return f"max |logit diff| {self.max_abs_diff:.2e} (logits up to {self.max_abs_logit:.2g}), {labels}"


@torch.inference_mode()
def check_parity(model: nn.Module, size: tuple[int, int], logits_session, labels_session=None, seed: int = 0,
                 resolution: str = "full") -> Parity:
    """Compare ``logits_session`` (and ``labels_session``, if given) with eager PyTorch (``predict_scores``) on a
    random normalised input of ``size``."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(1, 3, *size, generator=generator)
    expected = predict_scores(model.eval(), images, resolution)
    logits = torch.from_numpy(logits_session.run(None, {"images": images.numpy()})[0])
    expected_labels = expected.max(dim=1).indices
    session_labels = logits.max(dim=1).indices if labels_session is None else torch.from_numpy(
        labels_session.run(None, {"images": images.numpy()})[0]).long()
    agreement = 100.0 * (session_labels == expected_labels).double().mean().item()
    return Parity(max_abs_diff=(logits - expected).abs().max().item(), label_agreement=agreement,
                  max_abs_logit=expected.abs().max().item())


def export_onnx(model: nn.Module, path, size: tuple[int, int], labels: bool = False, opset: int = OPSET,
                resolution: str = "full") -> Parity:
    """Write the ONNX graph of ``model`` for images of ``size`` predicted at ``resolution`` to ``path``
    (atomically) and return its parity with PyTorch. With ``labels`` the graph ends in the label map; parity then
    also compares its labels with PyTorch's."""
    if opset < 17:
        raise UserError(f"opset={opset} is too old for ONNX export; use 17 or newer.", "opset")
    path = Path(path)
    plan = plan_for(size, resolution, grid_stride(model))
    logits_graph = grid_graph(model, plan, labels=False, opset=opset)
    graph = grid_graph(model, plan, labels=True, opset=opset) if labels else logits_graph
    parity = check_parity(model, size, ort_session(logits_graph), ort_session(graph) if labels else None,
                          resolution=resolution)
    try:
        atomic_write_bytes(path, graph)  # a crash leaves no half-written model
    except OSError as e:
        raise UserError(f"cannot write out={str(path)!r} ({e.strerror}); choose another file.", "out") from None
    return parity
