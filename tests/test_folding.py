"""segkit.deploy.folding: BatchNorm folded into the convolutions gives the model's outputs."""
import pytest
import torch

from segkit.config import ModelConfig
from segkit.deploy.folding import optimize_for_inference
from segkit.models import build_model


def count_batchnorms(model):
    return sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "mobilenet_v2"])
def test_optimized_model_equals_eager(backbone, realistic):
    model = realistic(build_model(ModelConfig(backbone=backbone, head="raspp" if backbone == "mobilenet_v2"
                                              else "lraspp")))
    fast = optimize_for_inference(model)
    assert count_batchnorms(fast) == 0 and count_batchnorms(model) > 0  # folded, original untouched
    images = torch.randn(2, 3, 72, 136)
    with torch.inference_mode():
        expected = model(images)
        got = fast(images.contiguous(memory_format=torch.channels_last))
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
