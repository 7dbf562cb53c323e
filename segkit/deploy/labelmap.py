"""The full-size label map from low-resolution logits without materialising full-size logits.

``to_labels(upsample(logits))`` writes and reads C x H x W floats (160 MB at 1024x2048) to find one byte per
pixel; on a CPU that costs about as much as the whole network. But a bilinear upsample (or a chain of them) makes
every output pixel a *convex combination* of a small k x k window of low-resolution logit vectors, and if all
vectors of the window have the same argmax c, so does every convex combination of them (c >= j holds for each
vector, hence for any non-negative weighted sum). So:

1. take the argmax of the low-resolution logits (cheap: 1/64 of the pixels);
2. output pixels whose window has one label take it (a gather of bytes);
3. only the windows that straddle a class boundary are interpolated exactly, in batches of output blocks.

A trained model's 1/8 label map is smooth (few windows straddle a boundary); a random-weight model's is noise, and
then the dense computation is faster: above ``MAX_MIXED`` of mixed windows ``label_map`` does that instead.

The steps from the logits to the label map are those of the prediction's ``segkit.inference.GridPlan``, executed
here sparsely; labels equal ``to_labels(plan.upsample(logits))`` (the dense execution) up to float rounding at
near-ties (the weights are applied in another order); tests/test_labelmap.py checks the agreement.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from segkit.inference import GridPlan, to_labels
from segkit.runtime.labelmap import axis_plan as runtime_axis_plan
# Fraction of mixed windows (one per low-resolution cell) above which the dense path is cheaper: the sparse path's
# cost grows with the mixed windows, the dense one's does not (break-even near 0.8 on 2 cores, full and half size).
MAX_MIXED = 0.75


@dataclass(frozen=True)
class AxisPlan:
    """``segkit.runtime.labelmap.AxisPlan`` (one axis through the resize chain: each output's k-cell window from
    ``start``, its ``weights``, and the outputs ``groups`` of each window) as tensors."""

    k: int
    start: torch.Tensor
    weights: torch.Tensor
    groups: torch.Tensor


@functools.lru_cache(maxsize=16)
def axis_plan(n_in: int, steps: tuple[tuple[str, int], ...]) -> AxisPlan:
    """The runtime's axis plan (the weights are computed once, in numpy, for both label maps), as tensors."""
    plan = runtime_axis_plan(n_in, steps)
    return AxisPlan(plan.k, *(torch.from_numpy(np.array(a)) for a in (plan.start, plan.weights, plan.groups)))


def label_map(logits: torch.Tensor, plan: GridPlan, block_batch: int = 1024) -> torch.Tensor:
    """Labels (H, W) uint8 of head logits (1, C, h, w) taken through ``plan``'s steps to its image size."""
    source = logits = logits.float().contiguous()  # channels_last logits would make the dense path 4x slower
    steps = plan.steps
    logits = logits[0]
    _, h, w = logits.shape
    y = axis_plan(h, tuple((kind, size[0]) for kind, size in steps))
    x = axis_plan(w, tuple((kind, size[1]) for kind, size in steps))
    # Replicate the last rows/columns so every window is whole (the extra cells have weight 0).
    logits = F.pad(logits[None], (0, x.k - 1, 0, y.k - 1), mode="replicate")[0]
    low = logits.max(dim=0).indices.to(torch.uint8)  # (h + ky - 1, w + kx - 1)
    # same[i, j]: one label on the ky x kx window at (i, j)
    anchor = low[:h, :w]
    same = torch.ones(h, w, dtype=torch.bool)
    for dy in range(y.k):
        for dx in range(x.k):
            same &= low[dy: dy + h, dx: dx + w] == anchor
    # Exact wherever the window has one label: the anchor's label, gathered to the output size.
    labels = anchor.index_select(0, y.start).index_select(1, x.start)
    # Every (row window, column window) pair that occurs, and whether its label is constant.
    row_ids, col_ids = (y.groups[:, 0] >= 0).nonzero()[:, 0], (x.groups[:, 0] >= 0).nonzero()[:, 0]
    window_same = same[row_ids[:, None], col_ids[None, :]]
    mixed = (~window_same).nonzero()
    if len(mixed) == 0:
        return labels
    if len(mixed) > MAX_MIXED * window_same.numel():
        return to_labels(plan.upsample(source))[0]
    mixed = torch.stack([row_ids[mixed[:, 0]], col_ids[mixed[:, 1]]], dim=1)
    return _interpolate_mixed(logits, labels, mixed, y, x, w, block_batch)


def _interpolate_mixed(logits, labels, mixed, y: AxisPlan, x: AxisPlan, w: int, block_batch: int):
    """Mixed windows: their logit vectors (n, ky, kx, C), then the separable weighted sum over each window's
    output block (its rows x its columns, padded), channels last so the max runs over contiguous memory."""
    ky, kx, weight_y, weight_x, rows, cols = y.k, x.k, y.weights, x.weights, y.groups, x.groups
    channels = logits.shape[0]
    height, width = labels.shape
    flat = torch.zeros((height + 1) * (width + 1), dtype=torch.uint8)  # a spare row/column takes the padding
    flat.view(height + 1, width + 1)[:height, :width] = labels
    cells = logits.permute(1, 2, 0).contiguous()  # (h + ky - 1, w + kx - 1, C)
    window = torch.arange(ky)[:, None] * cells.shape[1] + torch.arange(kx)  # (ky, kx) offsets
    cells = cells.view(-1, channels)
    for chunk in mixed.split(block_batch):
        row_id, col_id = chunk[:, 0], chunk[:, 1]
        n = len(chunk)
        vectors = cells[(row_id * (w + kx - 1) + col_id)[:, None, None] + window]  # (n, ky, kx, C)
        out_rows, out_cols = rows[row_id], cols[col_id]  # (n, R), (n, S)
        wy, wx = weight_y[out_rows.clamp(min=0)], weight_x[out_cols.clamp(min=0)]  # (n, R, ky), (n, S, kx)
        across = torch.bmm(wx, vectors.permute(0, 2, 1, 3).reshape(n, kx, ky * channels))  # (n, S, ky*C)
        across = across.view(n, -1, ky, channels).permute(0, 2, 1, 3).reshape(n, ky, -1)  # (n, ky, S*C)
        block = torch.bmm(wy, across).view(n, out_rows.shape[1], out_cols.shape[1], channels)
        block_labels = block.max(dim=3).indices.to(torch.uint8)  # (n, R, S)
        r_index = torch.where(out_rows < 0, height, out_rows)
        c_index = torch.where(out_cols < 0, width, out_cols)
        flat[(r_index[:, :, None] * (width + 1) + c_index[:, None, :]).view(-1)] = block_labels.view(-1)
    return flat.view(height + 1, width + 1)[:height, :width].contiguous()
