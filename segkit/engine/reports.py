"""What is made of an evaluation's results: the per-class table, the confusion-matrix plot, the eval JSON, and
cityscapesscripts' ``evalPixelLevelSemanticLabeling`` run on the saved predictions as a cross-check
(``official_evaluation``)."""
from __future__ import annotations

import contextlib
import copy
import glob
import io
import math
import os
from pathlib import Path

import torch

from segkit.data.cityscapes import LABEL_IDS_SUFFIX
from segkit.data.labels import CLASS_NAMES
from segkit.engine.evaluator import EvalResult
from segkit.errors import UserError
from segkit.fileio import atomic_write_bytes


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
        if any(s and s.category_iou for s in scored.values()):  # only a class table with categories has them
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
    encoded = io.BytesIO()
    figure.savefig(encoded, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, encoded.getvalue())  # a report's page never shows a half-written plot


def results_to_json(results: dict[str, EvalResult], checkpoint, split: str,
                    official: dict[str, float] | None = None, class_names=CLASS_NAMES) -> dict:
    """The eval JSON (docs/architecture.md#output-formats); a resolution key only for resolutions evaluated,
    classes under the class table's names."""
    data = {"checkpoint": str(checkpoint), "split": split,
            "images": next(iter(results.values())).images if results else 0}
    for resolution, result in results.items():
        data[resolution] = result.to_dict(class_names)
        if official and resolution in official:
            data[resolution]["official_miou"] = 100.0 * official[resolution]
    return data


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
