"""segkit.deploy.export: ONNX graphs equal to PyTorch (logits and labels), static gate pools, the pixel grid inside,
atomic files."""
import numpy as np
import onnx
import pytest
import torch

from segkit.config import ModelConfig
from segkit.data.normalize import image_to_tensor
from segkit.deploy.export import check_parity, export_onnx, grid_graph, ort_session
from segkit.inference import plan_for
from segkit.models import build_model


@pytest.fixture
def small_model(realistic):
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
    plan = plan_for(size, "full", small_model.output_stride)
    graph = grid_graph(small_model, plan)
    assert onnx.load_from_string(graph).opset_import[0].version >= 17
    (pool,) = gate_pools(graph)
    assert list(onnx.helper.get_attribute_value(a) for a in pool.attribute if a.name == "kernel_shape") == [kernel]
    parity = check_parity(small_model, size, ort_session(graph), ort_session(grid_graph(small_model, plan, True)))
    assert parity.max_abs_logit > 0.1  # the comparison is on meaningful logits
    assert parity.max_abs_diff < 1e-4
    assert parity.label_agreement >= 99.9


def test_label_graph_at_half_resolution_gives_labels_at_the_input_size(small_model):
    # the network runs at 32x64 inside the graph, the labels come back at the input's 64x128
    plan = plan_for((64, 128), "half", small_model.output_stride)
    assert plan.network_size == (32, 64)
    session = ort_session(grid_graph(small_model, plan, labels=True))
    labels = session.run(None, {"images": torch.randn(1, 3, 64, 128).numpy()})[0]
    assert labels.shape == (1, 64, 128) and labels.dtype.name == "uint8" and labels.max() < 19
    parity = check_parity(small_model, (64, 128), ort_session(grid_graph(small_model, plan)), session,
                          resolution="half")
    assert parity.max_abs_diff < 1e-4 and parity.label_agreement >= 99.9


def test_export_onnx_writes_file_and_reports_parity(small_model, tmp_path):
    path = tmp_path / "sub" / "model.onnx"
    parity = export_onnx(small_model, path, (64, 128), labels=True)
    assert path.is_file() and parity.label_agreement >= 99.9 and parity.max_abs_diff < 1e-4
    assert [o.name for o in onnx.load(str(path)).graph.output] == ["labels"]
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_exported_label_graph_keeps_labels_aligned_with_the_photo(grid_probe):
    image = grid_probe.stripes((512, 1024), axis=1)
    session = ort_session(grid_graph(grid_probe.model(), plan_for((512, 1024), "full", 8), labels=True))
    labels = session.run(None, {"images": image_to_tensor(image, "tf")[None].contiguous().numpy()})[0][0]
    assert np.array_equal(labels, grid_probe.expected(image, 1, "full"))


def test_odd_photo_sizes_at_half_resolution_export(small_model, tmp_path):
    # 375x500 at half resolution is an area resize by a non-integer factor: the ONNX exporter rejected it
    # (adaptive_avg_pool2d), so tools/export.py --resolution half and tools/quantize.py ended in a traceback
    from segkit.deploy.export import PhotoLogits, photo_graph

    parity = export_onnx(small_model, tmp_path / "half.onnx", (375, 500), labels=True, resolution="half")
    assert parity.label_agreement >= 99.9
    plan = plan_for((375, 501), "half", small_model.output_stride)
    photo = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 375, 501, 3), dtype=np.uint8))
    logits = ort_session(photo_graph(small_model, "tf", plan)).run(None, {"images": photo.numpy()})[0]
    with torch.no_grad():
        expected = PhotoLogits(small_model, "tf", plan)(photo)
    assert np.abs(logits - expected.numpy()).max() < 1e-4 * max(1.0, expected.abs().max().item())
