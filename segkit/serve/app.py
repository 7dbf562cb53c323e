"""The service's routes (FastAPI):

- ``POST /v1/segment?resolution=full|half&output=labels|color|overlay|json[&alpha=0.5]``: a photo (the body, any
  image type, or multipart field ``image``) to its labels PNG (class indices), colour or overlay PNG, or the JSON
  summary; timings also in the ``Server-Timing`` header.
- ``GET /v1/model``: the checkpoint, its SHA-256, the class table, the backend, the photo sizes ready.
- ``GET /healthz``, ``GET /metrics`` (Prometheus), FastAPI's ``/openapi.json`` and ``/docs``.
- ``GET /``: the web page (``static/``: plain HTML, JavaScript and CSS, its files under ``/static/``): a photo chosen,
  dropped or taken with the camera is segmented once (``output=labels``) and blended in the browser exactly as
  ``output=overlay`` would be, so that its opacity slider answers at once; the classes' shares and the timings beside.

Decoding and encoding run in Starlette's thread pool; inference on the model's one worker thread, behind
``InferenceQueue``.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from segkit import __version__
from segkit.serve import DEFAULT_MAX_BYTES, DEFAULT_MAX_QUEUE
from segkit.serve.errors import install_error_handlers
from segkit.serve.metrics import Metrics, MetricsMiddleware
from segkit.serve.model import ServedModel
from segkit.serve.outputs import class_infos, class_shares, render_png
from segkit.serve.queueing import InferenceQueue
from segkit.serve.schemas import ErrorBody, Health, ModelInfo, Output, Resolution, SegmentSummary
from segkit.serve.upload import FIELD, decode_photo, read_upload

STATIC = Path(__file__).resolve().parent / "static"  # the page's files (package data)
BINARY = {"type": "string", "format": "binary"}
SEGMENT_BODY = {"requestBody": {"required": True, "description": "the photo: its file as the body, or multipart "
                                f"field {FIELD!r}", "content": {
    "image/*": {"schema": BINARY},
    "application/octet-stream": {"schema": BINARY},
    "multipart/form-data": {"schema": {"type": "object", "required": [FIELD], "properties": {FIELD: BINARY}}}}}}


def error(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


SEGMENT_RESPONSES = {
    200: {"model": SegmentSummary, "description": "the labels, color or overlay PNG (image/png), or with "
          "output=json the summary", "content": {"image/png": {"schema": BINARY}}},
    400: error("not an image, a photo under 32x32 pixels, or a multipart body without field 'image'"),
    413: error("the body is over the service's --max-bytes"),
    415: error("the body's Content-Type is neither an image nor multipart/form-data"),
    422: error("a query parameter is invalid"),
    503: error("the queue is full (--max-queue): retry after the Retry-After header's seconds"),
}


def create_app(model: ServedModel, max_queue: int = DEFAULT_MAX_QUEUE,
               max_bytes: int = DEFAULT_MAX_BYTES) -> FastAPI:
    """The service's app for a warm ``model`` (``ServedModel.warm``), which the caller closes after serving."""
    if max_bytes < 1:
        raise ValueError(f"max_bytes={max_bytes} must be at least 1")
    queue = InferenceQueue(max_queue)
    metrics = Metrics(lambda: queue.depth)
    app = FastAPI(title="segkit", version=__version__,
                  description="MobileNetV3 LR-ASPP semantic segmentation of street photos (Cityscapes classes, or "
                              "the checkpoint's own).")
    app.state.model, app.state.queue, app.state.metrics = model, queue, metrics  # for routes added later
    install_error_handlers(app, metrics.count_error)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.post("/v1/segment", response_model=None, responses=SEGMENT_RESPONSES, openapi_extra=SEGMENT_BODY,
              summary="Segment a photo")
    async def segment(
            request: Request,
            resolution: Annotated[Resolution, Query(description="run the network on the photo as it is, or "
                                                                "downsampled by 2 (faster)")] = "full",
            output: Annotated[Output, Query(description="labels: class indices as a single-channel PNG; color, "
                                                        "overlay: PNGs in the classes' colours; json: a summary")]
            = "labels",
            alpha: Annotated[float, Query(ge=0.0, le=1.0, description="the colours' share in the overlay")] = 0.5,
    ) -> Response:
        start = time.perf_counter()
        data = await read_upload(request, max_bytes)
        with queue.admit():
            before_decode = time.perf_counter()
            photo = await run_in_threadpool(decode_photo, data)
            decoded = time.perf_counter()
            labels, network_ms = await queue.run(request, model.submit, photo, resolution)
            predicted = time.perf_counter()
        metrics.inference.observe(network_ms / 1000)
        if output == "json":
            shares = await run_in_threadpool(class_shares, labels, model.table)
        else:
            image = await run_in_threadpool(render_png, output, photo, labels, model.table, alpha)
        end = time.perf_counter()
        timings = {"decode": 1000 * (decoded - before_decode),
                   "wait": max(0.0, 1000 * (predicted - decoded) - network_ms), "network": network_ms,
                   "encode": 1000 * (end - predicted), "total": 1000 * (end - start)}
        headers = {"Server-Timing": ", ".join(f"{name};dur={value:.1f}" for name, value in timings.items())}
        if output != "json":
            return Response(image, media_type="image/png", headers=headers)
        summary = SegmentSummary(width=photo.shape[1], height=photo.shape[0], resolution=resolution,
                                 backend=model.backend, classes=shares, timings_ms=timings)
        return JSONResponse(summary.model_dump(mode="json"), headers=headers)

    @app.get("/v1/model", summary="The model served")
    async def model_info() -> ModelInfo:
        return ModelInfo(checkpoint=str(model.checkpoint), checkpoint_sha256=model.sha256, backend=model.backend,
                         runtime=model.runtime, classes=class_infos(model.table), photo_sizes=model.photo_sizes(),
                         max_queue=queue.limit, max_bytes=max_bytes)

    @app.get("/healthz", summary="Whether the service answers")
    async def healthz() -> Health:
        return Health(status="ok", queue_depth=queue.depth, max_queue=queue.limit)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus' text format"}})
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
