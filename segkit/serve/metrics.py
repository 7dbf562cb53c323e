"""The service's Prometheus metrics, in its own registry (two apps in one process never share counts): requests
by endpoint and status, errors by kind, request latency, inference time and the queue's depth. ``MetricsMiddleware``
counts every request at the ASGI level, so errors FastAPI answers itself (422, 404) are counted too."""
from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a 512x1024 photo's answer takes tens of milliseconds, a new photo size's first one several seconds.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, queue_depth):
        """``queue_depth()``: the requests admitted now (read at each scrape)."""
        self.registry = CollectorRegistry()
        self.requests = Counter("segkit_requests", "HTTP requests answered, by endpoint and status",
                                ["endpoint", "status"], registry=self.registry)
        self.errors = Counter("segkit_errors", "Requests answered with an error, by kind (queue_full, too_large, "
                              "not_image, too_small, bad_query, client_gone, internal, ...)", ["kind"],
                              registry=self.registry)
        self.latency = Histogram("segkit_request_seconds", "Time from a request's start to its answer, by endpoint",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.inference = Histogram("segkit_inference_seconds", "Time of each inference run (photo to label map)",
                                   buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue = Gauge("segkit_queue_depth", "Requests admitted to the inference queue, waiting or running",
                           registry=self.registry)
        self.queue.set_function(queue_depth)

    def count_error(self, kind: str) -> None:
        self.errors.labels(kind).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware: each HTTP request counted by endpoint (the path of the route that answered it, else "other",
    so that stray paths cannot grow the label set) and status, and timed."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), 500  # an exception that escapes the app is answered with 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            endpoint = getattr(scope.get("route"), "path", "other")  # the router puts the matched route there
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
