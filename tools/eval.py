"""Evaluate a checkpoint on Cityscapes at full and half resolution (one pass over the data).

    python tools/eval.py                                   # newest runs/*/best.pt, its config's data root, val
    python tools/eval.py --checkpoint runs/demo/best.pt --json eval.json --save-dir preds --official
    python tools/eval.py configs/lraspp_small.py --checkpoint ckpt.pt --split test --save-dir submission
    python tools/eval.py --checkpoint runs/demo/best.pt --backend onnxruntime   # score the deploy path

The checkpoint carries its config; CONFIG (optional) replaces its model section (checked against the weights)
and names the data root. Data root: --data-root, else the config's data.root, else $CITYSCAPES_DATASET.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from segkit.cli import main_guard
from segkit.config import load_config
from segkit.data.cityscapes import SPLITS, build_dataset, resolve_data_root
from segkit.engine.checkpoint import find_latest_checkpoint, load_model
from segkit.engine.evaluator import (RESOLUTIONS, SlidingWindow, evaluate, format_table, official_evaluation,
                                     results_to_json, save_confusion_png, write_json_atomic)
from segkit.errors import UserError
from segkit.inference import TTA
from segkit.predict import BACKENDS as DEPLOY_BACKENDS
from segkit.predict import make_backend

TRAIN_HINT = "make demo, or python tools/train.py CONFIG --data-root DIR"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?", help="config file (default: the checkpoint's own config)")
    parser.add_argument("--checkpoint", help="checkpoint file (default: the newest runs/*/best.pt)")
    parser.add_argument("--data-root", help="Cityscapes root holding leftImg8bit/ and gtFine/")
    parser.add_argument("--split", choices=SPLITS, help="split to evaluate (default: the config's eval.split)")
    parser.add_argument("--resolution", nargs="+", choices=RESOLUTIONS,
                        help="resolutions to evaluate (default: the config's eval.resolutions, full half)")
    parser.add_argument("--tta", default="", help="test-time augmentation, e.g. flip,0.75,1.0,1.25")
    parser.add_argument("--save-dir", help="write labelIds PNGs as DIR/<resolution>/CITY/*_leftImg8bit.png")
    parser.add_argument("--json", help="write the scores to this JSON file")
    parser.add_argument("--official", action="store_true",
                        help="also run cityscapesscripts' evaluator on the saved predictions")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--workers", type=int, help="data loader workers (default: the config's data.workers)")
    parser.add_argument("--sliding-window", metavar="H,W", help="run the network on H,W tiles (overlap 1/3)")
    parser.add_argument("--backend", choices=DEPLOY_BACKENDS,
                        help="score a deploy path of tools/infer.py instead of the PyTorch model as trained "
                             "(CPU; e.g. onnxruntime), to see what deployment changes")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> None:
    args = parse_args(argv)
    file_config = load_config(args.config) if args.config else None
    tta = _parse_tta(args.tta)
    window = SlidingWindow.parse(args.sliding_window) if args.sliding_window else None
    device = _device(args.device)

    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = find_latest_checkpoint("runs", "best.pt")
        if checkpoint is None:
            raise UserError(f"no --checkpoint given and no runs/*/best.pt in {Path.cwd()}; train a model first "
                            f"({TRAIN_HINT}) or pass --checkpoint CKPT.")
        print(f"checkpoint: {checkpoint} (newest runs/*/best.pt; pass --checkpoint to choose another)")
    else:
        print(f"checkpoint: {checkpoint}")
    model, config, _ = load_model(checkpoint, file_config.model if file_config else None)
    data_config = (file_config or config).data

    split = args.split or config.eval.split
    if args.official and split == "test":
        raise UserError("--official needs ground truth, which the test split does not have; use --split val.")
    data_root = resolve_data_root(args.data_root, data_config.root)
    dataset = build_dataset(data_config, split, data_root)
    print(f"data: {data_root} (split {split}, {len(dataset)} images)")

    resolutions = tuple(args.resolution or config.eval.resolutions)
    workers = data_config.workers if args.workers is None else args.workers
    with tempfile.TemporaryDirectory(prefix="segkit-eval-") as scratch:
        # --official reads the PNGs back: without --save-dir they go to a scratch folder removed afterwards.
        save_dir = Path(args.save_dir) if args.save_dir else (Path(scratch) if args.official else None)
        backend = None
        if args.backend:
            if device.type != "cpu":
                raise UserError(f"--backend {args.backend} is a CPU deploy path; add --device cpu.")
            backend = make_backend(model, args.backend, device="cpu")
            print(f"backend: {backend.name}")
        results = evaluate(model.to(device), dataset, resolutions, device=device, tta=tta, save_dir=save_dir,
                           sliding_window=window, workers=workers, backend=backend)
        official = None
        if args.official:
            official = {}
            for resolution in resolutions:
                report = official_evaluation(save_dir / resolution, data_root, split,
                                             export_file=save_dir / f"official_{resolution}.json")
                official[resolution] = report["averageScoreClasses"]

    print(format_table(results, official))
    if official:
        for resolution in resolutions:
            ours = results[resolution].scores.miou
            print(f"{resolution}: mIoU {100 * ours:.4f} (segkit) vs {100 * official[resolution]:.4f} "
                  f"(cityscapesscripts)")
    plot_dir = Path(args.save_dir) if args.save_dir else (Path(args.json).parent if args.json else None)
    if plot_dir is not None:
        for resolution, result in results.items():
            if result.confusion is not None:
                save_confusion_png(result, plot_dir / f"confusion_{resolution}.png")
    if args.save_dir:
        print(f"predictions: {args.save_dir}/<resolution>/CITY/*_leftImg8bit.png (labelIds)")
    if args.json:
        write_json_atomic(args.json, results_to_json(results, checkpoint, split, official))
        print(f"scores: {args.json}")


def _parse_tta(text: str) -> TTA:
    try:
        return TTA.parse(text)
    except ValueError as exc:
        raise UserError(f"--tta {text!r}: {exc}; use e.g. flip,0.75,1.0,1.25.") from None


def _device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} asked for a GPU but torch sees none; use --device cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use cpu or cuda.") from None


if __name__ == "__main__":
    main()
