"""Atomic file writes: a crash (or Ctrl-C) at any moment leaves either the old file or the new one, whole. PNGs
(label maps, colour masks, overlays, official predictions) are written here, once."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from segkit.errors import UserError


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb", fsync: bool = False):
    """Open a temp file beside ``path`` (same file system, so the final ``os.replace`` is atomic); on success it
    replaces ``path``, on any exception it is removed. ``fsync`` puts the bytes (and the rename) on disk first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if fsync:
        with contextlib.suppress(OSError):  # persist the rename itself (not possible on every file system)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def atomic_write_bytes(path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_json_atomic(path, data) -> None:
    """``data`` as indented JSON (no NaN: strict JSON readers reject it), written atomically."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())


def encode_image(image, extension: str = ".png", params=()) -> bytes:
    """An RGB (H, W, 3) or single-channel (H, W) uint8 array as an image file's bytes (OpenCV's encoder for
    ``extension``, with its ``params``)."""
    image = np.ascontiguousarray(image)
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(extension, image, list(params))
    if not ok:
        raise UserError(f"cannot encode a {image.shape} {image.dtype} array as {extension}")
    return data.tobytes()


def png_bytes(image, compression: int = 3) -> bytes:
    """``encode_image`` as a PNG; ``compression``: zlib level 0-9 (OpenCV's default 3; noisy synthetic photos gain
    little from more)."""
    return encode_image(image, ".png", [cv2.IMWRITE_PNG_COMPRESSION, compression])


def write_image(path, data: bytes) -> None:
    """An encoded image written atomically (no half-written outputs); folders are created. One sentence when it
    cannot be written."""
    path = Path(path)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UserError(f"cannot write {path} ({exc.strerror}); choose another output folder.") from None


def write_png(path, image, compression: int = 3) -> None:
    """An RGB (H, W, 3) or single-channel (H, W) uint8 array as a PNG at ``path``, encoded first and then written
    atomically."""
    write_image(path, png_bytes(image, compression))


def write_jpeg(path, image, quality: int = 90) -> None:
    """An RGB uint8 photo as a JPEG at ``path``, written atomically like ``write_png``."""
    write_image(path, encode_image(image, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, quality]))
