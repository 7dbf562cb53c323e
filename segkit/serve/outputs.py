"""What /v1/segment answers, by ``output``: ``labels`` (a single-channel PNG of class indices at the photo's size),
``color`` (the class table's colours), ``overlay`` (``segkit.deploy.photos.overlay``: the colours blended on the
photo) or ``json`` (the size, the class table and each class's share of the pixels)."""
from __future__ import annotations

import cv2
import numpy as np

from segkit.data.classes import ClassTable
from segkit.deploy.photos import overlay

PNG_COMPRESSION = 1  # zlib level: label maps and colour masks are flat, so the fastest level loses little size


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB (H, W, 3) or single-channel (H, W) uint8 array as a PNG file's bytes."""
    image = np.ascontiguousarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a {image.shape} {image.dtype} array as PNG")
    return data.tobytes()


def render_png(output: str, photo: np.ndarray, labels: np.ndarray, table: ClassTable, alpha: float) -> bytes:
    """The PNG of ``output`` ("labels", "color" or "overlay")."""
    if output == "labels":
        return png_bytes(labels)
    if output == "color":
        return png_bytes(table.colorize(labels))
    if output == "overlay":
        return png_bytes(overlay(photo, labels, alpha, table))
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
