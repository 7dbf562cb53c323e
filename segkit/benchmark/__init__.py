"""Benchmarks behind ``tools/benchmark.py``, one module each: ``table7`` (params, MAdds, eager latency, the paper's
rows), ``backends`` (deploy paths end to end), ``data`` (loader against training step)."""
