"""Image and mask files as arrays: one rule for every path that reads them (training, evaluation, calibration,
inference).

- A **photo** is read as an image viewer shows it: turned by its EXIF orientation (phone photos), RGBA losing its
  alpha, grayscale repeated to three channels; more than 8 bits per channel is an error. ``image_size`` is that
  upright size, from the file's header.
- A **mask** is read as stored (drawn on the upright photo, so it has the upright photo's size), by its PNG mode:
  gray (1, 2, 4, 8 or 16 bits) holds mask values as written -- a 1-bit mask's classes are 0 and 1, not OpenCV's
  0 and 255 --, gray + alpha its gray channel, a palette PNG its indices, RGB(A) colours (H, W, 3).
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segkit.errors import UserError

ORIENTATION_TAG = 0x0112  # EXIF
GRAY, RGB, PALETTE, GRAY_ALPHA, RGBA = 0, 2, 3, 4, 6  # PNG colour types


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    color_type: int  # GRAY, RGB, PALETTE, GRAY_ALPHA or RGBA


def read_png_header(path: Path) -> PngHeader:
    """Size and pixel format from the IHDR chunk, and a check that the file ends (IEND): catches truncation."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
            f.seek(max(0, os.fstat(f.fileno()).st_size - 64))
            tail = f.read()
    except OSError as exc:
        raise UserError(f"cannot read {path} ({exc.strerror}); check the file's permissions.") from None
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise UserError(f"{path} is not a PNG file; save it as PNG (masks, and the official Cityscapes layout's "
                        "images, are PNG files).")
    if b"IEND" not in tail:
        raise UserError(f"{path} is truncated (no PNG end marker); re-download or regenerate this file.")
    width, height, bit_depth, color_type = struct.unpack(">IIBB", head[16:26])
    return PngHeader(width, height, bit_depth, color_type)


# ---- photos ---------------------------------------------------------------------------------------------------

def read_image(path: str | os.PathLike) -> np.ndarray:
    """A photo as RGB uint8 (H, W, 3), upright: turned by its EXIF orientation, RGBA without alpha, grayscale
    repeated; 16-bit is an error."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot decode image {path} (missing, truncated or not an image); re-download or "
                        "regenerate it.")
    if image.dtype != np.uint8:
        raise UserError(not_8bit(path, 8 * image.dtype.itemsize))
    return upright(as_rgb(image), exif_orientation(path))


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An 8-bit image as OpenCV decodes it (gray, gray + alpha, BGR, BGRA) as RGB: alpha dropped, gray repeated."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 2:  # gray + alpha
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_image(data: bytes, name: str = "the image", max_pixels: int | None = None) -> np.ndarray:
    """``read_image`` for an image file's bytes (an upload): RGB uint8 (H, W, 3), upright by its EXIF orientation,
    RGBA without alpha, grayscale repeated; 16-bit is an error, and so, where ``max_pixels`` is given, is an image
    whose header gives more pixels than that (checked before decoding, so that a small file cannot ask for
    gigabytes). ``name`` says what the bytes are in the error sentences."""
    if not data:
        raise UserError(f"{name} is empty (0 bytes); send the image file's bytes.")
    size, orientation = _header(data, name)
    if max_pixels is not None and size is not None and size[0] * size[1] > max_pixels:
        raise UserError(f"{name} is {size[1]}x{size[0]} pixels, more than the {max_pixels:,} allowed; downscale "
                        "it first.")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise UserError(f"cannot decode {name} ({len(data):,} bytes: truncated or not an image); send a PNG, JPEG, "
                        "BMP, TIFF or WebP file as it is.")
    if image.dtype != np.uint8:
        raise UserError(f"{name} has {8 * image.dtype.itemsize} bits per channel; segkit reads 8-bit images, so "
                        "convert it to 8 bits first.")
    return upright(as_rgb(image), orientation)


def _header(data: bytes, name: str = "the image") -> tuple[tuple[int, int] | None, int]:
    """((height, width) as stored, EXIF orientation) from an image's header without decoding its pixels; (None, 1)
    where PIL does not read the format (OpenCV may); more pixels than PIL's own bomb limit is a UserError."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return (image.height, image.width), _orientation(image)
    except Image.DecompressionBombError:
        raise UserError(f"{name} has more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels; downscale it first.") from None
    except (OSError, ValueError, SyntaxError):
        return None, 1


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of the photo as ``read_image`` returns it (upright), from the file's header: no decoding."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            size, orientation = (image.height, image.width), _orientation(image)
    except (OSError, ValueError, SyntaxError):
        return read_image(path).shape[:2]  # its one-line error, or a format only OpenCV reads
    return size[::-1] if orientation in QUARTER_TURNS else size


def exif_orientation(path: str | os.PathLike) -> int:
    """The EXIF orientation tag (1 = upright; 6 = turn 90 degrees clockwise, ...), 1 when there is none."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return _orientation(image)
    except (OSError, ValueError, SyntaxError):  # not an image PIL reads: read_image judges the file
        return 1


def _orientation(image) -> int:
    # A PNG's EXIF before its pixels comes with the header; PIL would decode the whole image to look for one after
    # them, which the PNG specification does not allow.
    if image.format == "PNG" and "exif" not in image.info:
        return 1
    try:
        return int(image.getexif().get(ORIENTATION_TAG, 1))
    except (OSError, ValueError, SyntaxError, TypeError):  # a damaged EXIF block: as stored
        return 1


QUARTER_TURNS = (5, 6, 7, 8)  # orientations that swap height and width
_FLIPS = {2: (np.fliplr, 0), 3: (None, 2), 4: (np.flipud, 0), 5: (np.fliplr, 1), 6: (None, 3), 7: (np.fliplr, 3),
          8: (None, 1)}


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """The photo as a viewer shows it, for EXIF ``orientation`` 1-8 (mirrors and quarter turns)."""
    if orientation not in _FLIPS:
        return image
    mirror, turns = _FLIPS[orientation]
    image = mirror(image) if mirror is not None else image
    return np.ascontiguousarray(np.rot90(image, k=turns))


# ---- masks ----------------------------------------------------------------------------------------------------

def read_mask_file(path: str | os.PathLike, colours_allowed: bool = False) -> np.ndarray:
    """A mask PNG's values by its mode: (H, W) of its integer dtype for gray (any bit depth), gray + alpha and
    palette masks; (H, W, 3) RGB colours for a colour mask where ``colours_allowed``, else one line saying to use
    single-channel masks."""
    path = Path(path)
    header = read_png_header(path)
    if header.color_type == PALETTE:  # OpenCV expands a palette to colours; PIL keeps the indices (the values)
        from PIL import Image

        with Image.open(path) as pil:
            return np.asarray(pil)
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise UserError(f"cannot decode mask {path} (truncated or not an image); re-download or regenerate it.")
    if header.color_type == GRAY:
        if header.bit_depth < 8:  # OpenCV scales 1, 2 and 4-bit values to 0..255: back to the values written
            mask //= 255 // (2 ** header.bit_depth - 1)
        return mask
    if header.color_type == GRAY_ALPHA:  # OpenCV gives it as BGRA: the gray channel is the mask
        return np.ascontiguousarray(mask[:, :, 0])
    if not colours_allowed:
        raise UserError(colour_label(path))
    if mask.dtype != np.uint8:
        raise UserError(f"mask {path} is a 16-bit colour image; save colour masks with 8 bits per channel.")
    return cv2.cvtColor(mask[:, :, :3], cv2.COLOR_BGR2RGB)


def not_8bit(path, bits: int) -> str:
    return (f"image {path} has {bits} bits per channel; segkit reads 8-bit RGB images, so convert it to 8 bits "
            "first.")


def colour_label(path) -> str:
    return (f"label {path} has colour channels; use single-channel masks (Cityscapes: the *_gtFine_labelIds.png "
            "files, not the *_gtFine_color.png visualisations).")
