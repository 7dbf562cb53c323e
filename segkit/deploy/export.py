"""ONNX export of a segmentor, with an optional in-graph label map, and its parity check against PyTorch.

One graph per input size: LR-ASPP's gate pool clips its kernel to the feature map (49x49 at 1024x2048, global
along an axis at smaller sizes), so the kernel is a static value of the traced size. A fixed-size graph is also
what lets ONNX Runtime fold every shape computation and pick the fastest kernels. The exported graph takes images
of the photo's size and follows segkit's pixel grid inside (``segkit.inference.predict_logits``: pad to
k * output_stride + 1, network, align_corners upsample to the padded size, crop), so its logits and labels are
those of ``tools/eval.py`` for that size.

Exporter: the TorchScript exporter (``dynamo=False``). On these models both exporters give the same ops and the
same ONNX Runtime latency after graph optimisation, but the TorchScript one exports in about a second instead of
many, which matters because ``Predictor`` exports on first use of each image size.
"""
from __future__ import annotations

import copy
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from segkit.errors import UserError
from segkit.fileio import atomic_write_bytes
from segkit.inference import predict_logits, to_labels, upsample_logits

OPSET = 17


class GridLogits(nn.Module):
    """Images of any size -> logits at that size on the model's pixel grid (``predict_logits``), optionally
    upsampled to ``output_size`` (the original image size at half resolution) and reduced to the label map
    (N, H, W) uint8: the computation of ``segkit.inference.predict_scores`` (+ ``to_labels``) without TTA."""

    def __init__(self, model: nn.Module, labels: bool = False, output_size: tuple[int, int] | None = None):
        super().__init__()
        self.model = model
        self.labels = labels
        self.output_size = output_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = predict_logits(self.model, images)
        if self.output_size is not None:
            logits = upsample_logits(logits, self.output_size)
        # to_labels' max(1).indices exports as ONNX ArgMax (the first index on ties, as in torch)
        return to_labels(logits) if self.labels else logits


def onnx_bytes(model: nn.Module, size: tuple[int, int], labels: bool = False,
               output_size: tuple[int, int] | None = None, opset: int = OPSET, input_dtype=torch.float32,
               channels_last_input: bool = False) -> bytes:
    """The ONNX graph of ``model`` (eval mode) for a 1x3xHxW input, as bytes: the module as it is (e.g. the
    head logits of ``segkit.predict.HeadLogits``), or with ``labels`` the label map of ``GridLogits``.

    Input ``images`` (1, 3, H, W) float32, normalised; output ``logits`` (the module's), or with ``labels`` the
    label map ``labels`` (1, H', W') uint8 at ``output_size`` (default: the input size).
    ``input_dtype`` / ``channels_last_input`` (1, H, W, 3) are for models that take photos (``PhotoLogits``)."""
    model = copy.deepcopy(model).float().eval().to(memory_format=torch.contiguous_format)
    wrapped = GridLogits(model, labels=True, output_size=output_size) if labels else model
    example = torch.zeros((1, *size, 3) if channels_last_input else (1, 3, *size), dtype=input_dtype)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about Python ints taken from shapes: sizes are fixed
        torch.onnx.export(wrapped, (example,), buffer, dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["labels" if labels else "logits"],
                          do_constant_folding=True)
    return buffer.getvalue()


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
        return (f"max |logit diff| {self.max_abs_diff:.2e} (logits up to {self.max_abs_logit:.2g}), labels agree on "
                f"{self.label_agreement:.3f}% of pixels")


@torch.inference_mode()
def check_parity(model: nn.Module, size: tuple[int, int], logits_session, labels_session=None,
                 seed: int = 0) -> Parity:
    """Compare ``logits_session`` (and ``labels_session``, if given) with eager PyTorch at ``size``
    (``predict_logits``: the pixel grid, as the exported graphs)."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(1, 3, *size, generator=generator)
    expected = predict_logits(model.eval(), images)
    logits = torch.from_numpy(logits_session.run(None, {"images": images.numpy()})[0])
    expected_labels = expected.max(dim=1).indices
    session_labels = logits.max(dim=1).indices if labels_session is None else torch.from_numpy(
        labels_session.run(None, {"images": images.numpy()})[0]).long()
    agreement = 100.0 * (session_labels == expected_labels).double().mean().item()
    return Parity(max_abs_diff=(logits - expected).abs().max().item(), label_agreement=agreement,
                  max_abs_logit=expected.abs().max().item())


def export_onnx(model: nn.Module, path, size: tuple[int, int], labels: bool = False,
                opset: int = OPSET) -> Parity:
    """Write the ONNX graph of ``model`` at ``size`` to ``path`` (atomically) and return its parity with PyTorch.

    With ``labels`` the graph ends in the label map; parity then also compares its labels with PyTorch's."""
    if opset < 17:
        raise UserError(f"ONNX opset {opset} is too old; use 17 or newer.")
    path = Path(path)
    logits_graph = onnx_bytes(GridLogits(model), size, labels=False, opset=opset)
    graph = onnx_bytes(model, size, labels=True, opset=opset) if labels else logits_graph
    parity = check_parity(model, size, ort_session(logits_graph), ort_session(graph) if labels else None)
    _atomic_write(path, graph)
    return parity


def _atomic_write(path: Path, data: bytes) -> None:
    """A crash leaves no half-written model: write a temp file beside ``path``, then rename it over."""
    try:
        atomic_write_bytes(path, data)
    except OSError as e:
        raise UserError(f"cannot write {path} ({e.strerror}); choose another --out.") from None
