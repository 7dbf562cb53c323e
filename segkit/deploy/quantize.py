"""Post-training int8 quantization of a checkpoint, calibrated on the user's own photos and gated by its accuracy.

For each format the graphs of ``segkit.deploy.quantized`` are made for photos of one size (the evaluation
split's), one per resolution, each starting at the photo's uint8 pixels (``segkit.deploy.export.PhotoLogits``):

- ``"openvino"``: NNCF's post-training quantization of the OpenVINO graph (int8 weights per channel in half the
  int8 range, NNCF's overflow fix; int8 activations; fast bias correction), run by ``"openvino-int8"``;
- ``"litert"``: the float phone graph (``segkit.deploy.litert``) through the AI Edge Quantizer's static int8
  recipe (int8 weights per channel, int8 activations), run by ``"litert-int8"``.

``keep_float`` leaves sensitive layers in float: ``"stem"`` (the first convolution, which sees the raw photo) and
``"classifier"`` (the head's classifier convolutions). ``quantize_checkpoint`` then scores the int8 graphs and the
float model on the evaluation split (which must have labels) with one evaluator
(``segkit.engine.evaluator.evaluate``); the mIoU drop must stay within ``max_drop`` points at every resolution (TF
deeplab's budget: 1.0). The new output folder is built beside the old one -- the new graphs, the graphs of the same
checkpoint for other photo sizes (or formats) kept, ``quantized.json`` with the kind of CPU the gate ran on
(``segkit.cpu.cpu_int8``) -- and renamed into place only when every graph passed; otherwise, or on any
error, the old folder (if any) stays as it was and nothing is left under its name or beside it.

Why half the int8 range for OpenVINO weights: CPUs without VNNI (SSE, AVX2, AVX-512 without VNNI) multiply u8 x s8
pairs into a saturating 16-bit sum, which full-range weights overflow (OpenVINO's "Saturation (overflow) issue");
NNCF's default fixes only the first layer, which cost MobileNetV3's hard-swish layers more than the gate allows there
(BENCHMARKS.md, "int8 on CPUs with and without VNNI"). With every layer fixed the graphs compute the same on both
kinds of CPU.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from torch import nn

from segkit.cpu import cpu_int8
from segkit.data.cityscapes import find_samples
from segkit.data.folder import find_folder_samples
from segkit.data.images import image_size
from segkit.deploy.backend import BackendOptions
from segkit.deploy.export import photo_graph
from segkit.deploy.litert import optional, tflite_bytes
from segkit.deploy.photos import IMAGE_EXTENSIONS, expand_inputs, load_photo
from segkit.deploy.quantized import (MANIFEST, LiteRTInt8Backend, OpenVinoInt8Backend, QuantizedGraphs,
                                     file_sha256)
from segkit.engine.evaluator import evaluate
from segkit.errors import UserError, quiet_native_stderr
from segkit.fileio import write_json_atomic
from segkit.inference import GridPlan, grid_stride, model_labels, plan_for
from segkit.runtime.runners import openvino_core

FORMATS = {"openvino": OpenVinoInt8Backend, "litert": LiteRTInt8Backend}
REQUIRES = {"openvino": [("nncf", "quantize")],
            "litert": [("litert_torch", "mobile"), ("ai_edge_quantizer.quantizer", "mobile")]}
KEEP_FLOAT = ("stem", "classifier")
SPLITS = ("train", "val", "test")


@dataclass
class Calibration:
    """The calibration photos (RGB uint8, all of one size), where they came from and how many were resized."""

    photos: list[np.ndarray]
    source: str
    resized: int = 0

    def to_dict(self) -> dict:
        return {"images": len(self.photos), "source": self.source, "resized": self.resized}


def calibration_photos(source: str, size: tuple[int, int], limit: int = 300, data_root=None,
                       layout: str = "cityscapes") -> Calibration:
    """At most ``limit`` photos, evenly spread, from a folder (searched recursively) or a split of the data set
    under ``data_root`` ("train", "val"; in ``layout``); photos of another size are resized to ``size`` (counted in
    ``resized``)."""
    if limit < 1:
        raise UserError(f"calib_images={limit} must be at least 1.", "calib_images")
    if Path(source).is_dir():
        paths, _ = expand_inputs([source])
        if not paths:
            raise UserError(f"calib={source!r} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); give a folder "
                            "of photos like those the model will see, or a split such as train.", "calib")
    elif source in SPLITS and data_root is not None:
        find = find_folder_samples if layout == "folder" else find_samples
        paths = [sample.image_path for sample in find(Path(data_root), source, with_labels=False)]
    else:
        raise UserError(f"calib={source!r} is neither a folder nor a split of the data set (train, val); give "
                        "one.", "calib")
    step = max(1, len(paths) / limit)
    chosen = [paths[int(i * step)] for i in range(min(limit, len(paths)))]
    photos, resized = [], 0
    for path in chosen:
        photo = load_photo(Path(path))
        if photo.shape[:2] != tuple(size):
            photo, resized = cv2.resize(photo, (size[1], size[0]), interpolation=cv2.INTER_AREA), resized + 1
        photos.append(photo)
    return Calibration(photos, str(source), resized)


@contextlib.contextmanager
def _quiet():
    """The quantizers' progress bars, log lines and warnings kept off the terminal (the tool says what matters)."""
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), quiet_native_stderr():
            warnings.simplefilter("ignore")
            yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def float_names(first_conv: str | None, classifiers: list[str], keep_float) -> list[str]:
    """The layer names ``keep_float`` asks to leave in float."""
    unknown = [group for group in keep_float if group not in KEEP_FLOAT]
    if unknown:
        raise UserError(f"keep_float={','.join(unknown)} is unknown; choose from {', '.join(KEEP_FLOAT)}.",
                        "keep_float")
    return ([first_conv] if "stem" in keep_float and first_conv else []) + (
        classifiers if "classifier" in keep_float else [])


def quantize_openvino(model: nn.Module, normalize: str, plan: GridPlan, photos, keep_float=()):
    """The NNCF-quantized OpenVINO graph of ``model``'s photo graph for ``plan``."""
    nncf = optional("nncf", "int8 OpenVINO graphs", "quantize")
    graph = openvino_core().read_model(photo_graph(model, normalize, plan), b"")
    convs = [op.get_friendly_name() for op in graph.get_ordered_ops()
             if op.get_type_name() in ("Convolution", "GroupConvolution")]
    ignored = float_names(convs[0] if convs else None, [n for n in convs if "classifier" in n], keep_float)
    nncf.set_log_level(logging.ERROR)
    try:
        with _quiet():
            # every layer's weights in half the range: exact on CPUs without VNNI too (the module's docstring)
            return nncf.quantize(graph, nncf.Dataset(photos, lambda photo: photo[None]), subset_size=len(photos),
                                 ignored_scope=nncf.IgnoredScope(names=ignored), fast_bias_correction=True,
                                 advanced_parameters=nncf.AdvancedQuantizationParameters(
                                     overflow_fix=nncf.OverflowFix.ENABLE))
    except Exception as exc:  # NNCF's own failure: one line, not its traceback
        raise UserError(f"NNCF could not quantize the graph ({type(exc).__name__}: {_first_line(exc)}).") from None


def quantize_litert(model: nn.Module, normalize: str, plan: GridPlan, photos, keep_float=()) -> bytes:
    """The float phone graph for ``plan`` through the AI Edge Quantizer's static int8 recipe."""
    aeq = optional("ai_edge_quantizer.quantizer", "int8 LiteRT graphs")
    recipe = optional("ai_edge_quantizer.recipe", "int8 LiteRT graphs")
    runner = optional("ai_edge_litert.interpreter", "int8 LiteRT graphs").Interpreter
    content = tflite_bytes(model, normalize, plan)
    quantizer = aeq.Quantizer(bytearray(content), recipe.static_wi8_ai8())
    with quiet_native_stderr():
        interpreter = runner(model_content=content)
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    convs = [names[op["outputs"][0]] for op in interpreter._get_ops_details()
             if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    for name in float_names(convs[0] if convs else None, [n for n in convs if "classifier" in n], keep_float):
        quantizer.update_quantization_recipe(regex=_exact(name), operation_name="*", algorithm_key="no_quantize")
    signature = next(iter(interpreter.get_signature_list().items()))
    key, input_name = signature[0], signature[1]["inputs"][0]
    try:
        with _quiet():
            calibration = quantizer.calibrate({key: [{input_name: photo[None]} for photo in photos]})
            return bytes(quantizer.quantize(calibration, enable_progress_report=False).quantized_model)
    except Exception as exc:
        raise UserError(f"the AI Edge Quantizer could not quantize the graph ({type(exc).__name__}: "
                        f"{_first_line(exc)}).") from None


def _exact(name: str) -> str:
    """The quantizer's regex for the op whose output tensor is ``name``: its scope is the outputs' names, each
    followed by a semicolon."""
    return "^" + re.escape(name) + ";"


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


@dataclass
class QuantizeJob:
    """What ``quantize_checkpoint`` does: the checkpoint's ``model`` (and its file, whose SHA-256 the graphs
    record), the ``formats``, the evaluation ``dataset`` (its photos' size is the graphs' photo size), the
    ``calibration`` photos, the ``resolutions``, the gate ``max_drop`` (mIoU points), the layers kept in float and
    the output ``folder``."""

    model: nn.Module
    checkpoint: Path
    normalize: str
    formats: tuple[str, ...]
    dataset: object
    photo_size: tuple[int, int]
    calibration: Calibration
    folder: Path
    resolutions: tuple[str, ...] = ("full", "half")
    max_drop: float = 1.0
    keep_float: tuple[str, ...] = ()
    workers: int = 0
    reference: dict = field(default_factory=dict)  # float mIoU per resolution, once scored


def quantize_checkpoint(job: QuantizeJob, say=print) -> dict[str, list[dict]]:
    """Quantize, score and gate each format; the graphs' records by format (``validated`` says whether they
    passed). Only when all passed is ``job.folder`` replaced, whole, by one holding them (with ``quantized.json``);
    otherwise, or on an error, it stays as it was."""
    _check_job(job)
    if not job.reference:
        job.reference = _miou(model_labels(job.model.eval()), job)
        say("float model: " + _scores_text(job.reference))
    staging = job.folder.with_name(f".{job.folder.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed run that had this process id
    staging.mkdir(parents=True)
    try:
        entries = {name: _gate_format(job, name, staging, say) for name in job.formats}
        records = [record for records in entries.values() for record in records]
        if all(record["validated"] for record in records):
            _write_folder(job, staging, records, say)
        return entries
    except UserError as exc:  # the message says the folder was left alone, which it was
        raise UserError(f"{str(exc).rstrip('.')}; {nothing_written(job.folder)}.", exc.parameter) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _check_job(job: QuantizeJob) -> None:
    """Before any work: each mistake the job can hold, in one line."""
    for name in job.formats:
        if name not in FORMATS:
            raise UserError(f"format={name!r} is unknown; choose from {', '.join(FORMATS)}.", "format")
        for module, extra in REQUIRES[name]:  # a missing runtime is one line at once
            optional(module, f"int8 {name} graphs", extra)
    if job.max_drop < 0:
        raise UserError(f"max_drop={job.max_drop} must not be negative.", "max_drop")
    if not job.dataset.has_labels:
        raise UserError(f"the {job.dataset.split} split of {job.dataset.root} has no labels to score the int8 graphs "
                        "against; score on a split with labels, such as val.")
    _check_folder(job.folder)


def _check_folder(folder: Path) -> None:
    """The output folder is replaced whole, so it must be one of int8 graphs (or empty, or not there yet)."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"out={str(folder)!r} is a file; give a folder for the int8 graphs.", "out")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MANIFEST).is_file():
        raise UserError(f"out={str(folder)!r} holds files but no {MANIFEST}, and the int8 graphs' folder is replaced "
                        "whole; give a folder of their own.", "out")


def nothing_written(folder: Path) -> str:
    """What a run that wrote nothing says about ``folder``."""
    return f"nothing written ({folder} left as it was)" if folder.exists() else f"nothing written to {folder}"


def _gate_format(job: QuantizeJob, name: str, staging: Path, say) -> list[dict]:
    """Make ``name``'s graphs in ``staging`` and score them through their backend; their records, with the
    figures and whether they passed."""
    records = _make_graphs(job, name, staging)
    _write_manifest(staging, job.checkpoint, records)  # what the backend reads (the final one comes at the end)
    backend = FORMATS[name](job.model, BackendOptions("cpu", normalize=job.normalize, quantized=staging))
    scores = _miou(lambda images, resolution: backend(images, resolution)[None], job)
    for record in records:
        resolution = record["resolution"]
        record.update(float=job.reference[resolution], int8=scores[resolution],
                      drop=job.reference[resolution] - scores[resolution])
    drops = ", ".join(f"{r['drop']:+.2f} at {r['resolution']}" for r in records)
    say(f"{name} int8: {_scores_text(scores)}; drop {drops} (max {job.max_drop:g})")
    return [dict(record, validated=record["drop"] <= job.max_drop) for record in records]


def _make_graphs(job: QuantizeJob, name: str, folder: Path) -> list[dict]:
    stride, (height, width) = grid_stride(job.model), job.photo_size
    records = []
    for resolution in job.resolutions:
        plan = plan_for(job.photo_size, resolution, stride)
        file = f"{name}_{resolution}_h{height}_w{width}.{'xml' if name == 'openvino' else 'tflite'}"
        if name == "openvino":
            import openvino

            graph = quantize_openvino(job.model, job.normalize, plan, job.calibration.photos, job.keep_float)
            openvino.save_model(graph, folder / file)
        else:
            content = quantize_litert(job.model, job.normalize, plan, job.calibration.photos, job.keep_float)
            (folder / file).write_bytes(content)
        kind, isa = cpu_int8()  # the gate's verdict holds for CPUs of this kind
        records.append({"format": name, "photo_size": [height, width], "resolution": resolution, "file": file,
                        "max_drop": job.max_drop, "keep_float": list(job.keep_float),
                        "calibration": job.calibration.to_dict(), "cpu_int8": kind, "cpu_isa": isa})
    return records


def _miou(predict, job: QuantizeJob) -> dict:
    results = evaluate(predict, job.dataset, job.resolutions, progress=False, workers=job.workers)
    return {r: 100.0 * results[r].scores.miou for r in job.resolutions}


def _write_manifest(folder: Path, checkpoint: Path, records: list[dict]) -> None:
    write_json_atomic(folder / MANIFEST, {"checkpoint": str(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
                                          "graphs": records})


def _write_folder(job: QuantizeJob, staging: Path, records: list[dict], say) -> None:
    """``staging`` completed -- the graphs of ``job.folder`` that ``records`` do not replace copied in, the
    manifest of all -- and renamed to ``job.folder``."""
    kept = _kept_records(job, records)
    for record in kept:
        for path in _graph_files(job.folder / record["file"]):
            shutil.copy2(path, staging / path.name)
    if kept:
        say(f"kept from {job.folder}: {len(kept)} graphs of this checkpoint for other photo sizes or formats")
    _write_manifest(staging, job.checkpoint, kept + [{k: v for k, v in r.items() if k != "validated"}
                                                     for r in records])
    _swap_in(staging, job.folder)


def _kept_records(job: QuantizeJob, records: list[dict]) -> list[dict]:
    """The records of ``job.folder`` worth keeping: the same checkpoint's, of a format and photo size this run did
    not make, whose files are there. An unreadable manifest keeps nothing: the run replaces it."""
    try:
        existing = QuantizedGraphs.read(job.folder)
    except UserError:
        return []
    if existing is None or not existing.made_from(job.checkpoint):
        return []
    new = {(r["format"], tuple(r["photo_size"])) for r in records}
    return [r for r in existing.manifest.get("graphs", []) if (r["format"], tuple(r["photo_size"])) not in new
            and all(path.is_file() for path in _graph_files(job.folder / r["file"]))]


def _graph_files(path: Path) -> list[Path]:
    """A graph's files: an OpenVINO .xml comes with its .bin."""
    return [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]


def _swap_in(staging: Path, folder: Path) -> None:
    """``staging`` renamed to ``folder``; an old ``folder`` is renamed aside first (put back if the second rename
    fails) and removed after, so that ``folder`` is always the old folder, the new one or absent, never half."""
    if not folder.exists():
        staging.rename(folder)
        return
    retired = staging.with_name(staging.name + ".old")
    folder.rename(retired)
    try:
        staging.rename(folder)
    except BaseException:
        retired.rename(folder)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _scores_text(scores: dict) -> str:
    return ", ".join(f"mIoU {value:.2f} % at {resolution}" for resolution, value in scores.items())


def photo_size_of(dataset) -> tuple[int, int]:
    """The one size of the evaluation split's photos, upright as every path reads them (the int8 graphs are made
    for one size)."""
    sizes = {image_size(sample.image_path) for sample in dataset.samples}
    if len(sizes) != 1:
        listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
        raise UserError(f"the evaluation split's photos have {len(sizes)} sizes ({listed}); int8 graphs are made "
                        "for one, so evaluate on photos of the camera's size.")
    return next(iter(sizes))
