"""Running a segmentor on whole images: the prediction plan (the pixel grid), full or half resolution, TTA.

One place for what evaluation, inference, export and benchmarks share, so that they compute the same thing.

The pixel grid (deeplab's eval geometry, docs/paper.md#pixel-grid-eval-geometry): the authors' resizes are all
align_corners=True, which puts cell i of a stride-s map on input pixel s*i -- exact only when the input has
k*s + 1 pixels. So a prediction pads the image bottom/right to the next size of the form k * output_stride + 1
(``grid_size``: 1024x2048 -> 1025x2049, 512x1024 -> 513x1025, 375x500 -> 385x513 at OS16) with 0 after
normalisation (the mean pixel: 127.5 for the TF models), runs the network there, upsamples its logits
(align_corners) to the padded size and crops the image's own pixels. Every strided conv then sees odd sizes,
where TF's SAME padding is symmetric.

Half resolution = the normalised image area-downsampled by 2 (1024x2048 -> 512x1024), predicted on the grid there,
and its logits bilinearly upsampled (half-pixel centres, the geometry of the 2x2 area mean) to the original size.

The plan itself -- ``GridPlan``, ``plan_prediction``, ``plan_for``, the grid rule ``grid_size`` -- lives in
``segkit.geometry``, which imports no torch (``segkit.runtime`` executes it with numpy); it is re-exported here
under the same names. Every path executes that plan: the evaluator's reference densely (``GridPlan.upsample``),
``segkit.deploy.labelmap.label_map`` sparsely, the deploy backends and ``segkit.deploy.export`` inside their graphs.
Changing the grid rule is a change to ``segkit.geometry.grid_size``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from segkit.errors import UserError
from segkit.geometry import GridPlan, ResizeStep, grid_size, plan_for, plan_prediction, scaled_size  # noqa: F401
from segkit.resolutions import resolution as find_resolution


def grid_stride(model) -> int:
    """The pixel-grid stride of ``model``: a Segmentor's output stride; 1 (no padding) for plain modules."""
    return int(getattr(model, "output_stride", 1))


def pad_to_grid(images: torch.Tensor, stride: int) -> torch.Tensor:
    """Normalised images (N, C, H, W) padded bottom/right with 0 to the grid (their full-resolution plan)."""
    return plan_prediction(images.shape[-2:], stride).pad(images)


def network_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The model's logits before its final upsampling (``Segmentor.logits``); a plain module's output."""
    return model.logits(images) if hasattr(model, "logits") else model(images)


def predict_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Logits (N, C, H, W) of normalised ``images`` at full resolution: their plan, executed densely."""
    plan = plan_prediction(images.shape[-2:], grid_stride(model))
    return plan.upsample(network_logits(model, plan.network_input(images)))


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Area interpolation when shrinking (a 2x2 mean at half resolution), bilinear when enlarging."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    shrinking = size[0] <= images.shape[-2] and size[1] <= images.shape[-1]
    if not shrinking:
        return F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    if all(n % m == 0 for n, m in zip(images.shape[-2:], size)):
        return F.interpolate(images, size=size, mode="area")  # an average pool: exports as one
    return area_resize(images, size)


def area_resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(mode="area")`` (adaptive average pooling: output cell i averages input cells
    floor(i·n/m) to ceil((i+1)·n/m) - 1) at any factor, one axis at a time as a few weighted gathers of constant
    indices. A non-integer factor (odd photo sizes at half resolution) then exports to ONNX, OpenVINO and LiteRT,
    where the exporter rejects adaptive pooling."""
    for dim, m in ((-2, size[0]), (-1, size[1])):
        n = images.shape[dim]
        if n == m:
            continue
        starts = [i * n // m for i in range(m)]
        ends = [-(-(i + 1) * n // m) for i in range(m)]
        shape = [1] * images.dim()
        shape[dim] = m
        out = None
        for k in range(max(e - s for s, e in zip(starts, ends))):
            index = torch.tensor([min(s + k, n - 1) for s in starts], device=images.device)
            weight = torch.tensor([1.0 / (e - s) if s + k < e else 0.0 for s, e in zip(starts, ends)],
                                  dtype=images.dtype, device=images.device).view(shape)
            term = images.index_select(dim, index) * weight
            out = term if out is None else out + term
        images = out
    return images


def upsample_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Logits of a resized image back to the image's size: half-pixel centres (align_corners=False), the
    geometry of ``resize_images``."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class TTA:
    """Test-time augmentation: relative scales and horizontal flip; probabilities are averaged."""

    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "TTA":
        """``"flip,0.75,1.0,1.25"`` -> TTA(scales=(0.75, 1.0, 1.25), flip=True); empty/None -> no TTA."""
        if not text:
            return cls()
        flip, scales = False, []
        for item in (part.strip() for part in text.split(",") if part.strip()):
            if item == "flip":
                flip = True
                continue
            try:
                scale = float(item)
            except ValueError:
                raise ValueError(f"TTA item {item!r} is neither 'flip' nor a scale like 0.75") from None
            if scale <= 0:
                raise ValueError(f"TTA scale {scale} must be positive")
            scales.append(scale)
        return cls(scales=tuple(scales) or (1.0,), flip=flip)

    @property
    def is_identity(self) -> bool:
        return self.scales == (1.0,) and not self.flip


@torch.inference_mode()
def predict_scores(model: nn.Module, images: torch.Tensor, resolution: str = "full", tta: TTA = TTA()) -> torch.Tensor:
    """Class scores (N, C, H, W) at the input size: logits without TTA, averaged softmax probabilities with it.

    ``images`` are normalised (N, 3, H, W); the network runs at the resolution's scale times the size (times each
    TTA scale), each view through its ``GridPlan``, executed densely."""
    size, stride = tuple(images.shape[-2:]), grid_stride(model)
    base = find_resolution(resolution).scale
    if tta.is_identity:
        plan = plan_prediction(size, stride, base)
        return plan.upsample(network_logits(model, plan.network_input(images)))
    total = None
    for scale in tta.scales:
        plan = plan_prediction(size, stride, base * scale)
        resized = plan.resize(images)
        for flip in (False, True) if tta.flip else (False,):
            logits = network_logits(model, plan.pad(resized.flip(-1) if flip else resized))
            probs = plan.upsample(logits).softmax(dim=1)
            probs = probs.flip(-1) if flip else probs
            total = probs if total is None else total + probs
    return total / (len(tta.scales) * (2 if tta.flip else 1))


def to_labels(scores: torch.Tensor) -> torch.Tensor:
    """Per-pixel class (N, H, W) uint8; ``max(1).indices`` is several times faster than ``argmax(1)`` on CPU."""
    return scores.max(dim=1).indices.to(torch.uint8)


@dataclass
class SlidingWindow:
    """Tiles of ``size`` (height, width) in network-input pixels, overlapping by ``overlap`` of a tile."""

    size: tuple[int, int]
    overlap: float = 1 / 3

    def __post_init__(self):
        if len(self.size) != 2 or min(self.size) <= 0:
            raise UserError(f"sliding window size {self.size} must be two positive integers H,W, e.g. 512,1024.")
        if not 0 <= self.overlap < 1:
            raise UserError(f"sliding window overlap {self.overlap} must lie in [0, 1).")

    @classmethod
    def parse(cls, text: str, overlap: float = 1 / 3) -> "SlidingWindow":
        """``"512,1024"`` (or ``512x1024``) -> SlidingWindow((512, 1024))."""
        try:
            height, width = (int(v) for v in text.lower().replace("x", ",").split(","))
        except ValueError:
            raise UserError(f"sliding_window={text!r} must be H,W in pixels, e.g. 512,1024.",
                            "sliding_window") from None
        return cls((height, width), overlap)


@torch.inference_mode()
def sliding_window_scores(model: nn.Module, images: torch.Tensor, window: SlidingWindow, resolution: str = "full",
                          tta: TTA = TTA()) -> torch.Tensor:
    """Like ``predict_scores`` but the network sees overlapping tiles of ``window.size`` (for inputs that do not
    fit in memory); overlapping scores are averaged. The image is first resized for ``resolution`` exactly as in
    ``predict_scores``, tiled there, and the stitched scores are upsampled to the input size."""
    plan = plan_prediction(images.shape[-2:], 1, find_resolution(resolution).scale)  # tiles pad to their own grid
    scaled = plan.resize(images)
    height, width = scaled.shape[-2:]
    total, count = None, torch.zeros((1, 1, height, width), device=images.device)
    for top, left, bottom, right in _tiles((height, width), window):
        scores = predict_scores(model, scaled[..., top:bottom, left:right], "full", tta)
        if total is None:
            total = scores.new_zeros((scores.shape[0], scores.shape[1], height, width))
        total[..., top:bottom, left:right] += scores
        count[..., top:bottom, left:right] += 1
    return plan.upsample(total / count)


def _tiles(size: tuple[int, int], window: SlidingWindow):
    """(top, left, bottom, right) of tiles covering ``size``; the last tile of a row/column is flush with the edge."""

    def starts(length, tile):
        tile = min(tile, length)
        stride = max(1, int(round(tile * (1 - window.overlap))))
        positions = list(range(0, length - tile + 1, stride))
        if positions[-1] + tile < length:
            positions.append(length - tile)
        return positions, tile

    rows, tile_h = starts(size[0], window.size[0])
    cols, tile_w = starts(size[1], window.size[1])
    return [(y, x, y + tile_h, x + tile_w) for y in rows for x in cols]


def model_labels(model: nn.Module, tta: TTA = TTA(), window: SlidingWindow | None = None):
    """The reference prediction of ``model`` (in eval mode) as the evaluator's callable: normalised images and a
    resolution -> labels (N, H, W), with test-time augmentation and, for images too large at once, tiles."""

    @torch.inference_mode()
    def predict(images: torch.Tensor, resolution: str) -> torch.Tensor:
        if window is None:
            return to_labels(predict_scores(model, images, resolution, tta))
        return to_labels(sliding_window_scores(model, images, window, resolution, tta))

    return predict
