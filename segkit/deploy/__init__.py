"""Deployment: BatchNorm folding, the backends (PyTorch, ONNX Runtime, OpenVINO, LiteRT; ``segkit.deploy.backends``),
ONNX export, the sparse label map, deploy bundles, int8 graphs and photos. Models come from ``segkit.models``;
nothing here trains or evaluates. The Predictor that puts a backend to work on photos is
``segkit.predict.Predictor``. Nothing is imported here: ``segkit.deploy.photos`` must not pull in the backends."""
