#!/usr/bin/env python
"""Segment photos and videos: for each image a colour mask, an overlay on the photo and a labelIds PNG; for a
video an overlay video.

    python tools/infer.py photo.png                       # newest runs/*/best.pt, outputs next to it
    python tools/infer.py data/synthetic/leftImg8bit/val --checkpoint runs/demo/best.pt --out out/
    python tools/infer.py "shots/*.jpg" --resolution half --backend torch --threads 2
    python tools/infer.py clip.mp4 --save-labels           # clip_overlay.mp4 (+ clip_labelIds/ per frame)
    python tools/infer.py "stuttgart_00/*.png" --video      # an ordered frame sequence, e.g. a demoVideo folder
    python tools/infer.py --camera 0 --show --max-frames 500
    python tools/infer.py street.png --weights mnv3-small-cityscapes   # the authors' models by name
    python tools/infer.py frames.txt --ray --out labels/    # batch inference on a local Ray (segkit[cluster])
    python tools/infer.py /shared/frames --ray auto --out /shared/labels   # on the Ray cluster this node is in

The model: --checkpoint, --weights NAME (fetched and converted once: tools/weights.py), else the newest
runs/*/best.pt, else the authors' mnv3-large-cityscapes (said on stdout). Photos go through a deploy bundle made
once per checkpoint, photo size, resolution and backend into $SEGKIT_HOME/bundles/ and run without PyTorch
(segkit.runtime) -- PyTorch is imported only to make a bundle; videos, the torch backend, int8 graphs and GPUs use
the PyTorch Predictor.

Inputs are image files, directories (searched recursively for .png/.jpg/.jpeg/.bmp/.tif/.tiff/.webp), glob
patterns or text files (.txt) listing photos, one path per line (relative paths from the list's folder). For an
input NAME.ext the outputs are NAME_color.png (the checkpoint's class colours), NAME_overlay.png (the mask blended
on the photo) and NAME_labelIds.png (single channel, the class table's mask values: Cityscapes labelIds, what the
official tools read) in --out, by default the folder `infer/` beside the checkpoint (runs/<name>/infer/; for
weights by name, `infer/` in the current folder). Inputs (photos and videos) that share a NAME keep their extension
in it (a.png, a.jpg -> a_png, a_jpg) or, from different folders, their folder (day/clip.mp4, night/clip.mp4 ->
day/clip_overlay.mp4, night/clip_overlay.mp4): no output overwrites another.
Photos are turned upright by their EXIF orientation (phone photos), as image viewers show them.

Videos: a file with a video extension (.mp4, .avi, .mov, .mkv, ...: whatever OpenCV's FFmpeg decodes), the
inputs as one ordered frame sequence with --video (frame rate --fps, Cityscapes' 17 by default), or a camera with
--camera N give NAME_overlay.mp4 in --out at the input's frame rate and size, and with --save-labels one labelIds
PNG per frame in NAME_labelIds/. Decoding and encoding run in their own threads beside the predictor. Ctrl-C or
SIGTERM stops a video early and keeps a playable video of the frames done (exit status 130).

Ray (--ray [ADDRESS], the [cluster] extra): photos are read and decoded by CPU tasks, segmented by a pool of actors
that load the model once (--actors, --cpus-per-actor, --gpus-per-actor, --batch-size) and written by CPU tasks, all
beside each other; the outputs are the same files, plus manifest.jsonl in --out (a line per photo: input, outputs,
status, milliseconds, worker). A rerun skips the photos the manifest says are done. Without ADDRESS a local Ray is
started; `auto` joins the cluster this machine is in (`ray start`). Videos are not segmented with --ray.

A file that is missing, not an image or unreadable gets one line on stderr; the others still run, and the exit
status is 1 if any failed (2 for a usage error such as no checkpoint).
"""
from __future__ import annotations

import argparse
import signal
import statistics
import sys
from pathlib import Path

from tqdm import tqdm

from segkit.checkpoint import quantized_dir
from segkit.cli import add_model_arguments, main_guard, resolve_checkpoint, user_message
from segkit.deploy.photos import expand_inputs, load_photo, output_names, write_outputs
from segkit.errors import UserError
from segkit.hub import home
from segkit.resolutions import RESOLUTIONS
from segkit.runtime.choice import BACKEND_CHOICES, BUNDLED, bundled_auto
from segkit.video import (CITYSCAPES_FPS, VIDEO_EXTENSIONS, StillsSource, VideoOptions, open_camera, open_video,
                          segment_video)
from segkit.weights import DEFAULT as DEFAULT_WEIGHTS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="*", metavar="IMAGE_VIDEO_DIR_OR_GLOB",
                        help="images, videos, folders, glob patterns or .txt lists of photos (one path per line)")
    add_model_arguments(parser, default=f"the newest runs/*/best.pt, else --weights {DEFAULT_WEIGHTS}")
    parser.add_argument("--out", help="output folder (default: infer/ beside the checkpoint)")
    parser.add_argument("--resolution", choices=tuple(RESOLUTIONS), default="full",
                        help="run the network on the full image or on it downsampled by 2 (default: full)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default="auto",
                        help="auto = the fastest measured on this machine (default: auto)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    parser.add_argument("--quantized", metavar="DIR", help="the checkpoint's int8 graphs (default: CKPT_STEM.int8/ "
                        "beside the checkpoint, as tools/quantize.py writes; auto takes them if they passed the gate)")
    video = parser.add_argument_group("video")
    video.add_argument("--video", action="store_true", help="the inputs are one ordered frame sequence")
    video.add_argument("--camera", type=int, metavar="N", help="segment camera N (0 is the first) until Ctrl-C")
    video.add_argument("--fps", type=float, default=CITYSCAPES_FPS,
                       help="frame rate of a --video frame sequence (default: %(default)s, Cityscapes' demoVideo)")
    video.add_argument("--save-labels", action="store_true", help="also one labelIds PNG per frame")
    video.add_argument("--show", action="store_true", help="show the overlay in a window (where a display exists)")
    video.add_argument("--every", type=int, default=1, metavar="N",
                       help="segment every Nth frame; the frames between keep its labels (default: 1)")
    video.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    video.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of the mask (default: 0.5)")
    video.add_argument("--smooth", type=float, default=0.0, metavar="A",
                       help="average the low-resolution logits over time, keeping A of the past per frame "
                            "(0 = off, the default; 0.5 calms flicker on static scenes)")
    cluster = parser.add_argument_group("cluster (photos on Ray; pip install 'segkit[cluster]')")
    cluster.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                         help="segment the photos on Ray: a local Ray without ADDRESS, `auto` for the cluster this "
                              "machine is in (ray start), else the head node's HOST:PORT")
    cluster.add_argument("--batch-size", type=int, metavar="N", help="photos per batch of an actor (default: 8)")
    cluster.add_argument("--actors", type=int, metavar="N",
                         help="actors, each holding the model (default: one per --gpus-per-actor GPUs, else one per "
                              "--cpus-per-actor of half the cluster's CPUs)")
    cluster.add_argument("--cpus-per-actor", type=float, metavar="N", help="CPUs of each actor (default: 1)")
    cluster.add_argument("--gpus-per-actor", type=float, metavar="N",
                         help="GPUs of each actor (default: 0); with GPUs the actors run PyTorch")
    args = parser.parse_args(argv)
    if args.ray and args.ray != "auto" and ":" not in args.ray:
        # --ray's ADDRESS is optional: in `--ray photos/ more/` the first input is not an address
        tokens = list(sys.argv[1:] if argv is None else argv)
        before = tokens[:tokens.index("--ray")] if "--ray" in tokens else []
        args.inputs.insert(sum(1 for token in before if token in args.inputs), args.ray)
        args.ray = ""
    if not args.inputs and args.camera is None:
        parser.error("give images, videos, folders or glob patterns, or --camera N")
    cluster_flags = ("batch_size", "actors", "cpus_per_actor", "gpus_per_actor")
    if args.ray is None and any(getattr(args, flag) is not None for flag in cluster_flags):
        parser.error("--batch-size, --actors, --cpus-per-actor and --gpus-per-actor go with --ray")
    return args


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    paths, failures = expand_inputs(args.inputs)
    videos = [] if args.video else [p for p in paths if p.suffix.lower() in VIDEO_EXTENSIONS]
    photos = [p for p in paths if p not in videos and not args.video]
    if args.ray is not None and (videos or args.video or args.camera is not None):
        shown = f" ({videos[0]})" if videos else ""
        raise UserError(f"--ray segments photos, not videos{shown}; run videos without --ray, or extract their frames "
                        "first (ffmpeg -i clip.mp4 frames/%06d.png) and segment those.")
    options = VideoOptions(args.resolution, args.every, args.max_frames, args.alpha, args.smooth, args.save_labels,
                           args.show)
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads {args.threads} must be at least 1.")
    checkpoint = resolve_checkpoint(args.checkpoint, weights=args.weights, fallback=DEFAULT_WEIGHTS)
    out_dir = Path(args.out) if args.out else default_out(checkpoint)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create output folder {out_dir} ({e.strerror}); choose another --out.") from None
    if args.ray is not None:
        return segment_on_ray(args, photos, checkpoint, out_dir, failures)
    predictor = photo_predictor(args, checkpoint) if photos else None
    if predictor is None or videos or args.video or args.camera is not None:
        predictor = torch_predictor(args, checkpoint)
    print(f"backend {predictor.backend_name}, resolution {args.resolution}, writing to {out_dir}")
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    names = output_names(photos + videos)  # photos and videos that share a stem keep their outputs apart
    if photos:
        segment_photos(photos, names[: len(photos)], predictor, out_dir, args.resolution, failures)
    sources = [lambda: open_camera(args.camera)] if args.camera is not None else []
    if args.video and paths:
        sources.append(lambda: StillsSource(paths, sequence_name(args.inputs), args.fps))
    sources += [lambda path=path, name=name: open_video(path, name) for path, name in zip(videos, names[len(photos):])]
    said = set()
    for source in sources:
        if segment_one_video(source, predictor, out_dir, options, failures, said):
            return 130
    return 1 if failures else 0


def default_out(checkpoint: Path) -> Path:
    """``infer/`` beside the checkpoint; for weights fetched by name (in the cache), ``infer/`` here."""
    cache = home().resolve()
    return Path("infer") if cache in checkpoint.resolve().parents else checkpoint.parent / "infer"


def photo_predictor(args, checkpoint: Path):
    """The photos' predictor without PyTorch where a deploy bundle serves the backend (PyTorch is imported only to
    make a bundle the first time), else None."""
    quantized = Path(args.quantized) if args.quantized else quantized_dir(checkpoint)
    backend = bundled_auto(quantized) if args.backend == "auto" else args.backend
    if backend not in BUNDLED:
        return None
    from segkit.runtime.predictor import RuntimePredictor

    return RuntimePredictor(checkpoint, backend, args.threads)


def torch_predictor(args, checkpoint: Path):
    """The Predictor of ``segkit.predict`` (PyTorch): for videos, GPUs, int8 graphs and the torch backend."""
    import torch

    from segkit.predict import Predictor

    if args.threads is not None:
        torch.set_num_threads(args.threads)  # this process's PyTorch pool (the runtimes get theirs from the backend)
    return Predictor.from_checkpoint(checkpoint, backend=args.backend, threads=args.threads,
                                     quantized=Path(args.quantized) if args.quantized else None)


def segment_photos(paths: list[Path], names: list[str], predictor, out_dir: Path, resolution: str,
                   failures: list) -> None:
    latencies, sizes, attempted = [], set(), len(paths) + len(failures)  # failures so far: inputs naming nothing
    bar = tqdm(list(zip(paths, names)), unit="image", disable=len(paths) < 2, file=sys.stderr)
    for path, name in bar:
        try:
            image = load_photo(path)
        except UserError as e:
            failures.append(str(e))
            tqdm.write(f"error: {e}", file=sys.stderr)
            continue
        labels = predictor.predict(image, resolution=resolution)
        timing = predictor.last_timing
        latencies.append(timing.total_ms)
        write_outputs(out_dir, name, image, labels, predictor.table)
        first = image.shape not in sizes  # the first of its size pays for warm-up and the graph export
        sizes.add(image.shape)
        tqdm.write(f"{path}: {image.shape[1]}x{image.shape[0]} in {timing.total_ms:.0f} ms "
                   f"(network {timing.network_ms:.0f} ms{', incl. warm-up for this size' if first else ''}) -> "
                   f"{out_dir / name}_{{color,overlay,labelIds}}.png")
    bar.close()
    summary = f"{len(latencies)} of {attempted} inputs segmented"
    if latencies:
        summary += f", median {statistics.median(latencies):.0f} ms per image"
        if len(latencies) > 1:
            summary += " (the first of each size includes warm-up and, for onnxruntime/openvino, the export)"
    print(summary)


def segment_on_ray(args, photos: list[Path], checkpoint: Path, out_dir: Path, failures: list) -> int:
    """``--ray``: the photos on a Ray cluster (``segkit.cluster``); the summary line and the exit status."""
    from segkit.cluster import ClusterOptions, run_job

    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    given = {"actors": args.actors, "cpus_per_actor": args.cpus_per_actor, "gpus_per_actor": args.gpus_per_actor,
             "batch_size": args.batch_size}
    options = ClusterOptions(args.ray or None, threads=args.threads,
                             **{flag: value for flag, value in given.items() if value is not None})  # else defaults
    quantized = Path(args.quantized) if args.quantized else quantized_dir(checkpoint)
    report = run_job(photos, output_names(photos), out_dir, checkpoint, args.backend, args.resolution, options,
                     quantized)
    report.failed += len(failures)  # inputs that named no file
    print(report.summary())
    return 1 if report.failed else 0


def segment_one_video(open_source, predictor, out_dir: Path, options: VideoOptions, failures: list,
                      said: set) -> bool:
    """One video input to its overlay video; a bad input is a failure line; each note is said once (``said``).
    True when the run was interrupted."""
    try:
        source = open_source()
    except UserError as e:
        failures.append(user_message(e))
        print(f"error: {failures[-1]}", file=sys.stderr)
        return False
    print(f"{source.name}: {source.size[1]}x{source.size[0]} at {source.fps:g} frames/s"
          + (f", {source.count} frames" if source.count else ""))
    report = segment_video(source, predictor, out_dir, options)
    for note in report.notes:
        if note not in said:
            print(note)
            said.add(note)
    print(f"{'interrupted: ' if report.interrupted else ''}{report.frames} frames -> {report.output}"
          + (f" (+ {source.name}_labelIds/)" if options.save_labels else "")
          + f"; {report.fps:.1f} frames/s end to end, {report.predict_fps:.1f} frames/s in the predictor "
          f"({report.segmented} frames segmented)")
    return report.interrupted


def sequence_name(inputs: list[str]) -> str:
    """The stem of a frame sequence's outputs: its folder's name (of a folder, a glob or the first file)."""
    first = Path(inputs[0])
    folder = first if first.is_dir() else first.parent
    return folder.resolve().name or "frames"


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends a video like Ctrl-C: the frames done so far stay a playable video


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    sys.exit(main())
