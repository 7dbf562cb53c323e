"""What /v1/segment answers, by ``output``: ``labels`` (a single-channel PNG of class indices at the photo's size),
``color`` (the class table's colours), ``overlay`` (``segkit.deploy.photos.overlay``: the colours blended on the
photo) or ``json`` (the size, the class table and each class's share of the pixels)."""
from __future__ import annotations

import numpy as np

from segkit.data.classes import ClassTable
from segkit.deploy.photos import overlay
from segkit.fileio import png_bytes

PNG_COMPRESSION = 1  # zlib level: label maps and colour masks are flat, so the fastest level loses little size


def render_png(output: str, photo: np.ndarray, labels: np.ndarray, table: ClassTable, alpha: float) -> bytes:
    """The PNG of ``output`` ("labels", "color" or "overlay")."""
    if output == "labels":
        return png_bytes(labels, PNG_COMPRESSION)
    if output == "color":
        return png_bytes(table.colorize(labels), PNG_COMPRESSION)
    if output == "overlay":
        return png_bytes(overlay(photo, labels, alpha, table), PNG_COMPRESSION)
    raise ValueError(f"output={output!r} is not a PNG output")


def class_shares(labels: np.ndarray, table: ClassTable) -> list[dict]:
    """Each class of the table, in index order, with the fraction of the pixels labelled with it."""
    counts = np.bincount(labels.ravel(), minlength=table.num_classes)[: table.num_classes]
    total = max(labels.size, 1)
    return [{"index": index, "name": name, "color": color, "share": float(count) / total}
            for index, (name, color, count) in enumerate(zip(table.names, table.colors, counts))]


def class_infos(table: ClassTable) -> list[dict]:
    return [{"index": index, "name": name, "color": color}
            for index, (name, color) in enumerate(zip(table.names, table.colors))]
