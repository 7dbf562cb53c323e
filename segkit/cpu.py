"""What this CPU can do, read from its feature flags, without PyTorch or a runtime: native bfloat16, and the kind of
its int8 arithmetic (with or without VNNI). The backends' choices (``segkit.runtime.choice``) and the int8 gate's
record (``segkit.deploy.quantized``) rest on these answers.
"""
from __future__ import annotations

import functools
import os
import platform

# x86 int8 instruction sets, best first, by their /proc/cpuinfo flags; the first three multiply u8 x s8 and add in
# 32 bits (VNNI, AMX). The others (AVX-512 without VNNI, AVX2, SSE) saturate a 16-bit intermediate sum, which
# 8-bit weights can overflow: OpenVINO's "Saturation (overflow) issue".
INT8_ISAS = ("amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "sse4_1")
VNNI_ISAS = INT8_ISAS[:3]
# oneDNN's cap on the ISA it uses (ONEDNN_MAX_CPU_ISA, which OpenVINO's CPU plugin honours) -> the best of
# INT8_ISAS it allows; capping at AVX512_CORE excludes AVX-VNNI too. Caps not listed (AMX ones, ALL) allow all.
ONEDNN_CAPS = {"SSE41": "sse4_1", "AVX": "sse4_1", "AVX2": "avx2", "AVX2_VNNI": "avx_vnni",
               "AVX2_VNNI_2": "avx_vnni", "AVX512_CORE": "avx512f", "AVX512_CORE_VNNI": "avx512_vnni",
               "AVX512_CORE_BF16": "avx512_vnni", "AVX512_CORE_FP16": "avx512_vnni", "AVX10_1_512": "avx512_vnni"}
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # native bfloat16 arithmetic, as OpenVINO uses it
BELOW_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI")  # oneDNN caps


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags by their /proc/cpuinfo names: Linux's own list, elsewhere numpy's (which knows no
    AVX-VNNI or AMX, so those CPUs read as AVX-512 or AVX2 ones)."""
    try:
        with open("/proc/cpuinfo") as f:
            return frozenset(next(line for line in f if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        pass
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy 1
        from numpy.core._multiarray_umath import __cpu_features__
    names = {"AVX512VNNI": "avx512_vnni", "AVX512F": "avx512f", "AVX2": "avx2", "SSE41": "sse4_1",
             "AVX512BF16": "avx512_bf16"}
    return frozenset(flag for name, flag in names.items() if __cpu_features__.get(name))


@functools.lru_cache(maxsize=1)
def cpu_int8() -> tuple[str, str]:
    """(kind, ISA) of this CPU's int8 arithmetic: ("vnni", "avx512_vnni") where its dot products are exact,
    ("no-vnni", "avx2") where they saturate (``INT8_ISAS``), as capped by ``ONEDNN_MAX_CPU_ISA``; on other
    architectures the machine's name for both (e.g. "arm64"). Asked once: the answer cannot change within a
    process."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64", "i686", "x86"):
        return machine or "unknown", machine or "unknown"
    cap = ONEDNN_CAPS.get(_onednn_cap(), INT8_ISAS[0])
    flags = cpu_flags()
    isa = next((name for name in INT8_ISAS[INT8_ISAS.index(cap):] if name in flags), "x86")
    return ("vnni" if isa in VNNI_ISAS else "no-vnni"), isa


@functools.lru_cache(maxsize=1)
def has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX), unless oneDNN is capped below it."""
    return _onednn_cap() not in BELOW_BF16 and any(flag in cpu_flags() for flag in BF16_FLAGS)


def _onednn_cap() -> str:
    return (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA", "")).upper()


def describe() -> str:
    """A line naming what the choices rest on, for benchmarks' records: bf16, the int8 kind and ISA."""
    kind, isa = cpu_int8()
    return f"{platform.machine()}, bf16 {'yes' if has_bf16() else 'no'}, int8 {kind} ({isa})"
