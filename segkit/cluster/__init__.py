"""Batch inference on a Ray cluster (``tools/infer.py PHOTOS --ray``): three Ray Data stages that run beside each
other -- CPU tasks read and decode the photos (``read_photos``), a pool of actors segments them, each loading the
model once (``Segmenter``), CPU tasks write the three outputs of each photo (``write_results``) -- and the driver
appends one line per photo to ``manifest.jsonl`` in the output folder, which a rerun reads to skip what is done.

The model goes to the workers as deploy bundles (``segkit.runtime``): the driver reads each photo's size from its
header, makes the bundle of each size present once (PyTorch imported for that alone, as ``tools/infer.py`` does) and
sends the bundles' bytes through Ray's object store, so that workers need neither PyTorch nor the checkpoint nor a
shared cache. GPUs, ``--backend torch`` and int8 graphs run the PyTorch ``Predictor`` on the workers instead, which
then need the [torch] extra and the checkpoint at the same path.

A manifest line (JSON)::

    {"input": "/data/frames/a.png", "status": "ok", "outputs": ["a_color.png", "a_overlay.png", "a_labelIds.png"],
     "milliseconds": {"read": 31.0, "network": 118.2, "write": 240.9}, "worker": "node-3/48213",
     "model": "5f1c0e2a9b3d4c71 full openvino-bf16"}

``outputs`` are relative to the output folder; a photo that failed has ``"status": "failed"``, no outputs and a
``"reason"``. A photo is done when its newest line says ok for the same ``model`` (checkpoint hash, resolution,
backend) and its outputs exist: every output is written under a temporary name and renamed, and its line is
appended (flushed and fsynced) only after all three, so a job killed at any moment redoes at most what was in flight.

``stages.py`` is what runs on the workers (``read_photos``, ``Segmenter``, ``write_results``; plain Python, no Ray),
``job.py`` the driver (``run_job``: the manifest, the bundles, Ray, the dataset); Ray is imported only when a job
runs.
"""
from segkit.cluster.job import MANIFEST, ClusterOptions, JobReport, is_done, read_manifest, run_job
from segkit.cluster.stages import Segmenter, pack_bundle, pack_bundles, read_photos, unpack_bundle, write_results

__all__ = ["MANIFEST", "ClusterOptions", "JobReport", "Segmenter", "is_done", "pack_bundle", "pack_bundles",
           "read_manifest", "read_photos", "run_job", "unpack_bundle", "write_results"]
