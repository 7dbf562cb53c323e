"""segkit.cpu: the CPU's flags, its int8 arithmetic's kind (with or without VNNI) and native bfloat16, as oneDNN's
ISA cap allows them."""
from pathlib import Path

import pytest

import segkit.cpu as cpu


@pytest.mark.parametrize("machine, flags, cap, kind", [
    ("x86_64", {"sse4_1", "avx2"}, None, ("no-vnni", "avx2")),
    ("x86_64", {"sse4_1", "avx2", "avx512f"}, None, ("no-vnni", "avx512f")),  # Skylake-SP
    ("x86_64", {"sse4_1", "avx2", "avx_vnni"}, None, ("vnni", "avx_vnni")),  # Alder Lake: VNNI without AVX-512
    ("x86_64", {"sse4_1", "avx2", "avx512f", "avx512_vnni", "avx_vnni"}, None, ("vnni", "avx512_vnni")),
    ("x86_64", {"sse4_1", "avx2", "avx512f", "avx512_vnni", "avx_vnni"}, "avx512_core", ("no-vnni", "avx512f")),
    ("x86_64", {"sse4_1", "avx2", "avx512f", "avx512_vnni", "avx_vnni"}, "AVX2_VNNI", ("vnni", "avx_vnni")),
    ("x86_64", {"sse4_1", "avx2", "avx512f", "avx512_vnni", "amx_int8"}, "AVX2", ("no-vnni", "avx2")),
    ("x86_64", {"sse4_1", "avx2", "avx512f", "avx512_vnni", "amx_int8"}, "AVX512_CORE_AMX", ("vnni", "amx_int8")),
    ("arm64", set(), None, ("arm64", "arm64")),
])
def test_the_kind_of_cpu_int8_arithmetic(monkeypatch, machine, flags, cap, kind):
    monkeypatch.setattr(cpu.platform, "machine", lambda: machine)
    monkeypatch.setattr(cpu, "cpu_flags", lambda: flags)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap or "")
    assert cpu.cpu_int8.__wrapped__() == kind


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="Linux's list of CPU flags")
def test_the_cpu_flags_agree_with_numpys():
    from numpy._core._multiarray_umath import __cpu_features__ as numpy_flags

    flags = cpu.cpu_flags()
    assert {name: name in flags for name in ("avx512_vnni", "avx512f", "avx2")} == {
        "avx512_vnni": numpy_flags["AVX512VNNI"], "avx512f": numpy_flags["AVX512F"], "avx2": numpy_flags["AVX2"]}


@pytest.mark.parametrize("flags, cap, bf16", [
    ({"avx2", "avx512f", "avx512_bf16"}, None, True),
    ({"avx2", "avx512f", "amx_bf16"}, "AVX512_CORE_AMX", True),
    ({"avx2", "avx512f", "avx512_bf16"}, "AVX2", False),  # oneDNN capped below bfloat16: OpenVINO cannot use it
    ({"avx2", "avx512f", "avx512_vnni"}, None, False),
])
def test_native_bfloat16(monkeypatch, flags, cap, bf16):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: flags)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap or "")
    assert cpu.has_bf16.__wrapped__() == bf16
