"""The HTTP service (``tools/serve.py``): a checkpoint's photos segmented over HTTP, FastAPI on uvicorn.

One concept a module: ``model`` (the served model: its predictor, warmed before the port opens, on its one worker
thread), ``queueing`` (the bounded queue in front of that thread), ``upload`` (a request's photo: the body read up to
a limit, multipart, decoded upright), ``outputs`` (what an answer holds: label, colour and overlay PNGs, the JSON
summary), ``schemas`` (the typed JSON bodies), ``errors`` (errors as HTTP codes with one sentence), ``metrics``
(Prometheus), ``app`` (the routes, and the web page of ``static/`` at ``/``), ``server`` (uvicorn, with SIGTERM
finishing the requests in flight) and ``launch`` (the service as a child process on a loopback port: tests and the
load benchmark).

Where the backend has deploy bundles the service runs ``segkit.runtime`` and imports no PyTorch (except to make a
photo size's bundle the first time); GPUs, int8 graphs and ``--backend torch`` use ``segkit.predict.Predictor``.
"""

# The limits' defaults (--max-queue, --max-bytes), here where importing them needs no FastAPI.
DEFAULT_MAX_QUEUE = 16  # requests waiting or running at once: a few seconds of work at Cityscapes' size
DEFAULT_MAX_BYTES = 32 * 2**20  # a 1024x2048 PNG photo is 2-6 MB, a phone's JPEG 3-10 MB
