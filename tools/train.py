#!/usr/bin/env python
"""Train a segmentation model from a config file.

    python tools/train.py configs/lraspp_large.py --data-root /data/cityscapes
    python tools/train.py configs/demo.py --set train.iterations=200 --work-dir runs/try
    torchrun --nproc_per_node 8 tools/train.py configs/lraspp_large.py     # DDP, one process per GPU

The work dir (default runs/<config name>/) receives config.json, log.jsonl (losses, rates, validations, and for
each start the device, AMP dtype, memory format and loader workers it used and its peak memory), last.pt, best.pt
and curves.png; --resume continues from its last.pt exactly where the run stopped.
"""
from __future__ import annotations

import argparse
import os

from segkit.cli import main_guard
from segkit.config import load_config
from segkit.engine.trainer import train


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="config file, e.g. configs/lraspp_large.py")
    parser.add_argument("--data-root",
                        help="Cityscapes root (default: data.root of the config, else $CITYSCAPES_DATASET)")
    parser.add_argument("--work-dir", help="output folder (default: runs/<config name>)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. train.iterations=1000 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from WORK_DIR/last.pt")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available); under torchrun each "
                        "process takes GPU LOCAL_RANK")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None):
    args = parse_args(argv)
    config = load_config(args.config, args.overrides)
    work_dir = args.work_dir or os.path.join("runs", config.name)
    summary = train(config, work_dir, data_root=args.data_root, resume=args.resume, device=args.device,
                    progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"done: {summary['iterations']} iterations, best validation mIoU {summary['best_miou']:.2f} %")
        print(f"checkpoints: {summary['best']} (best), {summary['last']} (last); curves: {work_dir}/curves.png")


if __name__ == "__main__":
    main()
