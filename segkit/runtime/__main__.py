"""Segment photos with a deploy bundle, without PyTorch (an install of segkit without the [torch] extra runs this):

    python -m segkit.runtime BUNDLE photo.jpg more/*.png --out preds     # NAME_color.png, _overlay.png, _labelIds.png

BUNDLE is a folder ``tools/export.py --bundle`` wrote (on a machine with PyTorch): the graph for photos of one size
and its bundle.json. Photos of another size, or that cannot be read, get one line each and the others still run;
the exit status is 1 if any failed, 2 for a usage error (a bundle that is missing or damaged).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from segkit.deploy.photos import expand_inputs, load_photo, output_names, write_outputs
from segkit.errors import UserError
from segkit.runtime.bundle import Bundle
from segkit.runtime.predictor import BundlePredictor


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m segkit.runtime", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", help="a deploy bundle's folder (tools/export.py --bundle)")
    parser.add_argument("inputs", nargs="+", metavar="PHOTO_DIR_OR_GLOB",
                        help="photos, folders, glob patterns or .txt lists of photos (one path per line)")
    parser.add_argument("--out", default="preds", help="output folder (default: preds)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: all cores)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        predictor = BundlePredictor(Bundle.read(args.bundle), args.threads)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot create output folder {args.out} ({exc.strerror}); choose another --out.",
              file=sys.stderr)
        return 2
    paths, failures = expand_inputs(args.inputs)
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    height, width = predictor.plan.image_size
    print(f"bundle {args.bundle}: {predictor.name}, {width}x{height} photos, {predictor.bundle.meta['resolution']} "
          f"resolution, writing to {out}")
    for path, name in zip(paths, output_names(paths)):
        try:
            photo = load_photo(path)
            labels = predictor.predict(photo)
        except UserError as exc:
            failures.append(str(exc))
            print(f"error: {path}: {exc}" if str(path) not in str(exc) else f"error: {exc}", file=sys.stderr)
            continue
        write_outputs(out, name, photo, labels, predictor.table)
        print(f"{path}: {predictor.last_timing.total_ms:.0f} ms -> {out / name}_{{color,overlay,labelIds}}.png")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
