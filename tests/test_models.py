"""build_model / Segmentor: every config in configs/ builds, runs and trains."""
from pathlib import Path

import pytest
import torch

from segkit.config import ModelConfig, load_config
from segkit.errors import UserError
from segkit.models import LRASPP, RASPP, build_model

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.py"))


def test_there_are_configs_for_all_table7_rows():
    assert len([p for p in CONFIGS if p.parent.name == "table7"]) == 11


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_builds_runs_and_gradients_reach_every_parameter(path):
    model = build_model(load_config(path).model)
    model.train()
    images = torch.randn(2, 3, 97, 161)  # odd size: the output must still match the input
    logits = model(images)
    assert logits.shape == (2, model.num_classes, 97, 161)
    logits.logsumexp(dim=1).mean().backward()
    no_grad = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    if not load_config(path).model.zero_init_residual:
        assert no_grad == []
        return
    # Residual branches start switched off (last BN scale 0): at first only that BN learns inside them (and the
    # layers up to the skip's depthwise tap, which the head reads). Everything else must get gradient.
    from segkit.models.blocks import InvertedResidual

    switched_off, last_bns = set(), set()
    for prefix, block in model.named_modules():
        if isinstance(block, InvertedResidual) and block.use_residual:
            last_bn = f"{prefix}.block.{len(block.block) - 1}.1."
            names = {f"{prefix}.{name}" for name, _ in block.named_parameters()}
            last_bns |= {name for name in names if name.startswith(last_bn)}
            switched_off |= {name for name in names if not name.startswith(last_bn)}
    assert no_grad and set(no_grad) <= switched_off and not last_bns & set(no_grad)


def test_half_resolution_input_runs_with_the_49x49_gate():
    model = build_model(ModelConfig()).eval()  # row 8
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 512, 1024))
    assert logits.shape == (1, 19, 512, 1024)


def test_head_choice_and_skip_defaults():
    lraspp = build_model(ModelConfig(head="lraspp"))
    raspp = build_model(ModelConfig(head="raspp", head_channels=256))
    assert isinstance(lraspp.head, LRASPP) and lraspp.head.low_classifier is not None
    assert isinstance(raspp.head, RASPP) and raspp.head.low_classifier is None
    assert build_model(ModelConfig(head="raspp", skip=True)).head.low_classifier is not None
    assert build_model(ModelConfig(head="lraspp", skip=False)).head.low_classifier is None


def test_gate_pool_kernel_follows_crop_and_output_stride():
    assert build_model(ModelConfig()).head.scale[0].kernel == (49, 49)
    assert build_model(ModelConfig(output_stride=32)).head.scale[0].kernel == (25, 25)
    assert build_model(ModelConfig(global_pool=True)).head.scale[0].kernel is None


def test_backbone_returns_low_and_high():
    model = build_model(ModelConfig(backbone="mobilenet_v3_small")).eval()
    with torch.no_grad():
        features = model.backbone(torch.randn(1, 3, 64, 128))
    assert set(features) == {"low", "high"}
    assert features["low"].shape == (1, 88, 8, 16) and features["high"].shape == (1, 288, 4, 8)


def test_bn_momentum_applies_to_every_batchnorm():
    model = build_model(ModelConfig(bn_momentum=0.1))
    momenta = {m.momentum for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert momenta == {0.1}
    default = build_model(ModelConfig())
    assert default.backbone.features[1].block[0][1].momentum == 0.01  # torchvision's MobileNetV3 value


def test_zero_init_residual_makes_residual_blocks_identity():
    from segkit.models.blocks import InvertedResidual

    torch.manual_seed(0)
    model = build_model(ModelConfig(zero_init_residual=True)).eval()
    residual = [m for m in model.backbone.modules() if isinstance(m, InvertedResidual) and m.use_residual]
    assert len(residual) >= 5
    for block in residual:
        x = torch.randn(1, block.block[0][0].in_channels, 9, 11)
        torch.testing.assert_close(block(x), x)
    plain = build_model(ModelConfig())  # the paper's init: residual branches are live
    assert all(m.block[-1][1].weight.abs().sum() > 0 for m in plain.backbone.modules()
               if isinstance(m, InvertedResidual) and m.use_residual)


def test_an_unchecked_backbone_name_is_one_line():
    # build_model on a config nobody validated raised a bare KeyError
    with pytest.raises(UserError, match="model.backbone='resnet50' is unknown"):
        build_model(ModelConfig(backbone="resnet50"))
