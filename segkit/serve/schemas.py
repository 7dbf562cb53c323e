"""The typed JSON bodies of the service (pydantic): what /v1/segment?output=json, /v1/model and /healthz answer,
and every error's ``{"error": "..."}``. FastAPI puts them in the OpenAPI schema (/openapi.json, /docs)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Resolution = Literal["full", "half"]  # segkit.resolutions.RESOLUTIONS (a test keeps them equal)
Output = Literal["labels", "color", "overlay", "json"]


class ErrorBody(BaseModel):
    error: str = Field(description="one sentence: what was wrong, naming the value, and what to do")


class ClassInfo(BaseModel):
    index: int = Field(description="the class index: the value of its pixels in the labels PNG")
    name: str
    color: tuple[int, int, int] = Field(description="RGB, as the color and overlay PNGs draw the class")


class ClassShare(ClassInfo):
    share: float = Field(description="the fraction of the photo's pixels labelled with this class, 0..1")


class Timings(BaseModel):
    """Milliseconds spent on the request, in the service."""

    decode: float = Field(description="the image file to RGB pixels")
    wait: float = Field(description="waiting for the inference thread")
    network: float = Field(description="the photo to its label map (the network and the label map)")
    encode: float = Field(description="the answer made (PNG encoding, or this summary)")
    total: float = Field(description="the whole request, from its first byte read to the answer ready")


class SegmentSummary(BaseModel):
    width: int
    height: int = Field(description="the photo's size, upright by its EXIF orientation")
    resolution: Resolution
    backend: str
    classes: list[ClassShare] = Field(description="the class table, in index order, with each class's share")
    timings_ms: Timings


class PhotoSize(BaseModel):
    height: int
    width: int
    resolution: Resolution
    requests: int = Field(description="requests of this size and resolution served (warm-up not counted)")


class ModelInfo(BaseModel):
    checkpoint: str
    checkpoint_sha256: str
    backend: str = Field(description="the backend that runs the network, e.g. openvino-bf16 or torch")
    runtime: Literal["segkit.runtime", "torch"] = Field(
        description="segkit.runtime: deploy bundles without PyTorch; torch: segkit.predict.Predictor")
    classes: list[ClassInfo]
    photo_sizes: list[PhotoSize] = Field(description="the photo sizes ready (warmed or served so far)")
    max_queue: int = Field(description="requests admitted at once, waiting or running (--max-queue)")
    max_bytes: int = Field(description="the largest request body accepted (--max-bytes)")


class Health(BaseModel):
    status: Literal["ok"]
    queue_depth: int = Field(description="requests admitted now, waiting or running")
    max_queue: int
