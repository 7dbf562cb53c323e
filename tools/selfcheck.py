#!/usr/bin/env python
"""One-call self-check of the whole pipeline on a device, with one summary table (the package segkit.selfcheck).

    python tools/selfcheck.py --cuda --json selfcheck.json          # a GPU: sized for < 5 min on one H100
    python tools/selfcheck.py --device cpu --quick --json out.json   # the same steps, shrunk (CI, ~1 min)

Everything runs on a synthetic city made on the spot in a temporary folder (nothing from the network), each step
in its own process, so one that fails or hangs leaves the others their measurement:

  data     segkit.data.synthetic: train and val images (1024x2048, Cityscapes' size; --quick: 128x256)
  train    tools/train.py configs/lraspp_large.py at the recipe's 769x769 crop and batch 8 (AMP and channels_last
           as the config has them on CUDA) for 300 iterations: steady-state images/s from log.jsonl's it_per_s
           windows (the first windows, start-up and autotuning, left out); the AMP dtype, memory format, loader
           workers and peak GPU memory as the trainer recorded them in log.jsonl
  eval     tools/eval.py --resolution full half on the synthetic val split: mIoU and ms/image (model time)
  predict  segkit.predict.Predictor (backend torch) on a 1024x2048 photo at full and half resolution and on a
           512x1024 photo at full: median ms of 20 calls after warm-up (predict returns numpy, so it syncs)
  resume   an uninterrupted run beside one killed with SIGKILL once its first last.pt exists, then continued
           with --resume: both must end with the same weights (asserted bit for bit on the CPU; on CUDA the
           largest difference is reported, since cuDNN and AMP need not be deterministic)
  ddp      torchrun --nproc_per_node 2 tools/train.py when two GPUs exist, else skipped

Every step runs even when an earlier one failed (eval and predict fall back to untrained weights when training
gave no checkpoint); a failed step shows FAILED and its one-line reason. --budget-s stops starting steps (they
show "skipped (budget)") and cuts a running one when the time is spent. Exit status: 0 when no step failed, 1
otherwise, 2 for a usage error. This process asks torch only what devices exist and reads files, without a CUDA
context: its children own the GPU and may fail alone.
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

from segkit.selfcheck.plan import STEPS, Options
from segkit.selfcheck.runner import run_selfcheck


def parse_args(argv=None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cuda", action="store_true", help="run on the GPU (same as --device cuda)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="cpu or cuda (default: cuda with --cuda, else cpu)")
    parser.add_argument("--quick", action="store_true",
                        help="shrink everything (128x256 images, 65x129 crops, MobileNetV3-Small, a few steps)")
    parser.add_argument("--budget-s", type=float, default=270.0,
                        help="wall-time budget: steps that would start with less left are skipped, a running "
                             "one is cut at it (default %(default)s)")
    parser.add_argument("--json", help="also write the table as JSON to this file")
    parser.add_argument("--work-dir", help="keep data, runs and logs here (default: a temporary folder, removed)")
    parser.add_argument("--log-dir", help="copy every step's log here")
    parser.add_argument("--workers", type=int, help="data loader workers (default: up to 12 on CUDA, 0 quick)")
    parser.add_argument("--ddp-gloo", action="store_true",
                        help="on the CPU, run the ddp step too (2 processes, gloo) instead of skipping it")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma list of steps (default: {','.join(STEPS)})")
    args = parser.parse_args(argv)
    if args.cuda and args.device == "cpu":
        parser.error("--cuda and --device cpu contradict each other")
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; choose from {', '.join(STEPS)}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = args.workers if args.workers is not None else (0 if args.quick else max(0, min(12, cpus - 2)))
    return Options(device="cuda" if args.cuda else (args.device or "cpu"), quick=args.quick, budget_s=args.budget_s,
                   json=args.json, work_dir=args.work_dir, log_dir=args.log_dir, workers=workers,
                   ddp_gloo=args.ddp_gloo, steps=steps, cpus=cpus)


def main(argv=None) -> int:
    options = parse_args(argv)
    if options.device == "cuda" and not torch.cuda.is_available():  # no CUDA context: only asks the driver
        print("error: --cuda asked for a GPU but torch sees none; use --device cpu --quick.", file=sys.stderr)
        return 2
    return run_selfcheck(options)


if __name__ == "__main__":
    sys.exit(main())
