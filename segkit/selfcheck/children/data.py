"""The self-check's data: the synthetic city (segkit.data.synthetic, seed 0) in the official layout, the images
made in parallel processes; the same files as ``make_synthetic(root, train, val, height, width, seed=0)``.

    python -m segkit.selfcheck.children.data --root DIR --train 16 --val 10 --height 1024 --width 2048 --processes 8
"""
from __future__ import annotations

import argparse
import functools
import time
from concurrent.futures import ProcessPoolExecutor

from segkit.data.synthetic import make_synthetic, write_image


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="output folder")
    parser.add_argument("--train", type=int, required=True, help="train images")
    parser.add_argument("--val", type=int, required=True, help="val images")
    parser.add_argument("--height", type=int, required=True)
    parser.add_argument("--width", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1, help="images made at once (default %(default)s)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    start_s = time.perf_counter()
    if args.processes <= 1:
        make_synthetic(args.root, train=args.train, val=args.val, height=args.height, width=args.width, seed=0)
    else:
        jobs = [("train", i) for i in range(args.train)] + [("val", i) for i in range(args.val)]
        one = functools.partial(write_image, args.root, height=args.height, width=args.width, seed=0)
        with ProcessPoolExecutor(min(args.processes, len(jobs) or 1)) as pool:
            list(pool.map(one, [split for split, _ in jobs], [index for _, index in jobs]))
    print(f"wrote {args.train} train + {args.val} val images of {args.height}x{args.width} to {args.root} in "
          f"{time.perf_counter() - start_s:.1f} s")


if __name__ == "__main__":
    main()
