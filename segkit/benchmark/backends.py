"""Deploy backends end to end (``tools/benchmark.py CONFIG --backend all``): a photo to its full-size label map, per
backend, interleaved in one run, beside torchvision's LR-ASPP and the compute bound 2 * MAdds / sgemm GFLOP/s."""
from __future__ import annotations

import statistics
import time

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segkit.benchmark.table7 import benchmark_config
from segkit.config import Config
from segkit.data.labels import to_train_ids
from segkit.data.synthetic import generate_scene
from segkit.deploy.backend import BackendOptions
from segkit.deploy.backends import BACKENDS, NEEDS_QUANTIZED, TorchBackend, cpu_has_bf16, default_backend
from segkit.deploy.labelmap import label_map
from segkit.inference import plan_for, plan_prediction, to_labels
from segkit.models import build_model
from segkit.predict import Predictor
from segkit.resolutions import RESOLUTIONS

# Every float backend of the table, between the model as trained ("torch-eager") and torchvision's LR-ASPP; the
# int8 ones need a checkpoint's quantized graphs, "litert" converts for minutes per size (tools/benchmark.py
# --table7 --runtime litert times it).
COMPARED = ("torch-eager", *(n for n in BACKENDS if n not in NEEDS_QUANTIZED and n != "litert"), "torchvision")
CHOICES = (*COMPARED, "litert", *NEEDS_QUANTIZED)  # what --backend may name (the int8 ones with --checkpoint)


def available_backends(names=COMPARED) -> tuple[str, ...]:
    """``names`` less "openvino-bf16" on a CPU without native bfloat16 (``--backend all`` skips it)."""
    return tuple(name for name in names if name != "openvino-bf16" or cpu_has_bf16())


def sgemm_gflops(n: int = 2048, repeats: int = 5, dtype: torch.dtype = torch.float32) -> float:
    """GFLOP/s of an n x n matrix product (torch.mm; float32 by MKL, bfloat16 by oneDNN) at the current thread
    count: this machine's practical compute peak, measured beside the models so both see the same load."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        timings.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(timings) / 1e9


class TorchvisionLRASPP(nn.Module):
    """torchvision's LR-ASPP MobileNetV3-Large (random weights, 19 classes, dilated, ``reduced_tail=True``),
    returning its logits tensor so that it runs through the same ``segkit.inference`` code as ours."""

    def __init__(self, num_classes: int = 19):
        super().__init__()
        from torchvision.models import mobilenet_v3_large
        from torchvision.models.segmentation.lraspp import _lraspp_mobilenetv3

        backbone = mobilenet_v3_large(weights=None, dilated=True, reduced_tail=True)
        self.model = _lraspp_mobilenetv3(backbone, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["out"]


def backend_predictors(config: Config, backends=COMPARED, threads: int | None = None,
                       model: nn.Module | None = None, checkpoint=None) -> dict:
    """name -> Predictor on the CPU. "torch-eager" is the model as trained (eval mode, the reference path); the
    others of ``BACKENDS`` are ``segkit.deploy``'s; "torchvision" is torchvision's model, eager, through the same
    code. ``model`` (e.g. trained weights) defaults to a randomly initialised one; the int8 backends take the
    graphs of ``checkpoint`` (``tools/quantize.py``)."""
    if model is None:
        with torch.random.fork_rng():
            torch.manual_seed(0)  # the same random weights in every run: their label maps' cost is comparable
            model = build_model(config.model)
    model, normalize = model.eval(), config.data.normalize

    def build(name: str) -> Predictor:
        if name == "torch-eager":
            return Predictor(TorchBackend(model, BackendOptions("cpu", normalize=normalize), optimize=False),
                             normalize)
        if name == "torchvision":
            return Predictor(TorchBackend(TorchvisionLRASPP(config.model.num_classes),
                                          BackendOptions("cpu", normalize="imagenet"), optimize=False), "imagenet")
        return Predictor.from_model(model, normalize, name, "cpu", threads, checkpoint)

    return {name: build(name) for name in backends}


def compare_backends(config: Config, resolutions=("full", "half"), repeats: int = 5,
                     backends=COMPARED, model: nn.Module | None = None, photo: np.ndarray | None = None,
                     checkpoint=None) -> dict:
    """Median end-to-end milliseconds per backend and resolution, the ratios to torchvision and to the bound.

    One run, interleaved: each repeat times every backend once (after one untimed call, which absorbs the
    previous backend's spinning threads and cold caches), so that load from other processes on a shared machine
    falls on all of them alike. "full" is a 1024x2048 photo, "half" a 512x1024 one (Table 7's CPU(f) and
    CPU(h) inputs); each timing covers normalisation, network, upsampling and the label map at the photo's size.
    "<backend> network" is the same backend's network alone (head logits). The bound is 2 * MAdds / sgemm
    GFLOP/s: the network's multiply-adds at this machine's float32 matrix-product speed (no upsampling, no label
    map); ``bf16_bound_ms`` is the same at the bfloat16 matrix-product speed, the fair bound of "openvino-bf16".
    ``model``: trained weights instead of random ones; ``photo``: an RGB image (resized to each resolution)
    instead of noise -- with both, the label maps are those of real use (random weights give noisy maps, the
    label map's worst case)."""
    record = benchmark_config(config, resolutions=resolutions, latency=False)
    predictors = backend_predictors(config, backends, model=model, checkpoint=checkpoint)
    timings = interleaved_timings(backend_runners(predictors), resolutions,
                                  repeats, photo)
    gflops = sgemm_gflops()
    bf16_gflops = sgemm_gflops(dtype=torch.bfloat16) if any(name.endswith("bf16") for name in backends) else None
    label_step = label_map_timings(repeats)
    medians = {name: {res: round(statistics.median(t), 2) for res, t in per.items()} for name, per in timings.items()}
    default = default_backend(torch.device("cpu"))
    bound = {res: round(1000 * 2 * record["madds"][res] / (gflops * 1e9), 2) for res in resolutions}
    record.update({
        "backend": default,
        "latency_ms": medians.get(default, {}),
        "backends_ms": medians,
        "sgemm_gflops": round(gflops, 1),
        "bound_ms": bound,
        "label_map_ms": {res: label_step[res] for res in resolutions},
        "trained_weights": model is not None,
        "photo": photo is not None,
    })
    if bf16_gflops:
        record["bf16_gemm_gflops"] = round(bf16_gflops, 1)
        record["bf16_bound_ms"] = {res: round(1000 * 2 * record["madds"][res] / (bf16_gflops * 1e9), 2)
                                   for res in resolutions}
    record.update(ratios(record, medians, default))
    return record


def backend_runners(predictors: dict) -> dict:
    """name -> photo -> labels: every backend end to end, and "<name> network" for the network alone."""
    runners = {}
    for name, predictor in predictors.items():
        runners[name] = lambda image, p=predictor: p.predict(image)
        if name not in ("torch-eager", "torchvision", *NEEDS_QUANTIZED):
            runners[f"{name} network"] = lambda image, p=predictor: network_alone(p, image)
    return runners


def network_alone(predictor: Predictor, image: np.ndarray) -> torch.Tensor:
    """The backend's head logits of a photo at full resolution (its input made as the backend makes it: the pixels
    for a graph that starts there), without the label map."""
    plan = plan_for(image.shape[:2], "full", predictor.backend.stride)
    return predictor.backend.logits(predictor.backend.inputs(image, plan), plan)


def interleaved_timings(runners: dict, resolutions, repeats: int, photo: np.ndarray | None) -> dict:
    """name -> resolution -> milliseconds of each repeat, the runners interleaved."""
    timings = {name: {res: [] for res in resolutions} for name in runners}
    for resolution in resolutions:
        height, width = RESOLUTIONS[resolution].size
        if photo is None:
            image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        else:
            image = cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)
        for _ in range(repeats):
            for name, run in runners.items():
                # Untimed first: the previous backend's thread pool may still be spinning on the cores (and the
                # first call of all exports the graph for this size).
                run(image)
                start = time.perf_counter()
                run(image)
                timings[name][resolution].append(1000 * (time.perf_counter() - start))
    return timings


def ratios(record: dict, medians: dict, default: str) -> dict:
    """The default backend against torchvision and against the bounds."""
    resolutions, bound, out = list(record["bound_ms"]), record["bound_ms"], {}
    if "torchvision" in medians and default in medians:
        out["speedup_vs_torchvision"] = {res: round(medians["torchvision"][res] / medians[default][res], 2)
                                         for res in resolutions}
    if default in medians:
        out["ratio_to_bound"] = {res: round(medians[default][res] / bound[res], 2) for res in resolutions}
    if default.endswith("bf16") and default in medians and "bf16_bound_ms" in record:
        out["ratio_to_bf16_bound"] = {res: round(medians[default][res] / record["bf16_bound_ms"][res], 2)
                                      for res in resolutions}
    if f"{default} network" in medians:
        out["network_ratio_to_bound"] = {res: round(medians[f"{default} network"][res] / bound[res], 2)
                                         for res in resolutions}
    return out


def backends_report(record: dict, repeats: int) -> str:
    """The comparison as a text table: median ms per backend, x torchvision, x bound."""
    resolutions = list(record["bound_ms"])
    label = {"full": "1024x2048", "half": "512x1024"}
    header = f"{'backend':<20}" + "".join(f"{label[r]:>12} {'vs tv':>6} {'/bound':>7}" for r in resolutions)
    lines = [f"{record['config']}: {record['params'] / 1e6:.3f}M params, MAdds "
             + ", ".join(f"{label[r]} {record['madds'][r] / 1e9:.2f}B" for r in resolutions)
             + f"; median of {repeats} runs, photo -> label map of its size, {record['threads']} threads",
             header, "-" * len(header)]
    tv = record["backends_ms"].get("torchvision")
    for name, per in record["backends_ms"].items():
        line = f"{name + (' *' if name == record['backend'] else ''):<20}"
        for res in resolutions:
            speedup = f"{tv[res] / per[res]:>5.2f}x" if tv and not name.endswith("network") else f"{'-':>6}"
            line += f"{per[res]:>10.0f}ms {speedup} {per[res] / record['bound_ms'][res]:>6.2f}x"
        lines.append(line)
    lines.append(f"{'bound':<20}" + "".join(f"{record['bound_ms'][r]:>10.0f}ms {'':>6} {1:>6.2f}x"
                                            for r in resolutions))
    if "bf16_bound_ms" in record:
        lines.append(f"{'bf16 bound':<20}" + "".join(
            f"{record['bf16_bound_ms'][r]:>10.0f}ms {'':>6} {record['bf16_bound_ms'][r] / record['bound_ms'][r]:>6.2f}x"
            for r in resolutions))
    lines += ["", f"* = the default CPU backend (auto). bound = 2 * MAdds / {record['sgemm_gflops']:.0f} GFLOP/s "
              "(float32 2048x2048 torch.mm, same threads, same run); vs tv = torchvision LR-ASPP time / this time."]
    if "bf16_bound_ms" in record:
        lines.append(f"bf16 bound = 2 * MAdds / {record['bf16_gemm_gflops']:.0f} GFLOP/s (bfloat16 torch.mm): the "
                     f"bound of the bfloat16 backend, whose times are {' and '.join(_bf16_ratios(record))} of it.")
    lines += [
              ("Inputs: trained weights" if record["trained_weights"] else "Inputs: random weights")
              + (" on a photo." if record["photo"] else " on noise.")]
    if not (record["trained_weights"] and record["photo"]):
        lines += ["Noise label maps take label_map's dense fallback (trained weights on a photo give real ones).",
                  "The label-map step alone on logits shaped like a trained model's (synthetic scene, 1/8 -> labels):"]
    else:
        lines.append("The label-map step alone on logits shaped like a trained model's "
                     "(synthetic scene, 1/8 -> labels):")
    for res in resolutions:
        step = record["label_map_ms"][res]
        lines.append(f"  {label[res]}: dense upsample + max {step['dense']:.0f} ms, segkit.deploy.labelmap "
                     f"{step['label_map']:.0f} ms, labels agree {step['agreement_pct']:.3f}%")
    return "\n".join(lines)


def _bf16_ratios(record: dict) -> list[str]:
    per = record["backends_ms"].get("openvino-bf16", {})
    return [f"{per[r] / record['bf16_bound_ms'][r]:.2f}x" for r in record["bf16_bound_ms"] if r in per]


def label_map_timings(repeats: int = 5, num_classes: int = 19) -> dict:
    """Median ms of the label-map step alone (1/8 logits -> labels), dense vs ``segkit.deploy.labelmap``, on
    logits shaped like a trained model's: a synthetic street scene's ground truth at 1/8, one-hot times 4 plus
    unit noise. The end-to-end runs above use random weights, whose label maps are noise (dense fallback)."""
    result = {}
    for name in ("full", "half"):
        _, label_ids = generate_scene(*RESOLUTIONS[name].size, np.random.default_rng(0))
        plan = plan_prediction(RESOLUTIONS[name].size, 16)  # the network input on the pixel grid of OS16
        low = ((plan.padded_size[0] - 1) // 8 + 1, (plan.padded_size[1] - 1) // 8 + 1)
        train_ids = torch.from_numpy(to_train_ids(label_ids)).long()
        train_ids = F.interpolate(train_ids[None, None].float(), size=low, mode="nearest")[0, 0].long()
        train_ids[train_ids >= num_classes] = 0
        generator = torch.Generator().manual_seed(0)
        logits = 4 * F.one_hot(train_ids, num_classes).permute(2, 0, 1)[None].float().contiguous()
        logits += torch.randn(logits.shape, generator=generator)
        ways = {"dense": lambda: to_labels(plan.upsample(logits))[0], "label_map": lambda: label_map(logits, plan)}
        timings = {"dense": [], "label_map": []}
        for _ in range(repeats + 1):
            for key, fn in ways.items():
                start = time.perf_counter()
                fn()
                timings[key].append(1000 * (time.perf_counter() - start))
        result[name] = {key: round(statistics.median(t[1:]), 1) for key, t in timings.items()}
        agreement = (ways["dense"]() == ways["label_map"]()).double().mean().item()
        result[name]["agreement_pct"] = round(100 * agreement, 4)
    return result
