import pytest
import torch

from segkit.models.mobilenetv2 import mobilenet_v2


@pytest.mark.parametrize("output_stride", [8, 16, 32])
@pytest.mark.parametrize("width_mult", [1.0, 0.5, 0.35])
def test_feature_strides_and_low_level(output_stride, width_mult):
    backbone = mobilenet_v2(width_mult=width_mult, output_stride=output_stride).eval()
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 128, 192))
    assert features["high"].shape[-2:] == (128 // output_stride, 192 // output_stride)
    assert features["low"].shape[-2:] == (16, 24)
    assert features["low"].shape[1] == backbone.low_channels


def test_low_level_is_the_layer7_depthwise_output():
    backbone = mobilenet_v2(rf2=False)
    assert backbone.low_index == 6 and backbone.low_channels == 192


def test_rf2_halves_the_last_blocks():
    full, rf2 = mobilenet_v2(rf2=False).features, mobilenet_v2(rf2=True).features
    assert [full[i].out_channels for i in range(14, 18)] == [160, 160, 160, 320]
    assert [rf2[i].out_channels for i in range(14, 18)] == [80, 80, 80, 160]
    # Block 14's expansion is 6 x its (unchanged) 96-channel input; the next ones follow the halved input.
    assert [rf2[i].expanded for i in range(14, 18)] == [576, 480, 480, 480]
    assert rf2[13].out_channels == full[13].out_channels == 96


def test_thin_widths_round_then_halve():
    features = mobilenet_v2(width_mult=0.35, rf2=True).features
    assert features[0][0].out_channels == 16
    assert [features[i].out_channels for i in (1, 2, 4, 7, 11)] == [8, 8, 16, 24, 32]
    assert [features[i].out_channels for i in (14, 17)] == [28, 56]  # 56 // 2 and 112 // 2
    assert features[1].expanded == 16 and len(features[1].block) == 2  # t = 1: no expansion conv


def test_dilation_rule_os16():
    features = mobilenet_v2(output_stride=16).features
    dw = lambda i: features[i].block[features[i].depthwise_index][0]  # noqa: E731
    assert dw(14).stride == (1, 1) and dw(14).dilation == (1, 1)
    assert dw(15).dilation == dw(16).dilation == dw(17).dilation == (2, 2)
    assert dw(7).stride == (2, 2)
