"""Median latency of ``Predictor.predict`` (backend torch) on a photo at full and half resolution, and on the
photo area-downsampled by 2 at full resolution; the result (and this process's peak memory) as JSON.

    python -m segkit.selfcheck.children.predict --checkpoint best.pt --device cuda --photo city.png \\
        --warmup 3 --repeats 20 --out predict.json
"""
from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from segkit.data.images import read_image
from segkit.predict import Predictor
from segkit.engine.runlog import peak_memory
from segkit.fileio import write_json_atomic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--device", required=True, help="cpu or cuda")
    parser.add_argument("--photo", help="an RGB photo (default: noise of HEIGHT x WIDTH)")
    parser.add_argument("--height", type=int, default=1024, help="the noise photo's height (default %(default)s)")
    parser.add_argument("--width", type=int, default=2048, help="the noise photo's width (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="calls before timing (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls (default %(default)s)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    return parser.parse_args(argv)


def latency(predictor: Predictor, photo: np.ndarray, resolution: str, warmup: int, repeats: int) -> dict:
    for _ in range(warmup):
        labels = predictor.predict(photo, resolution=resolution)
    times = []
    for _ in range(repeats):
        start_s = time.perf_counter()
        labels = predictor.predict(photo, resolution=resolution)  # numpy out: the GPU has finished
        times.append(1000 * (time.perf_counter() - start_s))
    assert labels.shape == photo.shape[:2], (labels.shape, photo.shape)
    return {"photo": list(photo.shape[:2]), "resolution": resolution, "median_ms": statistics.median(times),
            "min_ms": min(times)}


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.photo:
        photo = read_image(args.photo)
    else:
        photo = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    small = cv2.resize(photo, (photo.shape[1] // 2, photo.shape[0] // 2), interpolation=cv2.INTER_AREA)
    predictor = Predictor.from_checkpoint(args.checkpoint, backend="torch", device=args.device)
    device = predictor.backend.device
    result = {"device": str(device), "backend": predictor.backend_name}
    for key, picture, resolution in (("full", photo, "full"), ("half", photo, "half"), ("small_full", small, "full")):
        result[key] = latency(predictor, picture, resolution, args.warmup, args.repeats)
    result.update(peak_memory(device))
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
    write_json_atomic(args.out, result)


if __name__ == "__main__":
    main()
