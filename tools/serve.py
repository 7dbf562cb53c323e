#!/usr/bin/env python
"""Serve a checkpoint's photos over HTTP: an ASGI service (FastAPI on uvicorn).

    python tools/serve.py --checkpoint runs/demo/best.pt                 # http://127.0.0.1:8000
    python tools/serve.py --weights mnv3-large-cityscapes --host 0.0.0.0 --port 8080
    curl -F image=@street.png 'localhost:8000/v1/segment?output=labels' -o labels.png

The model: --checkpoint, --weights NAME (fetched and converted once: tools/weights.py), else the newest
runs/*/best.pt, else the authors' mnv3-large-cityscapes. It is warm before the port opens: the deploy bundles of
1024x2048 photos at full and half resolution made (once, kept in $SEGKIT_HOME/bundles/) or loaded, and run once;
photos of other sizes get theirs on first use, which takes seconds. Where --backend auto leaves it to PyTorch (a
GPU, the checkpoint's int8 graphs) and for --backend torch the PyTorch Predictor serves instead.

Endpoints: POST /v1/segment (the photo as the body or multipart field `image`; ?resolution=full|half,
?output=labels|color|overlay|json, ?alpha=0.5 for the overlay), GET /v1/model, /healthz, /metrics (Prometheus),
/docs and /openapi.json, and / (a web page: a photo chosen, dropped or taken with the camera, its overlay with an
opacity slider, the classes' shares and the timings). Inference runs on one thread (the runtime uses every core);
at most --max-queue requests wait or run at once, the next get 503 with Retry-After; bodies over --max-bytes get
413. SIGTERM or Ctrl-C stops taking connections, answers the requests in flight, and exits 0.

Once the port is open it prints `serving on http://HOST:PORT` on stdout (with --port 0, the port the system
picked).
"""
from __future__ import annotations

import argparse
import signal
import sys

from segkit.cli import add_model_arguments, main_guard, resolve_checkpoint
from segkit.errors import UserError
from segkit.runtime.choice import BACKEND_CHOICES, installed
from segkit.serve import DEFAULT_MAX_BYTES, DEFAULT_MAX_QUEUE
from segkit.weights import DEFAULT as DEFAULT_WEIGHTS

SERVE_EXTRA = {"fastapi": "fastapi", "uvicorn": "uvicorn", "multipart": "python-multipart",
               "prometheus_client": "prometheus-client"}  # module -> package: the [serve] extra


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, default=f"the newest runs/*/best.pt, else --weights {DEFAULT_WEIGHTS}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s; "
                        "0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0: any free one)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                        help="auto = the fastest measured on this machine (default: auto)")
    parser.add_argument("--threads", type=int, help="CPU threads of the runtime (default: all cores)")
    parser.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE, metavar="N",
                        help="requests waiting or running at once; more get 503 (default: %(default)s)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, metavar="N",
                        help="the largest request body; larger get 413 (default: %(default)s, 32 MiB)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    for flag, value in (("--threads", args.threads), ("--max-queue", args.max_queue), ("--max-bytes", args.max_bytes)):
        if value is not None and value < 1:
            raise UserError(f"{flag} {value} must be at least 1.")
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port} must be between 0 and 65535 (0: any free port).")
    missing = [name for module, name in SERVE_EXTRA.items() if not installed(module)]
    if missing:  # checked before the model loads
        raise UserError(f"the service needs {', '.join(missing)}, not installed here; pip install 'segkit[serve]'.")
    checkpoint = resolve_checkpoint(args.checkpoint, weights=args.weights, fallback=DEFAULT_WEIGHTS)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # until the server takes over: stop like Ctrl-C
    try:
        run_service(args, checkpoint)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def run_service(args, checkpoint) -> None:
    """The model warmed, then served until SIGTERM or Ctrl-C (segkit.serve.server)."""
    from segkit.serve.app import create_app
    from segkit.serve.model import ServedModel
    from segkit.serve.server import listening_socket, serve

    model = ServedModel(checkpoint, args.backend, args.threads, say=lambda line: print(line, flush=True))
    try:
        print(f"checkpoint {checkpoint}, backend {model.backend} ({model.runtime}); warming up", flush=True)
        model.warm()
        app = create_app(model, args.max_queue, args.max_bytes)
        try:
            sock = listening_socket(args.host, args.port)
        except OSError as exc:
            raise UserError(f"cannot listen on {args.host}:{args.port} ({exc.strerror}); choose another --port or "
                            "--host.") from None
        host, port = sock.getsockname()[:2]
        print(f"serving on http://{f'[{host}]' if ':' in host else host}:{port}", flush=True)
        serve(app, sock)
    finally:
        model.close()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
