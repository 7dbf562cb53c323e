"""Deployment: BatchNorm folding, the backends (PyTorch, ONNX Runtime, OpenVINO), ONNX export, the sparse label map,
photos and video. Models come from ``segkit.models``; nothing here trains or evaluates. The Predictor that puts
a backend to work on photos is ``segkit.predict.Predictor``."""
from segkit.deploy.backends import BACKEND_CHOICES, BACKENDS, default_backend, make_backend

__all__ = ["BACKENDS", "BACKEND_CHOICES", "default_backend", "make_backend"]
