"""segkit.benchmark.backends: which backends ``--backend all`` compares on this CPU."""
import segkit.benchmark.backends as benchmark_backends
from segkit.benchmark.backends import COMPARED, available_backends


def test_all_backends_skip_bf16_without_native_support(monkeypatch):
    monkeypatch.setattr(benchmark_backends, "cpu_has_bf16", lambda: False)
    assert available_backends() == tuple(name for name in COMPARED if name != "openvino-bf16")
    monkeypatch.setattr(benchmark_backends, "cpu_has_bf16", lambda: True)
    assert available_backends() == COMPARED
