"""The full-size label map from low-resolution logits, in numpy: ``segkit.deploy.labelmap`` without torch.

A bilinear upsample (or a chain of them) makes every output pixel a convex combination of a small k x k window
of low-resolution logit vectors; where all vectors of the window have the same argmax, so does every convex
combination of them. So the plan's steps (``segkit.geometry.GridPlan.steps``) are executed sparsely:

1. the argmax of the low-resolution logits (1/64 of the pixels at stride 8);
2. output pixels whose window has one label take it (a gather of bytes);
3. only the windows that straddle a class boundary are interpolated exactly, in batches of output blocks.

A random-weight model's label map is noise, where almost every window is mixed; above ``MAX_MIXED`` the whole map
is interpolated instead, one channel at a time over strips of rows (a running max and argmax), so that neither
C x H x W floats nor a per-window gather are ever held.

The weights are those of ``torch.nn.functional.interpolate(mode="bilinear")`` as ``segkit.deploy.labelmap`` builds
them (float64, then float32), applied in the same order (columns, then rows); labels equal the torch label map and
the dense ``to_labels(plan.upsample(logits))`` up to float rounding at near-ties (tests/test_runtime_labelmap.py).
Ties go to the first maximal class, as torch's ``max(dim).indices``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from segkit.geometry import GridPlan

# Fraction of mixed windows (one per low-resolution cell) above which the whole map is interpolated. The sparse
# path's cost grows with the mixed windows, the dense one's does not; with the windows' products in BLAS they cost
# about the same when every window is mixed (2 cores: 1024x2048 at 1/8, 120-170 ms each; small photos favour the
# dense one), so the fallback is for noise-like maps only.
MAX_MIXED = 0.9
# Output rows the dense path interpolates at a time: one channel's strip and the running max stay in the caches.
STRIP_ROWS = 32


def interpolation_matrix(n_in: int, n_out: int, kind: str) -> np.ndarray:
    """The (n_out, n_in) float64 matrix of one ``segkit.geometry.ResizeStep`` along an axis, as
    ``F.interpolate(mode="bilinear")`` computes it (or the crop's selection)."""
    if kind == "crop":
        return np.eye(n_in)[:n_out]
    out = np.arange(n_out, dtype=np.float64)
    if kind == "corners":
        source = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros_like(out)
    else:
        source = np.maximum((out + 0.5) * (n_in / n_out) - 0.5, 0)
    low = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    frac = source - low
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), low] += 1 - frac
    matrix[np.arange(n_out), high] += frac  # the same cell as low at the last one: its weights add up to 1
    return matrix


@dataclass(frozen=True)
class AxisPlan:
    """One axis through the resize chain. Each output index reads a window of k consecutive input cells from
    ``start`` (``weights`` (n_out, k) float32), and ``groups[i]`` lists the output indices whose window starts at
    cell i (-1 padded). An output that reads fewer cells still takes the k-cell window of its neighbours (the extra
    weights are 0), so that there is one window per cell and the block of a mixed window stays whole."""

    k: int
    start: np.ndarray
    weights: np.ndarray
    groups: np.ndarray


@functools.lru_cache(maxsize=16)
def axis_plan(n_in: int, steps: tuple[tuple[str, int], ...]) -> AxisPlan:
    matrix = np.eye(n_in)
    for kind, n_out in steps:
        matrix = interpolation_matrix(matrix.shape[0], n_out, kind) @ matrix
    nonzero = matrix > 0
    start = nonzero.argmax(axis=1)
    k = int((n_in - nonzero[:, ::-1].argmax(axis=1) - start).max())
    matrix = np.pad(matrix, ((0, 0), (0, k - 1)))  # windows may run past the end: the caller pads by replication
    weights = np.take_along_axis(matrix, start[:, None] + np.arange(k), axis=1).astype(np.float32)
    counts = np.bincount(start, minlength=n_in)
    groups = np.full((n_in, int(counts.max())), -1, dtype=np.int64)
    order = np.argsort(start, kind="stable")
    offsets = np.arange(len(start)) - (np.cumsum(counts) - counts)[start[order]]
    groups[start[order], offsets] = order
    for array in (start, weights, groups):
        array.flags.writeable = False  # cached: shared by every call
    return AxisPlan(k, start, weights, groups)


def label_map(logits: np.ndarray, plan: GridPlan, block_batch: int = 1024) -> np.ndarray:
    """Labels (H, W) uint8 of head logits (1, C, h, w) (a numpy array, computed in float32) taken through
    ``plan``'s steps to its image size."""
    logits = np.asarray(logits, dtype=np.float32)[0]
    _, h, w = logits.shape
    steps = plan.steps
    y = axis_plan(h, tuple((kind, size[0]) for kind, size in steps))
    x = axis_plan(w, tuple((kind, size[1]) for kind, size in steps))
    # Replicate the last rows/columns so every window is whole (the extra cells have weight 0).
    logits = np.pad(logits, ((0, 0), (0, y.k - 1), (0, x.k - 1)), mode="edge")
    low = np.argmax(logits, axis=0).astype(np.uint8)  # (h + ky - 1, w + kx - 1); ties: the first class, as torch
    # same[i, j]: one label on the ky x kx window at (i, j)
    anchor = low[:h, :w]
    same = np.ones((h, w), dtype=bool)
    for dy in range(y.k):
        for dx in range(x.k):
            same &= low[dy: dy + h, dx: dx + w] == anchor
    # Every (row window, column window) pair that occurs, and whether its label is constant.
    row_ids, col_ids = np.flatnonzero(y.groups[:, 0] >= 0), np.flatnonzero(x.groups[:, 0] >= 0)
    mixed_rows, mixed_cols = np.nonzero(~same[np.ix_(row_ids, col_ids)])
    if len(mixed_rows) > MAX_MIXED * len(row_ids) * len(col_ids):
        return _dense(logits, y, x)
    # Exact wherever the window has one label: the anchor's label, gathered to the output size.
    labels = anchor[y.start][:, x.start]
    if len(mixed_rows) == 0:
        return labels
    mixed = np.stack([row_ids[mixed_rows], col_ids[mixed_cols]], axis=1)
    return _interpolate_mixed(logits, labels, mixed, y, x, block_batch)


def _interpolate_mixed(logits, labels, mixed, y: AxisPlan, x: AxisPlan, block_batch: int) -> np.ndarray:
    """Mixed windows: their logit vectors (n, ky, kx, C), then the separable weighted sum over each window's
    output block (its rows x its columns, padded), channels last so the argmax runs over contiguous memory."""
    ky, kx = y.k, x.k
    channels, _, padded_width = logits.shape
    height, width = labels.shape
    flat = np.zeros((height + 1) * (width + 1), dtype=np.uint8)  # a spare row/column takes the padding
    flat.reshape(height + 1, width + 1)[:height, :width] = labels
    cells = np.ascontiguousarray(logits.transpose(1, 2, 0)).reshape(-1, channels)  # (cells, C)
    window = np.arange(ky)[:, None] * padded_width + np.arange(kx)  # (ky, kx) offsets
    for begin in range(0, len(mixed), block_batch):
        row_id, col_id = mixed[begin: begin + block_batch].T
        vectors = cells[(row_id * padded_width + col_id)[:, None, None] + window]  # (n, ky, kx, C)
        out_rows, out_cols = y.groups[row_id], x.groups[col_id]  # (n, R), (n, S)
        wy, wx = y.weights[np.maximum(out_rows, 0)], x.weights[np.maximum(out_cols, 0)]  # (n, R, ky), (n, S, kx)
        # Batched matrix products (BLAS; several times faster than broadcast sums): the columns, then the rows.
        across = np.matmul(wx[:, None], vectors)  # (n, ky, S, C)
        block = np.matmul(wy, across.reshape(len(row_id), ky, -1))  # (n, R, S * C)
        block_labels = np.argmax(block.reshape(*out_rows.shape, -1, channels), axis=3).astype(np.uint8)  # (n, R, S)
        r_index = np.where(out_rows < 0, height, out_rows)
        c_index = np.where(out_cols < 0, width, out_cols)
        flat[(r_index[:, :, None] * (width + 1) + c_index[:, None, :]).ravel()] = block_labels.ravel()
    return flat.reshape(height + 1, width + 1)[:height, :width].copy()


def _dense(logits, y: AxisPlan, x: AxisPlan) -> np.ndarray:
    """Every output pixel interpolated: per strip of output rows and per channel, the columns' weighted sum at
    low resolution, then the rows', and a running max and argmax (a later channel wins only when strictly greater,
    so ties keep the first)."""
    height, width = len(y.start), len(x.start)
    # Columns first, at low resolution (cheap): (C, h + ky - 1, W).
    across = x.weights[:, 0] * logits[:, :, x.start]
    for j in range(1, x.k):
        across += x.weights[:, j] * logits[:, :, x.start + j]
    labels = np.zeros((height, width), dtype=np.uint8)
    for top in range(0, height, STRIP_ROWS):
        rows = slice(top, top + STRIP_ROWS)
        start, weights, strip = y.start[rows], y.weights[rows], labels[rows]
        for index, channel in enumerate(across):
            plane = weights[:, 0, None] * channel[start]
            for i in range(1, y.k):
                plane += weights[:, i, None] * channel[start + i]
            if index == 0:
                best = plane
            else:
                np.putmask(strip, plane > best, index)
                np.maximum(best, plane, out=best)
    return labels
