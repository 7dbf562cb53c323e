#!/usr/bin/env python
"""Write a synthetic data set (``segkit.data.synthetic`` says what it draws): in the Cityscapes layout, or in the
folder layout with its own class table (your own data's stand-in: JPEG photos, masks, classes.yaml).

    python tools/make_synthetic.py --out data/synthetic --train 40 --val 10 --height 512 --width 1024
    python tools/make_synthetic.py --layout folder --classes 7 --out data/synthetic_folder --height 512 --width 1024
"""
from __future__ import annotations

import argparse

from segkit.cli import main_guard
from segkit.data.synthetic import make_synthetic, make_synthetic_folder
from segkit.data.synthetic.folder import TABLE_FILE, check_classes
from segkit.errors import UserError


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="output folder (gets leftImg8bit/ and gtFine/, or with "
                        "--layout folder images/, masks/ and classes.yaml)")
    parser.add_argument("--layout", choices=("cityscapes", "folder"), default="cityscapes",
                        help="the data set's layout (default cityscapes)")
    # No argparse choices: a bad value gets the library's one line (argparse would add its usage).
    parser.add_argument("--classes", type=int,
                        help="folder layout: 7 (Cityscapes' merged, the default) or 19 (Cityscapes')")
    parser.add_argument("--train", type=int, default=40, help="number of training images (default 40)")
    parser.add_argument("--val", type=int, default=10, help="number of validation images (default 10)")
    parser.add_argument("--height", type=int, default=1024, help="image height in pixels (default 1024)")
    parser.add_argument("--width", type=int, default=2048, help="image width in pixels (default 2048)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> None:
    args = parse_args(argv)
    if args.classes is not None:
        check_classes(args.classes)
    if args.layout == "cityscapes" and args.classes not in (None, 19):
        raise UserError(f"--classes {args.classes} needs --layout folder; the Cityscapes layout has its 19 classes.")
    if args.layout == "folder":
        times = make_synthetic_folder(args.out, args.train, args.val, args.height, args.width, args.seed,
                                      args.classes or 7)
    else:
        times = make_synthetic(args.out, args.train, args.val, args.height, args.width, args.seed)
    count = sum(len(t) for t in times.values())
    per_image = sum(sum(t) for t in times.values()) / max(count, 1)
    print(f"wrote {len(times['train'])} train + {len(times['val'])} val images of {args.height}x{args.width} "
          f"to {args.out} ({per_image:.2f} s/image)")
    if args.layout == "folder":
        print(f"class table: {args.out}/{TABLE_FILE}; train with --set data.layout=folder --set "
              f"data.classes={args.out}/{TABLE_FILE} (or configs/demo_folder.py)")


if __name__ == "__main__":
    main()
