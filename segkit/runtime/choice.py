"""Which backend segments a photo, decided without PyTorch: the backends' names (``segkit.deploy.backends.BACKENDS``
is keyed by them), the ones a deploy bundle serves, and what ``auto`` takes on this machine's CPU.

``auto`` on a CPU is the fastest float path measured on CPUs of its kind (``tools/benchmark.py --backend all``,
BENCHMARKS.md "auto by the CPU's kind"), read from its flags (``segkit.cpu``): OpenVINO in bfloat16 where the CPU
has it natively (AVX512-BF16, AMX: 1.7x ONNX Runtime's speed at 1024x2048), else OpenVINO in float32 (on AVX2
about 18 % faster than ONNX Runtime, on AVX-512 without bfloat16 as fast or a little faster), and ONNX Runtime
where OpenVINO is not installed (a runtime-only install). A GPU, or int8 graphs beside the checkpoint, are
the PyTorch side's to decide (``segkit.deploy.backends.make_backend``).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from segkit.cpu import has_bf16

BACKEND_NAMES = ("torch", "onnxruntime", "openvino", "openvino-bf16", "openvino-int8", "litert", "litert-int8")
BACKEND_CHOICES = ("auto", *BACKEND_NAMES)
# The backends a deploy bundle serves (segkit.runtime.bundle): name -> (runtime, precision).
BUNDLED = {"onnxruntime": ("onnxruntime", "f32"), "openvino": ("openvino", "f32"),
           "openvino-bf16": ("openvino", "bf16"), "litert": ("litert", "f32")}


def default_cpu_backend() -> str:
    """The fastest float backend on this CPU (module docstring), among the runtimes installed (an install without
    the [torch] or [openvino] extra has ONNX Runtime only)."""
    if not installed("openvino"):
        return "onnxruntime"
    return "openvino-bf16" if has_bf16() else "openvino"


def installed(package: str) -> bool:
    """Whether ``package`` can be imported here (without importing it)."""
    return importlib.util.find_spec(package) is not None


def gpu_present() -> bool:
    """Whether an NVIDIA GPU is here, asked of the driver rather than of PyTorch (whose import takes seconds)."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


def bundled_auto(quantized: Path | None = None) -> str | None:
    """``auto``'s backend where a deploy bundle can serve it, decided without PyTorch; None where the PyTorch side
    decides (a GPU is present, or ``quantized`` holds int8 graphs, which ``auto`` may take)."""
    if gpu_present() or (quantized is not None and (Path(quantized) / "quantized.json").is_file()):
        return None
    return default_cpu_backend()
