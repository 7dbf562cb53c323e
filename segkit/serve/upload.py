"""A request's photo: the body itself (any image type) or the multipart field ``image``, read up to the service's
byte limit without reading past it, and decoded as ``segkit.data.images`` decodes files (upright by EXIF, RGB).

The limit is checked twice: against Content-Length before anything is read, and by counting while reading (a
chunked body has no length, and a length may lie), so an oversized body is refused after at most ``max_bytes``.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from segkit.data.images import decode_image
from segkit.errors import UserError
from segkit.geometry import MIN_PHOTO_SIZE
from segkit.serve.errors import CLIENT_GONE, ServiceError

MAX_PHOTO_PIXELS = 50_000_000  # a 50 MP phone photo; beyond it one decoded photo alone is 150 MB
FIELD = "image"  # the multipart field that holds the photo
RAW_TYPES = ("image/", "application/octet-stream")  # a body that is the image file itself (or no type at all)


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The image file's bytes from the body or its multipart field ``image``; 413 past ``max_bytes`` (the whole
    body), 415 for a body that is neither, 400 for a multipart body without the field."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise too_large(max_bytes, int(length))
    if media_type == "multipart/form-data":
        return await _multipart_image(request, max_bytes)
    if media_type and not media_type.startswith(RAW_TYPES):
        raise ServiceError(415, "unsupported_media_type",
                           f"Content-Type {media_type!r} is not an image; send the photo as the body with its image "
                           f"type (image/png, image/jpeg, ...) or as multipart field {FIELD!r}.")
    return b"".join([chunk async for chunk in bounded_body(request, max_bytes)])


async def bounded_body(request: Request, max_bytes: int) -> AsyncIterator[bytes]:
    """The body's chunks as they arrive, stopping with 413 as soon as more than ``max_bytes`` came."""
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes)
            yield chunk
    except ClientDisconnect:
        raise ServiceError(CLIENT_GONE, "client_gone", "the client hung up while sending its photo.") from None


async def _multipart_image(request: Request, max_bytes: int) -> bytes:
    parser = MultiPartParser(request.headers, bounded_body(request, max_bytes), max_files=4, max_fields=16)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ServiceError(400, "bad_multipart", f"the multipart body does not parse ({exc.message}); send the "
                                                 f"photo as field {FIELD!r}, e.g. curl -F {FIELD}=@photo.png.")
    try:
        value = form.get(FIELD)
        if value is None:
            fields = ", ".join(repr(key) for key in form.keys()) or "none"
            raise ServiceError(400, "no_image", f"the multipart body has no field {FIELD!r} (its fields: {fields}); "
                                                f"send the photo as curl -F {FIELD}=@photo.png.")
        if not isinstance(value, UploadFile):
            raise ServiceError(400, "no_image", f"multipart field {FIELD!r} holds text, not a file; send the file "
                                                f"itself (curl -F {FIELD}=@photo.png, with the @).")
        return await value.read()
    finally:
        await form.close()


def decode_photo(data: bytes) -> np.ndarray:
    """The photo upright as RGB uint8, or 400 with one sentence: not an image, too many pixels, too small."""
    try:
        photo = decode_image(data, "the uploaded image", MAX_PHOTO_PIXELS)
    except UserError as exc:
        raise ServiceError(400, "not_image", str(exc)) from None
    height, width = photo.shape[:2]
    if min(height, width) < MIN_PHOTO_SIZE:
        raise ServiceError(400, "too_small", f"the photo is {width}x{height} pixels; send one of at least "
                                             f"{MIN_PHOTO_SIZE}x{MIN_PHOTO_SIZE}.")
    return photo


def too_large(max_bytes: int, length: int | None = None) -> ServiceError:
    """413: the body's declared ``length``, or (counted while reading) more than ``max_bytes``."""
    body = f"the body ({length:,} bytes)" if length is not None else "the body"
    return ServiceError(413, "too_large", f"{body} is over the service's limit of {max_bytes:,} bytes (--max-bytes); "
                                          "send a smaller photo (a JPEG, or a PNG at its own size) or raise the limit.")
