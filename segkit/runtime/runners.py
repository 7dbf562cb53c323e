"""A bundle's graph in its runtime, without PyTorch: a callable from uint8 photos (1, H, W, 3) to head logits
(1, C, h, w) float32. Each runtime is imported only here, and only when a bundle of its kind runs.

- ONNX Runtime: all graph optimisations, ``threads`` intra-op threads, no spinning (the label map runs after it).
- OpenVINO: the CPU plugin at the bundle's precision (f32, bf16; int8 graphs carry their own), latency hint;
  its compiled blob is cached in the bundle's folder (OpenVINO's model cache), so a second process loads it.
- LiteRT: the interpreter (XNNPACK); its logits come channels-last and, for int8 graphs, quantized.
"""
from __future__ import annotations

import functools
import os
from collections.abc import Callable

import numpy as np

from segkit.errors import UserError, quiet_native_stderr

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
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # about 0.1 s at 1024x2048
    session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda photo: session.run(None, {name: photo})[0]


@functools.lru_cache(maxsize=1)
def openvino_core():
    """The process's one OpenVINO core, which every graph is read and compiled with. Each core loads its own CPU
    plugin, and the plugin swaps the alternate signal stack of the thread that loads it for one of its own, which it
    unmaps when it goes: plugins released out of order, or on another thread, left a thread on an unmapped signal
    stack, and the next signal it handled killed the process (SIGSEGV, no traceback). One core: one plugin, for
    good."""
    return _runtime("openvino", "openvino").Core()


def _openvino(bundle, graph, threads: int) -> Runner:
    core = openvino_core()
    precision = {"bf16": "bf16", "f32": "f32"}.get(bundle.precision)
    # OpenVINO's model cache in the bundle's folder: a later process loads the compiled graph instead of compiling
    settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                "CACHE_DIR": str(bundle.folder / ".openvino_cache")}
    if precision is not None:  # int8 graphs: what stays float runs at the plugin's default
        settings["INFERENCE_PRECISION_HINT"] = precision
    request = core.compile_model(str(graph), "CPU", settings).create_infer_request()
    return lambda photo: np.array(request.infer({0: photo})[0], copy=True)


def _litert(bundle, graph, threads: int) -> Runner:
    with quiet_native_stderr():  # the XNNPACK delegate's start-up line
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
