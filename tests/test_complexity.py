"""segkit.complexity: multiply-adds of convolutions, counted without touching the model."""
import torch

from segkit.complexity import count_madds
from segkit.config import ModelConfig
from segkit.models import build_model

def test_madds_of_a_single_conv_and_meta_copy_leaves_model_intact():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1, bias=False))
    weight = conv[0].weight.clone()
    assert count_madds(conv, (10, 12)) == 10 * 12 * 16 * 3 * 9
    assert conv[0].weight.device.type == "cpu" and torch.equal(conv[0].weight, weight)


def test_madds_scale_with_resolution():
    model = build_model(ModelConfig())
    full, half = count_madds(model, (1024, 2048)), count_madds(model, (512, 1024))
    assert 3.9 < full / half < 4.1
