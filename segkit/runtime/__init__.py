"""The PyTorch-free runtime: exported graphs run with numpy, OpenCV and ONNX Runtime / OpenVINO / LiteRT, and
never an import of torch."""
