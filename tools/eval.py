#!/usr/bin/env python
"""Evaluate a checkpoint at full and half resolution (one pass over the data), under its class table.

    python tools/eval.py                                   # newest runs/*/best.pt, its config's data root, val
    python tools/eval.py --checkpoint runs/demo/best.pt --json eval.json --save-dir preds --official
    python tools/eval.py configs/lraspp_small.py --checkpoint ckpt.pt --split test --save-dir submission
    python tools/eval.py --checkpoint runs/demo/best.pt --backend onnxruntime   # score the deploy path
    python tools/eval.py --checkpoint runs/demo/best.pt --report report          # report/index.html, offline

The checkpoint carries its config and class table: what its weights were trained with (the network, data.normalize,
the classes) is always the checkpoint's. CONFIG (optional) names the data set (root, layout) and the evaluation
settings; it must agree with the checkpoint on the network, the normalisation and the class table (else one line
naming the field). Data root: --data-root, else the config's data.root, else
$CITYSCAPES_DATASET.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from segkit.checkpoint import quantized_dir
from segkit.cli import add_model_arguments, checkpoint_model, main_guard, resolve_checkpoint
from segkit.config import SPLITS
from segkit.data.layouts import build_dataset, resolve_data_root
from segkit.deploy.backend import BackendOptions
from segkit.deploy.backends import BACKEND_CHOICES, make_backend
from segkit.devices import resolve_device
from segkit.engine.evaluator import evaluate
from segkit.engine.report_html import write_report
from segkit.engine.reports import format_table, official_evaluation, results_to_json, save_confusion_png
from segkit.errors import UserError
from segkit.fileio import write_json_atomic
from segkit.inference import TTA, SlidingWindow, model_labels
from segkit.resolutions import RESOLUTIONS


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", nargs="?",
                        help="config file for the data set and evaluation settings (default: the checkpoint's own)")
    add_model_arguments(parser)
    parser.add_argument("--data-root", help="data set root (Cityscapes: leftImg8bit/ and gtFine/; folder layout: "
                        "images/ and masks/)")
    parser.add_argument("--split", choices=SPLITS, help="split to evaluate (default: the config's eval.split)")
    parser.add_argument("--resolution", nargs="+", choices=tuple(RESOLUTIONS),
                        help="resolutions to evaluate (default: the config's eval.resolutions, full half)")
    parser.add_argument("--tta", default="", help="test-time augmentation, e.g. flip,0.75,1.0,1.25")
    parser.add_argument("--save-dir", help="write the predictions as PNGs of the class table's mask values "
                        "(Cityscapes: labelIds as DIR/<resolution>/CITY/*_leftImg8bit.png)")
    parser.add_argument("--json", help="write the scores to this JSON file")
    parser.add_argument("--report", metavar="DIR", help="write an HTML page DIR/index.html (offline; pictures in "
                        "DIR/images/): mIoU, IoU per class, confusion, every image's mIoU, the worst images")
    parser.add_argument("--report-worst", type=int, default=8, metavar="N",
                        help="the N images of lowest mIoU to picture per resolution in --report (default 8)")
    parser.add_argument("--official", action="store_true",
                        help="also run cityscapesscripts' evaluator on the saved predictions")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--workers", type=int, help="data loader workers (default: the config's data.workers)")
    parser.add_argument("--sliding-window", metavar="H,W", help="run the network on H,W tiles (overlap 1/3)")
    parser.add_argument("--backend", choices=BACKEND_CHOICES,
                        help="score a deploy path of tools/infer.py instead of the PyTorch model as trained "
                             "(CPU; e.g. onnxruntime, openvino-int8), to see what deployment changes")
    parser.add_argument("--quantized", metavar="DIR", help="the checkpoint's int8 graphs for --backend openvino-int8 "
                        "or litert-int8 (default: CKPT_STEM.int8/ beside the checkpoint, as tools/quantize.py writes)")
    return parser.parse_args(argv)


@main_guard
def main(argv=None) -> None:
    args = parse_args(argv)
    check_report_arguments(args)
    tta = _parse_tta(args.tta)
    window = SlidingWindow.parse(args.sliding_window) if args.sliding_window else None
    device = resolve_device(args.device)
    checkpoint = resolve_checkpoint(args.checkpoint, weights=args.weights)
    print(f"checkpoint: {checkpoint}")
    model, config, table = checkpoint_model(checkpoint, args.config)

    split = args.split or config.eval.split
    if args.official and split == "test":
        raise UserError("--official needs ground truth, which the test split does not have; use --split val.")
    if args.official and (config.data.layout != "cityscapes" or not table.is_cityscapes):
        raise UserError("--official runs cityscapesscripts' evaluator, which knows only Cityscapes' layout and 19 "
                        "classes; drop --official for this data set.")
    data_root = resolve_data_root(args.data_root, config.data.root)
    dataset = build_dataset(config.data, split, data_root, table=table)
    if args.report and not dataset.has_labels:
        raise UserError(f"--report needs ground truth, which split {split!r} does not have; use --split val.")
    print(f"data: {data_root} (split {split}, {len(dataset)} images)")
    resolutions = tuple(args.resolution or config.eval.resolutions)
    workers = config.data.workers if args.workers is None else args.workers
    predict = choose_prediction(model, args, config.data.normalize, checkpoint, device, tta, window)

    with tempfile.TemporaryDirectory(prefix="segkit-eval-") as scratch:
        # --official reads the PNGs back: without --save-dir they go to a scratch folder removed afterwards.
        save_dir = Path(args.save_dir) if args.save_dir else (Path(scratch) if args.official else None)
        results = evaluate(predict, dataset, resolutions, device=device, save_dir=save_dir, workers=workers,
                           worst=args.report_worst if args.report else 0)
        official = official_scores(save_dir, data_root, split, resolutions) if args.official else None
    write_reports(args, results, official, checkpoint, split, table.names)
    if args.report:
        page = write_report(args.report, results, dataset, table, checkpoint, split, evaluated=describe(args))
        print(f"report: {page}")


def check_report_arguments(args) -> None:
    """--report's folder and --report-worst, before anything is loaded."""
    if args.report_worst < 0:
        raise UserError(f"--report-worst {args.report_worst} is negative; give the number of worst images to "
                        "picture (0 for none).")
    if args.report and Path(args.report).exists() and not Path(args.report).is_dir():
        raise UserError(f"--report {args.report} is a file; name a folder for index.html and its images.")


def describe(args) -> str:
    """What was scored, for the report's first line: the PyTorch model or a deploy path, with TTA and tiles."""
    parts = [f"deploy path --backend {args.backend}" if args.backend else "the PyTorch model"]
    if args.tta:
        parts.append(f"TTA {args.tta}")
    if args.sliding_window:
        parts.append(f"tiles {args.sliding_window}")
    return ", ".join(parts)


def official_scores(save_dir: Path, data_root, split: str, resolutions) -> dict:
    """cityscapesscripts' mIoU (a fraction) of the saved predictions, per resolution."""
    return {resolution: official_evaluation(save_dir / resolution, data_root, split,
                                            export_file=save_dir / f"official_{resolution}.json")["averageScoreClasses"]
            for resolution in resolutions}


def write_reports(args, results: dict, official: dict | None, checkpoint, split: str, names) -> None:
    """The table on stdout, the confusion plots beside --save-dir or --json, the JSON: classes by ``names``."""
    print(format_table(results, official, names))
    for resolution in official or {}:
        print(f"{resolution}: mIoU {100 * results[resolution].scores.miou:.4f} (segkit) vs "
              f"{100 * official[resolution]:.4f} (cityscapesscripts)")
    plot_dir = Path(args.save_dir) if args.save_dir else (Path(args.json).parent if args.json else None)
    if plot_dir is not None:
        for resolution, result in results.items():
            if result.confusion is not None:
                save_confusion_png(result, plot_dir / f"confusion_{resolution}.png", names)
    if args.save_dir:
        print(f"predictions: {args.save_dir}/<resolution>/ (PNGs of the class table's mask values; Cityscapes': "
              "labelIds)")
    if args.json:
        write_json_atomic(args.json, results_to_json(results, checkpoint, split, official, names))
        print(f"scores: {args.json}")


def choose_prediction(model, args, normalize: str, checkpoint: Path, device, tta: TTA, window):
    """What is scored: the model's reference prediction (TTA, tiles) or, with --backend, a CPU deploy path
    (int8 graphs from --quantized, default beside the checkpoint)."""
    if not args.backend:
        return model_labels(model.eval().to(device), tta, window)
    if device.type != "cpu" or tta.scales != (1.0,) or tta.flip or window is not None:
        raise UserError(f"--backend {args.backend} predicts single-scale whole images on the CPU; drop --tta and "
                        f"--sliding-window and add --device cpu, or evaluate the PyTorch model (no --backend).")
    quantized = Path(args.quantized) if args.quantized else quantized_dir(checkpoint)
    backend = make_backend(model, args.backend, BackendOptions("cpu", normalize=normalize, quantized=quantized,
                                                               checkpoint=checkpoint))
    print(f"backend: {backend.name}")
    return lambda images, resolution: backend(images, resolution)[None]


def _parse_tta(text: str) -> TTA:
    try:
        return TTA.parse(text)
    except ValueError as exc:
        raise UserError(f"--tta {text!r}: {exc}; use e.g. flip,0.75,1.0,1.25.") from None


if __name__ == "__main__":
    main()
