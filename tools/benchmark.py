#!/usr/bin/env python
"""Params, MAdds and CPU latency of configs, or of all Table 7 rows beside the paper's numbers.

    python tools/benchmark.py configs/lraspp_large.py [--json]
    python tools/benchmark.py configs/lraspp_large.py --backend all [--json]
    python tools/benchmark.py --backend all --checkpoint runs/demo/best.pt --image photo.png
    python tools/benchmark.py --table7 [--no-latency]
    python tools/benchmark.py --table7 --runtime litert --threads 1     # the paper's protocol: the phone runtime
    python tools/benchmark.py [CONFIG] --data data/synthetic [--workers 2]   (default CONFIG: lraspp_large)
    python tools/benchmark.py --video [--checkpoint runs/demo/best.pt] [--backend all]
    python tools/benchmark.py --cold [--checkpoint CKPT | --weights NAME] [--image PHOTO] [--repeats 5]
    python tools/benchmark.py --serve [--checkpoint CKPT | --weights NAME] [--image PHOTO]
    python tools/benchmark.py --ray [--photos 40] [--checkpoint CKPT | --weights NAME] [--repeats 3]

Without --backend: the network's eager forward pass. With --backend: end to end from a 1024x2048 photo to its
1024x2048 label map, per backend (all = torch-eager, torch (BN folded, channels_last), onnxruntime, openvino,
openvino-bf16 (where the CPU has native bfloat16) and torchvision's LR-ASPP MobileNetV3-Large with reduced_tail),
interleaved in one run, with the ratio to torchvision and to the compute bound 2 * MAdds / sgemm GFLOP/s measured
in the same run (and, for bfloat16, to the bound at the bfloat16 matrix-product speed). With --data: the data
loader's samples/s (training pipeline at the config's crop) beside the training step's samples/s. With --video: a
generated 1024x2048 clip end to end through tools/infer.py's video path (decode, network, overlay, encode) against
the single-image path on the same frames, in frames/s, for the default backend (or --backend). With --table7
--runtime litert: every row's phone graph (LiteRT, XNNPACK, float32; rows 8 and 11 also int8) at 1024x2048 and
512x1024, each as a ratio to row 8 beside the paper's Pixel 3 ratios (needs .[mobile]; about 15 minutes). With
--cold: what a user meets first, whole processes timed one after another in alternating rounds -- tools/infer.py
on one photo (default: a synthetic 1024x2048 street; --checkpoint default: row 8 with random weights) with its
deploy bundle cached and the first time, beside `python -c "import torch"` and a plain torchvision LR-ASPP script.
With --serve: a bounded load run of tools/serve.py on loopback (same defaults as --cold): 8 concurrent clients x 25
photos, every answer checked against this process's prediction, 200 malformed requests mixed in; p50/p99 latency,
throughput against the single-process rate, the 5xx count and the service's memory before and after. With --ray:
tools/infer.py on --photos synthetic 1024x2048 streets (default 40) as one process and with --ray (a local Ray, its
default pool), whole processes in alternating rounds after a warm-up; images/s end to end and in the Ray job, their
ratio, and each path's peak memory (PSS of the process and all it started: the driver and Ray's processes).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from segkit.benchmark.backends import CHOICES, COMPARED, available_backends, backends_report, compare_backends
from segkit.benchmark.data import data_report
from segkit.benchmark.phone import phone_table
from segkit.benchmark.table7 import benchmark_config, table7_report
from segkit.benchmark.video import video_report, video_text
from segkit.cli import checkpoint_model, main_guard, resolve_checkpoint
from segkit.config import load_config
from segkit.data.images import read_image
from segkit.deploy.backends import default_backend
from segkit.errors import UserError
from segkit.resolutions import RESOLUTIONS
from segkit.weights import WEIGHTS

SEGMENTATION_WEIGHTS = tuple(name for name, entry in WEIGHTS.items() if entry.segmentation)

TABLE7_DIR = Path(__file__).resolve().parents[1] / "configs" / "table7"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*", help="config files to measure")
    parser.add_argument("--table7", action="store_true", help="measure the 11 rows of Table 7 beside the paper")
    parser.add_argument("--json", action="store_true", help="print one JSON object per config")
    parser.add_argument("--resolution", nargs="+", choices=tuple(RESOLUTIONS), default=list(RESOLUTIONS),
                        help="input sizes: full = 1024x2048, half = 512x1024 (default: both)")
    parser.add_argument("--repeats", type=int, help="timed runs per measurement; the median is reported "
                        "(default: 5, with --video 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="intra-op CPU threads (default: %(default)s)")
    parser.add_argument("--backend", metavar="NAME[,NAME]", type=parse_backends,
                        help=f"compare backends end to end: all ({', '.join(COMPARED)}), or a comma list of "
                             f"{', '.join(CHOICES)} (the int8 ones: a --checkpoint's tools/quantize.py graphs)")
    parser.add_argument("--no-latency", action="store_true", help="count params and MAdds only")
    parser.add_argument("--runtime", choices=("torch", "litert"), default="torch",
                        help="with --table7: time eager PyTorch (default) or the phone runtime (LiteRT)")
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--checkpoint", help="with --backend: trained weights (and, without CONFIG, their config)")
    model.add_argument("--weights", choices=SEGMENTATION_WEIGHTS, metavar="NAME",
                       help=f"with --backend: the authors' model by name ({', '.join(SEGMENTATION_WEIGHTS)})")
    parser.add_argument("--image", help="with --backend: a photo to segment instead of random noise")
    parser.add_argument("--data", metavar="DIR", help="measure the training data loader on DIR against the "
                        "training step (at the config's data.crop_size and train.batch_size)")
    parser.add_argument("--workers", type=int, default=2, help="loader worker processes for --data (default 2)")
    parser.add_argument("--cold", action="store_true", help="whole-process time of tools/infer.py on one photo, "
                        "bundle cached and first time, beside importing torch and a torchvision script")
    parser.add_argument("--serve", action="store_true", help="a bounded load run of tools/serve.py: 8 clients x 25 "
                        "photos, answers checked, malformed requests mixed in (needs the [serve] extra)")
    parser.add_argument("--ray", action="store_true", help="tools/infer.py --ray against one process on the same "
                        "photos: images/s and peak memory (needs the [cluster] extra)")
    parser.add_argument("--photos", type=int, default=40, metavar="N",
                        help="with --ray: synthetic 1024x2048 photos to segment (default: %(default)s)")
    parser.add_argument("--video", action="store_true", help="frames/s of a generated 1024x2048 clip end to end "
                        "against single images (default CONFIG: lraspp_large; --repeats default 3)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. model.output_stride=32 (repeatable)")
    return parser.parse_args(argv)


def parse_backends(text: str) -> tuple[str, ...]:
    names = available_backends() if text == "all" else tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in CHOICES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown backend {', '.join(unknown) or text!r}; choose all or from "
                                         f"{', '.join(CHOICES)}")
    return names


@main_guard
def main(argv=None):
    args = parse_args(argv)
    if args.weights:
        args.checkpoint = str(resolve_checkpoint(None, weights=args.weights))
    if args.cold:
        return cold_start(args)
    if args.serve:
        return serve_load(args)
    if args.ray:
        return ray_batch(args)
    check_args(args)
    torch.set_num_threads(args.threads)  # this process's PyTorch pool; the runtimes get --threads too
    photo = read_image(args.image) if args.image else None
    if args.table7 and args.runtime == "litert":
        records, text = phone_table(TABLE7_DIR, repeats=args.repeats, threads=args.threads)
        print("\n".join(json.dumps(record) for record in records) if args.json else text)
    elif args.table7:
        records, text = table7_report(TABLE7_DIR, repeats=args.repeats, latency=not args.no_latency)
        print("\n".join(json.dumps(record) for record in records) if args.json else text)
    for path in args.configs:
        if args.checkpoint:  # trained weights; a CONFIG must describe the same network (checked)
            model, config, _ = checkpoint_model(args.checkpoint, path, args.overrides)
        else:
            model, config = None, load_config(path, args.overrides)
        print(measure(config, model, photo, args))


def cold_start(args) -> None:
    """``--cold``: tools/infer.py as a whole process, with the given or a random-weight row-8 checkpoint and photo."""
    import tempfile

    from segkit.benchmark.cold import cold_report, cold_text

    with tempfile.TemporaryDirectory(prefix="segkit-cold-inputs-") as scratch:
        checkpoint = Path(args.checkpoint) if args.checkpoint else random_checkpoint(Path(scratch) / "row8.pt")
        photo = Path(args.image) if args.image else street_photo(Path(scratch) / "street.png")
        record = cold_report(checkpoint, photo, args.backend[0] if args.backend else "auto", args.repeats or 5,
                             args.threads, say=lambda line: print(line, file=sys.stderr))
    print(json.dumps(record) if args.json else cold_text(record))


def serve_load(args) -> None:
    """``--serve``: the HTTP service under a bounded load, with the given or a random-weight row-8 checkpoint and
    photo (segkit.benchmark.serve)."""
    import os
    import tempfile

    from segkit.benchmark.serve import serve_report, serve_text

    with tempfile.TemporaryDirectory(prefix="segkit-serve-inputs-") as scratch:
        checkpoint = Path(args.checkpoint) if args.checkpoint else random_checkpoint(Path(scratch) / "row8.pt")
        if not args.checkpoint:  # the random model's bundles in a scratch cache, not among the user's 16 kept
            os.environ["SEGKIT_HOME"] = str(Path(scratch) / "segkit_home")
        photo = Path(args.image) if args.image else street_photo(Path(scratch) / "street.png")
        record = serve_report(checkpoint, photo, args.backend[0] if args.backend else "auto", args.threads,
                              say=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(record) if args.json else serve_text(record))


def ray_batch(args) -> None:
    """``--ray``: tools/infer.py with and without --ray on the same synthetic photos (segkit.benchmark.cluster), with
    the given or a random-weight row-8 checkpoint."""
    import os
    import tempfile

    from segkit.benchmark.cluster import cluster_report, cluster_text
    from segkit.data.synthetic import generate_scene, image_rng
    from segkit.fileio import write_png

    if args.photos < 1 or (args.repeats is not None and args.repeats < 1):
        raise UserError("--photos and --repeats must be at least 1.")
    with tempfile.TemporaryDirectory(prefix="segkit-ray-inputs-") as scratch:
        checkpoint = Path(args.checkpoint) if args.checkpoint else random_checkpoint(Path(scratch) / "row8.pt")
        if not args.checkpoint:  # the random model's bundles in a scratch cache, not among the user's 16 kept
            os.environ["SEGKIT_HOME"] = str(Path(scratch) / "segkit_home")
        photos = Path(scratch) / "photos"
        for index in range(args.photos):  # distinct streets: each photo decodes and encodes as a real one would
            write_png(photos / f"street_{index:03d}.png", generate_scene(1024, 2048, image_rng(0, "val", index))[0])
        record = cluster_report(checkpoint, photos, args.photos, args.backend[0] if args.backend else "auto",
                                args.repeats or 3, say=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(record) if args.json else cluster_text(record))


def random_checkpoint(path: Path) -> Path:
    """Table 7 row 8 (configs/lraspp_large.py) with seeded random weights, saved as a checkpoint."""
    from segkit.checkpoint import save_checkpoint
    from segkit.config import table7_config
    from segkit.models import build_model

    torch.manual_seed(0)
    config = table7_config(8).resolved()
    save_checkpoint(path, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                           "iteration": 0})
    return path


def street_photo(path: Path) -> Path:
    """A 1024x2048 synthetic street (segkit.data.synthetic), as a PNG."""
    from segkit.data.synthetic import generate_scene, image_rng
    from segkit.fileio import write_png

    photo, _ = generate_scene(1024, 2048, image_rng(0, "val", 0))
    write_png(path, photo)
    return path


def check_args(args) -> None:
    """The flags' combinations and defaults that argparse cannot express."""
    if args.image and not args.backend or args.checkpoint and not (args.backend or args.video):
        raise UserError("--checkpoint and --image go with --backend (e.g. --backend all), --checkpoint also with "
                        "--video.")
    args.repeats = args.repeats if args.repeats is not None else 3 if args.video else 5
    if args.checkpoint and not args.configs:
        args.configs = [None]  # the checkpoint's own config
    if (args.data or args.video) and not args.configs:  # the paper's model (and crop)
        args.configs = [str(Path(__file__).resolve().parents[1] / "configs" / "lraspp_large.py")]
    if not args.configs and not args.table7:
        raise UserError("name at least one config (e.g. configs/lraspp_large.py) or pass --table7.")
    if args.runtime != "torch" and not args.table7:
        raise UserError("--runtime litert goes with --table7 (the phone runtime's Table 7 protocol).")
    if args.repeats < 1 or args.threads < 1:
        raise UserError("--repeats and --threads must be at least 1.")


def measure(config, model, photo, args) -> str:
    """One config's measurement as the text (or JSON line) to print."""
    if args.data:
        record = data_report(config, args.data, workers=args.workers, repeats=args.repeats)
        return json.dumps(record) if args.json else (
            f"{record['config']}: loader {record['loader_samples_per_s']} samples/s ({args.workers} workers, "
            f"crop {record['crop_size'][0]}x{record['crop_size'][1]}) vs training {record['train_samples_per_s']}"
            f" samples/s (batch {record['batch_size']}): the loader is "
            f"{record['loader_to_train_ratio']}x the model's rate")
    if args.video:
        default = default_backend(torch.device("cpu"))
        record = video_report(config, args.backend or (default,), args.resolution, args.repeats, model, args.threads)
        return json.dumps(record) if args.json else video_text(record, default)
    if args.backend:
        record = compare_backends(config, resolutions=args.resolution, repeats=args.repeats, backends=args.backend,
                                  model=model, photo=photo, checkpoint=args.checkpoint)
        return json.dumps(record) if args.json else backends_report(record, args.repeats)
    record = benchmark_config(config, resolutions=args.resolution, repeats=args.repeats, latency=not args.no_latency)
    if args.json:
        return json.dumps(record)
    madds = ", ".join(f"{name} {value / 1e9:.2f}B" for name, value in record["madds"].items())
    latency = ", ".join(f"{name} {value:.0f} ms" for name, value in record["latency_ms"].items())
    return (f"{record['config']}: {record['params'] / 1e6:.3f}M params; MAdds {madds}"
            + (f"; latency (median of {args.repeats}, {args.threads} threads) {latency}" if latency else ""))


if __name__ == "__main__":
    main()
