import re
from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.ops import SqueezeExcitation

from segkit.models.blocks import InvertedResidual
from segkit.models.mobilenetv3 import mobilenet_v3


def depthwise(block: InvertedResidual) -> nn.Conv2d:
    return block.block[block.depthwise_index][0]


@pytest.mark.parametrize("variant", ["large", "small"])
@pytest.mark.parametrize("minimal", [False, True])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_strides(variant, minimal, output_stride):
    backbone = mobilenet_v3(variant, output_stride=output_stride, minimal=minimal).eval()
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 128, 256))
    assert features["high"].shape[-2:] == (128 // output_stride, 256 // output_stride)
    assert features["low"].shape[-2:] == (16, 32)  # always stride 8
    assert features["low"].shape[1] == backbone.low_channels == (120 if variant == "large" else 88)
    assert features["high"].shape[1] == backbone.high_channels


PAPER = Path(__file__).resolve().parents[1] / "docs" / "paper.md"


def cell_value(cell: str, rf2: bool) -> int:
    """A number as docs/paper.md's backbone tables write it: "**336** (672)" and "88 (168)" are the RF2 value and,
    in parentheses, the paper's; "16 (none)" is 16 either way."""
    pair = re.fullmatch(r"(\d+) \((\d+)\)", cell.replace("**", ""))
    return int(pair[1] if rf2 else pair[2]) if pair else int(re.match(r"\d+", cell)[0])


def paper_blocks(variant: str, rf2: bool) -> list[tuple]:
    """Table 1 / Table 2 as docs/paper.md writes them (the table under "MobileNetV3-Large (output ..."), one tuple
    per bottleneck: (kernel, expansion, out, SE squeeze width or 0, activation, stride, residual at OS32)."""
    text = PAPER.read_text()
    table = text[text.index(f"MobileNetV3-{variant} (output"):].split("\n\n")[1]
    blocks = []
    for indices, cells in re.findall(r"^\| ([\d, ]+) \| (.+) \|$", table, re.M):  # bottlenecks: idx is numbers only
        kernel, _, exp, out, se, activation, stride, residual = cells.split(" | ")
        block = (int(kernel), cell_value(exp, rf2), cell_value(out, rf2), 0 if se == "–" else cell_value(se, rf2),
                 activation, int(stride), residual.startswith("yes"))
        blocks += [block] * len(indices.split(","))
    return blocks


@pytest.mark.parametrize("rf2", [False, True])
@pytest.mark.parametrize("variant", ["large", "small"])
def test_built_blocks_are_the_papers_table(variant, rf2):
    # the network as built (output stride 32, so every stride is the table's), block by block, against Table 1/2
    expected = paper_blocks(variant.capitalize(), rf2)
    assert len(expected) == {"large": 15, "small": 11}[variant]
    blocks = [m for m in mobilenet_v3(variant, rf2=rf2, output_stride=32).features if isinstance(m, InvertedResidual)]
    built = []
    for block in blocks:
        layer = block.block[block.depthwise_index]
        activation = {nn.ReLU: "RE", nn.Hardswish: "HS"}[type(layer[2])]
        se = [m.fc1.out_channels for m in block.block if isinstance(m, SqueezeExcitation)]
        built.append((layer[0].kernel_size[0], block.expanded, block.out_channels, se[0] if se else 0, activation,
                      layer[0].stride[0], block.use_residual))
    assert built == expected


def test_rf2_channels_large():
    features = mobilenet_v3("large", rf2=True).features
    assert (features[13].expanded, features[13].out_channels) == (336, 80)
    assert (features[14].expanded, features[14].out_channels) == (480, 80)
    assert (features[15].expanded, features[15].out_channels) == (480, 80)
    assert features[16][0].out_channels == 480
    assert (features[12].expanded, features[12].out_channels) == (672, 112)  # untouched before the last block
    full = mobilenet_v3("large", rf2=False).features
    assert (full[13].expanded, full[13].out_channels, full[16][0].out_channels) == (672, 160, 960)


def test_rf2_channels_small():
    features = mobilenet_v3("small", rf2=True).features
    assert (features[9].expanded, features[9].out_channels) == (144, 48)
    assert (features[10].expanded, features[10].out_channels) == (288, 48)
    assert (features[11].expanded, features[11].out_channels) == (288, 48)
    assert features[12][0].out_channels == 288
    assert (features[8].expanded, features[8].out_channels) == (144, 48)


def test_dilation_rule_large_os16():
    features = mobilenet_v3("large", output_stride=16).features
    assert (depthwise(features[13]).stride, depthwise(features[13]).dilation) == ((1, 1), (1, 1))
    for index in (14, 15):
        assert depthwise(features[index]).dilation == (2, 2)
        assert depthwise(features[index]).padding == (4, 4)  # 5x5 at rate 2 keeps the size
    assert all(depthwise(features[i]).dilation == (1, 1) for i in range(1, 13))


def test_dilation_rule_small_os16():
    features = mobilenet_v3("small", output_stride=16).features
    assert depthwise(features[9]).stride == (1, 1) and depthwise(features[9]).dilation == (1, 1)
    assert depthwise(features[10]).dilation == depthwise(features[11]).dilation == (2, 2)


def test_low_level_feature_is_the_depthwise_output():
    backbone = mobilenet_v3("large").eval()
    captured = {}
    dw_layer = backbone.features[6].block[backbone.features[6].depthwise_index]
    dw_layer.register_forward_hook(lambda module, inputs, output: captured.setdefault("dw", output))
    with torch.no_grad():
        low = backbone(torch.randn(1, 3, 64, 64))["low"]
    assert torch.equal(low, captured["dw"])
    assert isinstance(backbone.features[6].block[2], SqueezeExcitation)  # the tap is before SE and projection


def test_minimalistic_has_no_se_no_hswish_and_3x3_depthwise():
    backbone = mobilenet_v3("large", minimal=True)
    modules = list(backbone.modules())
    assert not any(isinstance(m, (SqueezeExcitation, nn.Hardswish)) for m in modules)
    blocks = [m for m in modules if isinstance(m, InvertedResidual)]
    assert all(depthwise(b).kernel_size == (3, 3) for b in blocks)


def test_width_multiplier_rounds_to_multiples_of_8():
    backbone = mobilenet_v3("large", width_mult=0.75, rf2=False)
    blocks = [m for m in backbone.modules() if isinstance(m, InvertedResidual)]
    assert all(b.expanded % 8 == 0 and b.out_channels % 8 == 0 for b in blocks)
    assert [b.out_channels for b in blocks][-1] == 120  # 160 * 0.75
    assert backbone.features[0][0].out_channels == 16  # 16 * 0.75 = 12 rounds up to 16
    assert backbone.high_channels == 720
