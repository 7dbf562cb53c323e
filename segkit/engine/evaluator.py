"""Evaluation over a split: full and half resolution in one pass, TTA, sliding window, timing, official outputs.

One loop, read top to bottom in ``evaluate``: each image is decoded once (a DataLoader streams it, batch 1), every
requested resolution is predicted from that one tensor by a plain callable (images, resolution) -> labels -- a
model's reference prediction (``segkit.inference.model_labels``: the pixel grid, TTA, tiles) or any deploy path --
and scored against the full-size trainId label in one dataset-level confusion matrix per resolution. Nothing per
image is kept, so memory stays flat over the split. Under ``torch.distributed`` each rank evaluates every
world_size-th image and the matrices are summed.

Also here: the per-class table, the confusion-matrix plot, the labelIds PNGs of the official layout, and a
wrapper around cityscapesscripts' ``evalPixelLevelSemanticLabeling`` for the cross-check (``official_evaluation``).
"""
from __future__ import annotations

import contextlib
import copy
import glob
import io
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from segkit.data.cityscapes import LABEL_IDS_SUFFIX, worker_init_fn
from segkit.data.labels import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES, to_label_ids
from segkit.errors import UserError
from segkit.fileio import atomic_write_bytes, write_png
from segkit.engine.distributed import distributed
from segkit.metrics import ConfusionMatrix, Scores
from segkit.resolutions import RESOLUTIONS

Predict = Callable[[torch.Tensor, str], torch.Tensor]  # normalised images (1, 3, H, W), resolution -> labels (1, H, W)
PREDICTION_SUFFIX = "_leftImg8bit.png"  # the official name of a prediction: CITY_SEQ_FRAME_leftImg8bit.png


@dataclass
class EvalResult:
    """One resolution's outcome; ``scores``/``confusion`` are None on a split without labels (test)."""

    resolution: str
    scores: Scores | None
    confusion: ConfusionMatrix | None
    ms_per_image: float  # model time: resize, forward(s), upsample, label map (not decoding or saving);
    # the first image of a (rank's) pass is left out as warm-up when there are more
    images: int

    def to_dict(self, class_names=CLASS_NAMES) -> dict:
        """The eval JSON's block for this resolution (DESIGN.md): percent values and ms per image."""
        block = self.scores.to_percent_dict(class_names) if self.scores is not None else {}
        block["ms_per_image"] = self.ms_per_image
        return block


# ---- the loop ----------------------------------------------------------------------------------------------

def evaluate(predict: Predict, dataset, resolutions=("full", "half"), device="cpu", save_dir=None,
             progress: bool = True, workers: int = 2, num_classes: int = NUM_CLASSES) -> dict[str, EvalResult]:
    """Score ``predict`` on ``dataset`` at each resolution; ``{resolution: EvalResult}`` in the order given.

    ``dataset`` yields dicts like ``CityscapesDataset`` (normalised ``image``, trainId ``label``, ``has_label``,
    ``name``, ``city``); images reach ``predict`` on ``device``. ``save_dir`` receives one labelIds PNG per image
    and resolution as ``save_dir/<resolution>/CITY/CITY_SEQ_FRAME_leftImg8bit.png``.
    """
    resolutions = _check_resolutions(resolutions)
    device = torch.device(device)
    loader = DataLoader(_shard(dataset), batch_size=1, shuffle=False, num_workers=workers,
                        worker_init_fn=worker_init_fn, pin_memory=device.type == "cuda")
    matrices = {r: ConfusionMatrix(num_classes, IGNORE_INDEX, device) for r in resolutions}
    seconds = {r: 0.0 for r in resolutions}
    images, labelled = 0, 0
    show = progress and (not distributed() or torch.distributed.get_rank() == 0)  # one bar, not one per rank
    for batch in tqdm(loader, desc="eval", unit="img", disable=None if show else True):
        image = batch["image"].to(device, non_blocking=True)
        label = batch["label"].to(device, non_blocking=True)
        has_label = bool(batch["has_label"][0])
        for resolution in resolutions:
            start = time.perf_counter()
            prediction = predict(image, resolution).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)  # kernels are asynchronous: wait before reading the clock
            if images > 0 or len(loader) == 1:  # the first image pays for warm-up (allocations, autotuning)
                seconds[resolution] += time.perf_counter() - start
            if has_label:
                matrices[resolution].update(label, prediction)
            if save_dir is not None:
                path = Path(save_dir) / resolution / batch["city"][0] / f"{batch['name'][0]}{PREDICTION_SUFFIX}"
                save_prediction(path, prediction[0].cpu().numpy(), tuple(label.shape[-2:]))
        images += 1
        labelled += has_label

    timed = images - 1 if images > 1 else images
    images, labelled, timed, seconds = _sum_over_ranks(images, labelled, timed, seconds, device)
    results = {}
    for resolution in resolutions:
        matrix = matrices[resolution]
        matrix.reduce_from_all_processes()
        has_scores = labelled > 0
        results[resolution] = EvalResult(
            resolution=resolution,
            scores=matrix.compute() if has_scores else None,
            confusion=matrix if has_scores else None,
            ms_per_image=1000.0 * seconds[resolution] / max(timed, 1),
            images=images,
        )
    return results


def _check_resolutions(resolutions) -> tuple[str, ...]:
    if isinstance(resolutions, str):
        resolutions = (resolutions,)
    resolutions = tuple(dict.fromkeys(resolutions))
    unknown = [r for r in resolutions if r not in RESOLUTIONS]
    if unknown or not resolutions:
        raise UserError(f"resolution {', '.join(unknown) or '(none)'} is unknown; choose from "
                        f"{', '.join(RESOLUTIONS)}.")
    return resolutions


def _shard(dataset):
    """This rank's images: every world_size-th from its rank (no padding, unlike DistributedSampler, so no image
    is counted twice)."""
    if not distributed():
        return dataset
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return Subset(dataset, range(rank, len(dataset), world))


def _sum_over_ranks(images, labelled, timed, seconds, device):
    if not distributed():
        return images, labelled, timed, seconds
    keys = list(seconds)
    values = torch.tensor([images, labelled, timed] + [seconds[k] for k in keys], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(values)
    values = values.tolist()
    # Ranks run in parallel: the summed time over the summed images is still the per-image time of one device.
    return int(values[0]), int(values[1]), int(values[2]), dict(zip(keys, values[3:]))


# ---- outputs -----------------------------------------------------------------------------------------------

def save_prediction(path, train_ids: np.ndarray, expected_size: tuple[int, int]) -> None:
    """Write a trainId map as a single-channel labelIds PNG (official evaluator / test server form)."""
    if tuple(train_ids.shape) != tuple(expected_size):
        raise UserError(f"prediction for {path} is {train_ids.shape[0]}x{train_ids.shape[1]} but its ground truth "
                        f"is {expected_size[0]}x{expected_size[1]}; the model must return logits at the input size.")
    write_png(path, to_label_ids(train_ids.astype(np.uint8)))


def format_table(results: dict[str, EvalResult], official: dict[str, float] | None = None,
                 class_names=CLASS_NAMES) -> str:
    """Per-class IoU (percent), one column per resolution, then the summary rows."""
    columns = list(results)
    width = max(len(n) for n in class_names) + 2

    def row(name, values):
        return f"{name:<{width}}" + "".join(f"{v:>10}" for v in values)

    def pct(value):
        return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"

    lines = [row("class", columns), "-" * (width + 10 * len(columns))]
    scored = {r: results[r].scores for r in columns}
    if all(s is None for s in scored.values()):
        lines.append("(no labels in this split: no scores)")
    else:
        for index, name in enumerate(class_names):
            lines.append(row(name, [pct(s.iou[index]) if s else "-" for s in scored.values()]))
        lines.append("-" * (width + 10 * len(columns)))
        lines.append(row("mIoU", [pct(s.miou) if s else "-" for s in scored.values()]))
        if official:
            lines.append(row("mIoU (official)", [pct(official.get(r)) for r in columns]))
        lines.append(row("category mIoU", [pct(s.category_miou) if s else "-" for s in scored.values()]))
        lines.append(row("pixel acc", [pct(s.pixel_acc) if s else "-" for s in scored.values()]))
    lines.append(row("ms/image", [f"{results[r].ms_per_image:.1f}" for r in columns]))
    lines.append(row("images", [str(results[r].images) for r in columns]))
    return "\n".join(lines)


def save_confusion_png(result: EvalResult, path, class_names=CLASS_NAMES) -> None:
    """Row-normalised confusion matrix (rows: ground truth, columns: prediction, last column: "other")."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; safe in workers and on servers
    import matplotlib.pyplot as plt

    mat = result.confusion.mat.to("cpu", torch.float64)
    totals = mat.sum(1, keepdim=True)
    normalised = torch.where(totals > 0, mat / totals.clamp(min=1), torch.zeros_like(mat)).numpy()
    columns = list(class_names) + ["other"]
    figure, axes = plt.subplots(figsize=(10, 9))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(columns)), columns, rotation=90, fontsize=8)
    axes.set_yticks(range(len(class_names)), class_names, fontsize=8)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    miou = result.scores.miou if result.scores else math.nan
    axes.set_title(f"{result.resolution} resolution, mIoU {100 * miou:.2f} (rows sum to 1)")
    figure.colorbar(image, ax=axes, fraction=0.046)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def results_to_json(results: dict[str, EvalResult], checkpoint, split: str,
                    official: dict[str, float] | None = None) -> dict:
    """The eval JSON of DESIGN.md; a resolution key only for resolutions evaluated."""
    data = {"checkpoint": str(checkpoint), "split": split,
            "images": next(iter(results.values())).images if results else 0}
    for resolution, result in results.items():
        data[resolution] = result.to_dict()
        if official and resolution in official:
            data[resolution]["official_miou"] = 100.0 * official[resolution]
    return data


def write_json_atomic(path, data: dict) -> None:
    """Write JSON through a temp file and a rename, so a reader never sees half a file."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())


# ---- the official cross-check ------------------------------------------------------------------------------

def official_evaluation(prediction_dir, data_root, split: str, export_file) -> dict:
    """Run cityscapesscripts' ``evalPixelLevelSemanticLabeling`` on the labelIds PNGs under ``prediction_dir``.

    Returns its result dict (``averageScoreClasses`` and ``classScores`` as fractions). Works around three traps
    of cityscapesscripts 2.3.0 (docs/paper.md#known-traps): ``np.in1d`` is gone in numpy >= 2.4 (only instance
    scores and pixel accuracy call it: both off), errors ``sys.exit`` (caught: UserError), and the export file
    defaults into the dataset (set to ``export_file``).
    """
    # Imported when asked for: the official evaluator loads its own modules and globals on import.
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    args = copy.copy(official.args)  # the module's global defaults; never modify them
    args.cityscapesPath = str(data_root)
    args.groundTruthSearch = os.path.join(str(data_root), "gtFine", split, "*", f"*{LABEL_IDS_SUFFIX}")
    args.predictionPath, args.predictionWalk = str(prediction_dir), None
    args.exportFile = str(export_file)
    args.evalInstLevelScore = False  # needs *_instanceIds.png and np.in1d
    args.evalPixelAccuracy = False  # np.in1d again
    args.JSONOutput = True
    args.quiet, args.colorized, args.bold, args.nocol = True, False, "", ""

    ground_truth = sorted(glob.glob(args.groundTruthSearch))
    if not ground_truth:
        raise UserError(f"the official evaluator needs *{LABEL_IDS_SUFFIX} files under "
                        f"{Path(data_root) / 'gtFine' / split}; none found (it does not read labelTrainIds).")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            predictions = [official.getPrediction(args, gt) for gt in ground_truth]
            return official.evaluateImgLists(predictions, ground_truth, args)
    except SystemExit:
        # Its printError prints "ERROR: <message>" (then usage) and exits; keep the message.
        lines = [line for line in printed.getvalue().splitlines() if line.startswith("ERROR")]
        message = lines[-1][len("ERROR:"):].strip() if lines else "it exited without a message"
        raise UserError(f"the official Cityscapes evaluator failed on {prediction_dir}: {message.rstrip('.')}.") \
            from None
