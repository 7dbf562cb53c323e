#!/usr/bin/env python
"""Write a synthetic Cityscapes-format data set (``segkit.data.synthetic`` says what it draws).

Example: python tools/make_synthetic.py --out data/synthetic --train 40 --val 10 --height 512 --width 1024
"""
from __future__ import annotations

import argparse

from segkit.cli import main_guard
from segkit.data.synthetic import make_synthetic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (gets leftImg8bit/ and gtFine/)")
    parser.add_argument("--train", type=int, default=40, help="number of training images (default 40)")
    parser.add_argument("--val", type=int, default=10, help="number of validation images (default 10)")
    parser.add_argument("--height", type=int, default=1024, help="image height in pixels (default 1024)")
    parser.add_argument("--width", type=int, default=2048, help="image width in pixels (default 2048)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> None:
    args = parse_args(argv)
    times = make_synthetic(args.out, args.train, args.val, args.height, args.width, args.seed)
    count = sum(len(t) for t in times.values())
    per_image = sum(sum(t) for t in times.values()) / max(count, 1)
    print(f"wrote {len(times['train'])} train + {len(times['val'])} val images of {args.height}x{args.width} "
          f"to {args.out} ({per_image:.2f} s/image)")


if __name__ == "__main__":
    main()
