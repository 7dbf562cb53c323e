import subprocess
import sys
from pathlib import Path

import onnx
import pytest
import torch

from segkit.config import Config, ModelConfig
from segkit.engine.checkpoint import save_checkpoint
from segkit.export import GridLogits, check_parity, export_onnx, onnx_bytes, ort_session
from segkit.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def realistic(model):
    """Random BatchNorm statistics and affine terms, so logits are O(1) and a 1e-4 tolerance means something."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return realistic(build_model(ModelConfig(backbone="mobilenet_v3_small")))


def gate_pools(graph_bytes):
    graph = onnx.load_from_string(graph_bytes).graph
    return [node for node in graph.node if node.op_type == "AveragePool"]


@pytest.mark.parametrize("size, kernel", [
    ((64, 96), [5, 7]),  # padded to 65x97, features 5x7: the 49x49 kernel clips to the map (global pooling)
    ((784, 800), [49, 49]),  # padded to 785x801, features 50x51: the paper's 49x49 gate, stride (4, 5)
])
def test_onnxruntime_matches_pytorch(small_model, size, kernel):
    graph = onnx_bytes(GridLogits(small_model), size)
    assert onnx.load_from_string(graph).opset_import[0].version >= 17
    (pool,) = gate_pools(graph)
    assert list(onnx.helper.get_attribute_value(a) for a in pool.attribute if a.name == "kernel_shape") == [kernel]
    parity = check_parity(small_model, size, ort_session(graph), ort_session(onnx_bytes(small_model, size,
                                                                                           labels=True)))
    assert parity.max_abs_logit > 0.1  # the comparison is on meaningful logits
    assert parity.max_abs_diff < 1e-4
    assert parity.label_agreement >= 99.9


def test_label_graph_upsamples_to_output_size(small_model):
    session = ort_session(onnx_bytes(small_model, (32, 64), labels=True, output_size=(64, 128)))
    labels = session.run(None, {"images": torch.randn(1, 3, 32, 64).numpy()})[0]
    assert labels.shape == (1, 64, 128) and labels.dtype.name == "uint8" and labels.max() < 19


def test_export_onnx_writes_file_and_reports_parity(small_model, tmp_path):
    path = tmp_path / "sub" / "model.onnx"
    parity = export_onnx(small_model, path, (64, 128), labels=True)
    assert path.is_file() and parity.label_agreement >= 99.9 and parity.max_abs_diff < 1e-4
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["labels"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_export_tool(tmp_path):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    save_checkpoint(tmp_path / "best.pt", {"model": build_model(config.model).state_dict(),
                                           "config": config.to_dict(), "iteration": 0})
    tool = [sys.executable, str(ROOT / "tools" / "export.py")]
    result = subprocess.run(tool + ["--checkpoint", "best.pt", "--out", "m.onnx", "--height", "64", "--width", "128"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "labels agree on 100.000%" in result.stdout and (tmp_path / "m.onnx").is_file()
    result = subprocess.run(tool + ["--checkpoint", "missing.pt", "--out", "x.onnx"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "missing.pt" in result.stderr
    assert not (tmp_path / "x.onnx").exists()
