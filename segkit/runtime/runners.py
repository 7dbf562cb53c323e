"""A bundle's graph in its runtime, without PyTorch: a callable from uint8 photos (1, H, W, 3) to head logits
(1, C, h, w) float32. Each runtime is imported only here, and only when a bundle of its kind runs.

- ONNX Runtime: all graph optimisations, ``threads`` intra-op threads, no spinning (the label map runs after it);
  the optimised graph is kept beside the bundle's own the first time, so later processes skip the optimisation.
- OpenVINO: the CPU plugin at the bundle's precision (f32, bf16; int8 graphs carry their own), latency hint;
  its compiled blob is cached in the bundle's folder (OpenVINO's model cache), so a second process loads it.
- LiteRT: the interpreter (XNNPACK); its logits come channels-last and, for int8 graphs, quantized.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from segkit.errors import UserError

Runner = Callable[[np.ndarray], np.ndarray]


def make_runner(bundle, threads: int | None = None) -> Runner:
    threads = threads or os.cpu_count() or 1
    files = list(bundle.meta["graph"]["files"])
    make = {"onnxruntime": _onnxruntime, "openvino": _openvino, "litert": _litert}[bundle.runtime]
    return make(bundle, bundle.folder / files[0], threads)


def _onnxruntime(bundle, graph, threads: int) -> Runner:
    ort = _runtime("onnxruntime", "onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # The graph optimisations take about as long as a 1024x2048 photo's network: done once, kept in the folder.
    optimized = bundle.folder / ".optimized.onnx"
    if optimized.is_file():
        graph = optimized
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    else:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.optimized_model_filepath = str(bundle.folder / f".optimized.{os.getpid()}.onnx")
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    written = bundle.folder / f".optimized.{os.getpid()}.onnx"
    if written.is_file():
        try:
            os.replace(written, optimized)  # atomic: another process reads it whole or not at all
        except OSError:
            written.unlink(missing_ok=True)
    name = session.get_inputs()[0].name
    return lambda photo: session.run(None, {name: photo})[0]


def _openvino(bundle, graph, threads: int) -> Runner:
    openvino = _runtime("openvino", "openvino")
    core = openvino.Core()
    core.set_property({"CACHE_DIR": str(bundle.folder / ".openvino_cache")})
    precision = {"bf16": "bf16", "f32": "f32"}.get(bundle.precision)
    settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if precision is not None:  # int8 graphs: what stays float runs at the plugin's default
        settings["INFERENCE_PRECISION_HINT"] = precision
    request = core.compile_model(str(graph), "CPU", settings).create_infer_request()
    return lambda photo: np.array(request.infer({0: photo})[0], copy=True)


def _litert(bundle, graph, threads: int) -> Runner:
    interpreter = _runtime("ai_edge_litert.interpreter", "litert").Interpreter(model_path=str(graph),
                                                                               num_threads=threads)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = target["quantization"]

    def run(photo: np.ndarray) -> np.ndarray:
        interpreter.set_tensor(source["index"], photo)
        interpreter.invoke()
        logits = interpreter.get_tensor(target["index"])
        if logits.dtype in (np.int8, np.uint8) and scale:  # int8 logits: their scale and zero point
            logits = (logits.astype(np.float32) - zero_point) * np.float32(scale)
        return np.ascontiguousarray(logits.transpose(0, 3, 1, 2), dtype=np.float32)  # channels-last -> NCHW

    return run


def _runtime(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"this bundle runs in {module.split('.')[0]}, which is not installed; install it with pip "
                        f"install 'segkit[{extra}]' (or pip install {module.split('.')[0].replace('_', '-')}).") \
            from None
