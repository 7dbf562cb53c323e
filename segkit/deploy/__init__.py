"""Deployment: BatchNorm folding, backends (PyTorch, ONNX Runtime, OpenVINO), the Predictor, ONNX export and the
fast label map. Models come from ``segkit.models``; nothing here trains or evaluates."""
from segkit.deploy.backends import BACKENDS, default_backend, make_backend
from segkit.deploy.predictor import Predictor, Timing, overlay

__all__ = ["BACKENDS", "Predictor", "Timing", "default_backend", "make_backend", "overlay"]
