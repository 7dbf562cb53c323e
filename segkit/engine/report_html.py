"""The evaluation report: one HTML page that opens offline (``tools/eval.py --report DIR``).

``DIR/index.html`` and its pictures under ``DIR/images/``: the mIoU at each resolution (``table#miou``), the IoU of
every class as inline SVG bars (``svg.iou-bars``), the confusion plots (``img.confusion``), every image's own mIoU
per resolution (``table#images``, sorted by clicking a column header: a few lines of plain JavaScript) and, per
resolution, the worst images (``figure.worst``): photo | ground truth | prediction | errors. No external URL: the
CSS and the script are inline, the pictures are files beside the page. The pictures are written first and the page
last (atomically), so the page never names a picture that is not there.

An image's own mIoU is the mean IoU over the classes in its ground truth or predicted on its labelled pixels
(``segkit.engine.evaluator.ImageScores``); the split's mIoU is not their mean but that of one matrix over the split.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

import cv2
import numpy as np

from segkit.data.classes import IGNORE_INDEX, ClassTable
from segkit.engine.evaluator import EvalResult, WorstImage
from segkit.engine.reports import save_confusion_png
from segkit.errors import UserError
from segkit.fileio import atomic_write_bytes, write_jpeg, write_png

WRONG = (255, 0, 0)  # a wrong pixel in the errors picture
DIMMED = 0.4  # a correct pixel: the photo at 40 % (at most 102 per channel, never red, never the greyed range)
JPEG_QUALITY = 90  # the photos only (far smaller than as PNG); label maps stay exact PNGs
PER_IMAGE_NOTE = ("An image's mIoU is the mean IoU over the classes present in its ground truth or in its "
                  "prediction (on its labelled pixels); the split's mIoU above comes from one confusion matrix "
                  "over all images, not from these.")


def write_report(out_dir, results: dict[str, EvalResult], dataset, table: ClassTable, checkpoint, split: str,
                 evaluated: str = "") -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/images/``; returns the page's path. ``dataset`` gives the worst
    images' photos and ground truth back (``read``); ``evaluated`` says what was scored (model, backend, TTA)."""
    scored = {r: result for r, result in results.items() if result.per_image is not None}
    if not scored:
        raise UserError(f"split {split!r} has no labels; a report needs ground truth to score images against.")
    out_dir = Path(out_dir)
    try:
        (out_dir / "images").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot write the report to {out_dir} ({exc.strerror}); choose another folder.") from None
    confusion = {}
    for resolution, result in scored.items():
        confusion[resolution] = f"images/confusion_{resolution}.png"
        save_confusion_png(result, out_dir / confusion[resolution], table.names)
    worst = write_worst_pictures(out_dir, scored, dataset, table)
    page = render_page(scored, table, confusion, worst, checkpoint, split, evaluated)
    atomic_write_bytes(out_dir / "index.html", page.encode("utf-8"))  # last: the pictures are all there
    return out_dir / "index.html"


# ---- pictures -------------------------------------------------------------------------------------------------

def error_picture(photo: np.ndarray, truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """RGB uint8: wrong pixels pure red, correct ones the photo dimmed, ignored ones greyed (the photo's grey level
    lightened into 128..255, R = G = B), so the three never look alike."""
    out = (photo.astype(np.float32) * DIMMED).astype(np.uint8)
    ignored = truth == IGNORE_INDEX
    grey = cv2.cvtColor(np.ascontiguousarray(photo, np.uint8), cv2.COLOR_RGB2GRAY)
    out[ignored] = (128 + grey[ignored] // 2)[:, None]
    out[~ignored & (prediction != truth)] = WRONG
    return out


def write_worst_pictures(out_dir: Path, results: dict[str, EvalResult], dataset,
                         table: ClassTable) -> dict[str, list[tuple[WorstImage, dict[str, str]]]]:
    """Each resolution's worst images as four files; an image worst at several resolutions is read, and its photo
    and ground truth written, once. {resolution: [(image, {picture: path relative to the page})]}, worst first."""
    by_index: dict[int, list[tuple[str, WorstImage]]] = {}
    for resolution, result in results.items():
        for item in result.per_image.worst:
            by_index.setdefault(item.index, []).append((resolution, item))
    files: dict[tuple[str, int], dict[str, str]] = {}
    for index, items in by_index.items():
        photo, truth = dataset.read(index)
        shared = {"photo": f"images/{index:05d}_photo.jpg", "truth": f"images/{index:05d}_truth.png"}
        write_jpeg(out_dir / shared["photo"], photo, JPEG_QUALITY)
        write_png(out_dir / shared["truth"], table.colorize(truth))
        for resolution, item in items:
            stem = f"images/{index:05d}_{resolution}"
            files[resolution, index] = {**shared, "prediction": f"{stem}_prediction.png",
                                        "errors": f"{stem}_errors.png"}
            write_png(out_dir / files[resolution, index]["prediction"], table.colorize(item.prediction))
            write_png(out_dir / files[resolution, index]["errors"], error_picture(photo, truth, item.prediction))
    return {resolution: [(item, files[resolution, item.index]) for item in result.per_image.worst]
            for resolution, result in results.items()}


# ---- the page -------------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1500px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; } th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #e4e4e4; }
td { text-align: right; font-variant-numeric: tabular-nums; } td.name, th.name { text-align: left; }
#images th { cursor: pointer; user-select: none; background: #f4f4f4; position: sticky; top: 0; }
#images th[aria-sort=ascending]::after { content: " \\25B2"; }
#images th[aria-sort=descending]::after { content: " \\25BC"; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; } .confusion { width: 640px; max-width: 100%; }
.note { color: #555; }
figure.worst { margin: 0 0 1.5em; }
.pictures { display: grid; grid-template-columns: repeat(4, 1fr); gap: 4px; }
.pictures img { width: 100%; display: block; }
.pictures img:not(.photo) { image-rendering: pixelated; }  /* label maps: hard edges when shrunk */
.legend span { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.3em 0 1em; vertical-align: middle; }
"""

# Click a header: sort the rows by that column (numbers numerically, images without a score last), again to reverse.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (header, column) {
    header.addEventListener("click", function () {
      var up = header.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", up ? "ascending" : "descending");
      var numeric = header.dataset.type === "number";
      var key = function (row) { var cell = row.cells[column]; return cell.dataset.value; };
      var body = table.tBodies[0];
      Array.from(body.rows).sort(function (a, b) {
        var x = key(a), y = key(b);
        if (numeric) {
          if (x === "" || y === "") { return (x === "") - (y === ""); }
          return up ? x - y : y - x;
        }
        return up ? x.localeCompare(y) : y.localeCompare(x);
      }).forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def render_page(results: dict[str, EvalResult], table: ClassTable, confusion: dict[str, str], worst: dict,
                checkpoint, split: str, evaluated: str) -> str:
    """The page's HTML, every text escaped."""
    first = next(iter(results.values()))
    about = f"{_e(checkpoint)} on split {_e(split)}, {first.images} images"
    about += f"; {_e(evaluated)}" if evaluated else ""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>segkit evaluation: {_e(Path(str(checkpoint)).name)}</title>", f"<style>{STYLE}</style></head><body>",
        "<h1>segkit evaluation</h1>", f'<p id="about">{about}</p>',
        '<section id="summary"><h2>mIoU</h2>', summary_table(results), "</section>",
        '<section id="per-class"><h2>IoU per class</h2>', iou_bars(results, table), "</section>",
        '<section id="confusion"><h2>Confusion matrix</h2><div class="plots">',
        *(f'<a href="{path}"><img class="confusion" data-resolution="{r}" src="{path}" '
          f'alt="confusion matrix, {r} resolution"></a>' for r, path in confusion.items()),
        "</div></section>",
        '<section id="worst"><h2>Worst images</h2>', worst_figures(worst), "</section>",
        '<section id="per-image"><h2>Every image</h2>',
        f'<p class="note">{PER_IMAGE_NOTE} Click a column header to sort.</p>', image_table(results), "</section>",
        f"<script>{SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(parts)


def summary_table(results: dict[str, EvalResult]) -> str:
    categories = any(result.scores.category_iou for result in results.values())
    header = ["resolution", "mIoU (%)"] + (["category mIoU (%)"] if categories else []) + \
        ["pixel accuracy (%)", "ms / image", "images"]
    rows = []
    for resolution, result in results.items():
        scores = result.scores
        cells = [f'<td class="name">{resolution}</td>', f'<td class="miou">{_pct(scores.miou)}</td>']
        if categories:
            cells.append(f"<td>{_pct(scores.category_miou)}</td>")
        cells += [f"<td>{_pct(scores.pixel_acc)}</td>", f"<td>{result.ms_per_image:.1f}</td>",
                  f"<td>{result.images}</td>"]
        rows.append(f'<tr data-resolution="{resolution}">{"".join(cells)}</tr>')
    head = "".join(f'<th class="name">{h}</th>' if i == 0 else f"<th>{h}</th>" for i, h in enumerate(header))
    return f'<table id="miou"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def iou_bars(results: dict[str, EvalResult], table: ClassTable) -> str:
    """One row per class, one bar per resolution in the class's colour (the later resolutions paler)."""
    resolutions = list(results)
    label_w, bar_w, value_w, bar_h, gap = 150, 420, 70, 12, 8
    row_h = bar_h * len(resolutions) + gap
    legend_h = 22
    height = legend_h + row_h * table.num_classes
    opacity = {r: 1.0 - 0.45 * i / max(len(resolutions) - 1, 1) for i, r in enumerate(resolutions)}
    items = []
    for i, resolution in enumerate(resolutions):  # the legend: which shade is which resolution
        x = label_w + 110 * i
        items.append(f'<rect x="{x}" y="4" width="14" height="12" fill="#666" '
                     f'fill-opacity="{opacity[resolution]:.2f}"/><text x="{x + 18}" y="14">{resolution}</text>')
    for c, name in enumerate(table.names):
        y0 = legend_h + c * row_h
        colour = "#%02x%02x%02x" % table.colors[c]
        items.append(f'<text x="{label_w - 6}" y="{y0 + row_h / 2 + 1:.0f}" text-anchor="end">{_e(name)}</text>')
        for j, resolution in enumerate(resolutions):
            iou = results[resolution].scores.iou[c]
            y = y0 + j * bar_h
            if math.isnan(iou):
                items.append(f'<text x="{label_w}" y="{y + bar_h - 2}" fill="#888">absent</text>')
                continue
            width = bar_w * iou
            items.append(f'<rect class="bar" data-class="{_e(name)}" data-resolution="{resolution}" '
                         f'data-iou="{100 * iou:.2f}" x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h - 1}" '
                         f'fill="{colour}" fill-opacity="{opacity[resolution]:.2f}" stroke="#555" stroke-width="0.5">'
                         f"<title>{_e(name)}, {resolution}: {100 * iou:.2f} %</title></rect>"
                         f'<text x="{label_w + width + 4:.1f}" y="{y + bar_h - 2}">{100 * iou:.1f}</text>')
    width = label_w + bar_w + value_w
    return (f'<svg class="iou-bars" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-size="11" font-family="sans-serif" role="img" '
            f'aria-label="IoU per class">{"".join(items)}</svg>')


def image_table(results: dict[str, EvalResult]) -> str:
    """``table#images``: one row per labelled image (data set order): its position, its name, its mIoU at each
    resolution; ``data-value`` is what a column sorts by (empty: no score)."""
    resolutions = list(results)
    first = results[resolutions[0]].per_image
    miou = {r: dict(zip(results[r].per_image.index, results[r].per_image.miou)) for r in resolutions}
    head = ('<th data-type="number">#</th><th class="name" data-type="text">image</th>'
            + "".join(f'<th data-type="number" data-resolution="{r}">mIoU {r} (%)</th>' for r in resolutions))
    rows = []
    for index, name in zip(first.index, first.names):
        cells = [f'<td data-value="{index}">{index}</td>', f'<td class="name" data-value="{_e(name)}">{_e(name)}</td>']
        for r in resolutions:
            value = miou[r].get(index, math.nan)
            shown = "" if math.isnan(value) else f"{100 * value:.2f}"
            cells.append(f'<td data-value="{shown}">{shown or "-"}</td>')
        rows.append(f'<tr data-index="{index}">{"".join(cells)}</tr>')
    return (f'<table id="images" class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def worst_figures(worst: dict[str, list[tuple[WorstImage, dict[str, str]]]]) -> str:
    if not any(worst.values()):
        return '<p class="note">No worst images were asked for (--report-worst 0).</p>'
    parts = ['<p class="legend">Errors: <span style="background:#f00"></span>wrong '
             '<span style="background:#ccc"></span>ignored (no label) '
             '<span style="background:#333"></span>correct (the photo dimmed)</p>']
    captions = {"photo": "photo", "truth": "ground truth", "prediction": "prediction", "errors": "errors"}
    for resolution, items in worst.items():
        parts.append(f'<h3>{resolution} resolution: the {len(items)} lowest image mIoU</h3>')
        for rank, (item, files) in enumerate(items, 1):
            pictures = "".join(f'<a href="{files[kind]}"><img class="{kind}" src="{files[kind]}" '
                               f'alt="{caption}" title="{caption}"></a>' for kind, caption in captions.items())
            parts.append(
                f'<figure class="worst" id="worst-{resolution}-{rank}" data-resolution="{resolution}" '
                f'data-index="{item.index}" data-image="{_e(item.name)}" data-miou="{100 * item.miou:.2f}">'
                f'<div class="pictures">{pictures}</div>'
                f"<figcaption>{rank}. {_e(item.name)}: mIoU {100 * item.miou:.2f} % at {resolution} resolution "
                f"(photo | ground truth | prediction | errors)</figcaption></figure>")
    return "\n".join(parts)


def _pct(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _e(text) -> str:
    return html.escape(str(text), quote=True)
