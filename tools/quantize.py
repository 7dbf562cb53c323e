#!/usr/bin/env python
"""Quantize a checkpoint to int8 graphs (OpenVINO and/or the LiteRT phone format), calibrated on your own photos,
and keep them only if they keep the model's accuracy.

    python tools/quantize.py --checkpoint runs/demo/best.pt --calib train               # both formats
    python tools/quantize.py --checkpoint CKPT --calib photos/ --format litert --max-drop 0.5
    python tools/quantize.py --checkpoint CKPT --calib train --keep-float stem,classifier

Post-training static quantization: int8 weights per output channel (OpenVINO's in half the int8 range, so that
CPUs without VNNI compute them exactly too), int8 activations, calibrated on at most --calib-images photos (a
folder, searched recursively, or a split of the checkpoint's data set), resized to the evaluation photos' size where
they differ (said on stdout). The graphs start at the photo's uint8 pixels and are made for that one photo size, one
per resolution. Then both the int8 graphs and the float model are scored on --split (a split with labels) with the
same evaluator. Only if every format's mIoU is at most --max-drop points below the float model's at every
resolution is --out (default: CKPT_STEM.int8/ beside the checkpoint) replaced, whole, by a folder of the new graphs,
the checkpoint's graphs there for other photo sizes, and quantized.json (with the kind of CPU the gate ran on: with
or without VNNI). All figures are printed either way; if any format fails the gate nothing is written and the exit
status is 1, and an error midway also leaves --out as it was. tools/eval.py and tools/infer.py run the graphs as
--backend openvino-int8 / litert-int8, and --backend auto takes the OpenVINO ones on a CPU of the kind they passed
on. Needs the optional packages: nncf (.[quantize]) and the LiteRT ones (.[mobile]).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segkit.checkpoint import quantized_dir
from segkit.cli import add_model_arguments, checkpoint_model, main_guard, resolve_checkpoint
from segkit.data.layouts import build_dataset, resolve_data_root
from segkit.deploy.quantize import FORMATS, KEEP_FLOAT, QuantizeJob, calibration_photos, nothing_written, \
    photo_size_of, quantize_checkpoint
from segkit.errors import UserError
from segkit.resolutions import RESOLUTIONS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(parser, required=True)
    parser.add_argument("--calib", required=True, metavar="DIR_OR_SPLIT",
                        help="calibration photos: a folder, or a split of the data set (e.g. train)")
    parser.add_argument("--format", nargs="+", choices=tuple(FORMATS), default=list(FORMATS),
                        help="which int8 graphs (default: all)")
    parser.add_argument("--out", help="output folder (default: CKPT_STEM.int8/ beside the checkpoint)")
    parser.add_argument("--data-root", help="the data set (default: the checkpoint's data.root, $CITYSCAPES_DATASET)")
    parser.add_argument("--split", default="val", help="the split that scores float and int8 (default: val)")
    parser.add_argument("--resolution", nargs="+", choices=tuple(RESOLUTIONS), default=list(RESOLUTIONS),
                        help="resolutions to make graphs for (default: full half)")
    parser.add_argument("--max-drop", type=float, default=1.0,
                        help="largest mIoU loss in points allowed at any resolution (default: 1.0)")
    parser.add_argument("--calib-images", type=int, default=300, help="at most this many photos (default: 300)")
    parser.add_argument("--keep-float", default="", metavar="GROUPS",
                        help=f"layers left in float, comma-separated: {', '.join(KEEP_FLOAT)}")
    parser.add_argument("--workers", type=int, default=0, help="data loader workers for scoring (default: 0)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint = resolve_checkpoint(args.checkpoint, weights=args.weights)
    model, config, table = checkpoint_model(checkpoint)
    data_root = resolve_data_root(args.data_root, config.data.root)
    dataset = build_dataset(config.data, args.split, data_root, table=table)
    if not dataset.has_labels:  # before any work: scoring needs them
        raise UserError(f"--split {args.split} has no labels in {data_root} to score the int8 graphs against; use "
                        "--split val.")
    photo_size = photo_size_of(dataset)
    calibration = calibration_photos(args.calib, photo_size, args.calib_images, data_root, config.data.layout)
    print(f"calibration: {len(calibration.photos)} photos from {calibration.source}"
          + (f", {calibration.resized} resized to {photo_size[1]}x{photo_size[0]} (the evaluation photos' size)"
             if calibration.resized else ""))
    print(f"scoring on {data_root} (split {args.split}, {len(dataset)} photos of {photo_size[1]}x{photo_size[0]})")
    out = Path(args.out) if args.out else quantized_dir(checkpoint)
    keep_float = tuple(group.strip() for group in args.keep_float.split(",") if group.strip())
    job = QuantizeJob(model, checkpoint, config.data.normalize, tuple(args.format), dataset, photo_size,
                      calibration, out, tuple(args.resolution), args.max_drop, keep_float, args.workers)
    entries = quantize_checkpoint(job)
    failed = [name for name, records in entries.items() if not all(r["validated"] for r in records)]
    if failed:
        passed = [name for name in entries if name not in failed]
        alone = f", or --format {' '.join(passed)} alone" if passed else ""
        print(f"error: the {' and '.join(failed)} int8 graphs lose more than --max-drop {args.max_drop:g} mIoU "
              f"points; {nothing_written(out)} (try --keep-float stem,classifier or more --calib-images{alone}).",
              file=sys.stderr)
        return 1
    print(f"wrote {out}: {' and '.join(entries)} int8 graphs for {photo_size[1]}x{photo_size[0]} photos "
          f"({', '.join(args.resolution)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
