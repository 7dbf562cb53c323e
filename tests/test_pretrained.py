import urllib.error
import urllib.request

import pytest
import torch
import torchvision

from segkit.errors import UserError
from segkit.models.mobilenetv2 import mobilenet_v2
from segkit.models.mobilenetv3 import mobilenet_v3
from segkit.config import ModelConfig
from segkit.models import build_model
from segkit.models.pretrained import load_pretrained, load_torchvision


def randomised(model: torch.nn.Module) -> torch.nn.Module:
    """A torchvision model with random BatchNorm statistics too, so parity covers every tensor."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(module.num_features, generator=generator) - 0.5)
    return model.eval()


@pytest.mark.parametrize("name, ours, tv_features", [
    ("mobilenet_v3_large", lambda: mobilenet_v3("large", output_stride=32, rf2=False), lambda tv: tv.features),
    ("mobilenet_v3_small", lambda: mobilenet_v3("small", output_stride=32, rf2=False), lambda tv: tv.features),
    # Our MobileNetV2 ends at the 320-channel layer: torchvision's features without its 1280 conv.
    ("mobilenet_v2", lambda: mobilenet_v2(output_stride=32, rf2=False), lambda tv: tv.features[:-1]),
])
def test_numerical_parity_with_torchvision(name, ours, tv_features):
    reference = randomised(getattr(torchvision.models, name)())
    backbone = ours()
    report = load_torchvision(backbone, reference.state_dict())
    assert not report.shape_mismatch and not report.missing
    assert all(key.startswith(("classifier.", "features.18.")) for key in report.unused)
    backbone.eval()
    # Our blocks differ from torchvision's in two TF conventions only: the SE gate's 0.16667 (torchvision: 1/6)
    # and SAME padding of strided convs, equal to torchvision's symmetric padding on odd sizes. With torchvision's
    # gate swapped in and an odd input, every feature must be identical.
    for module in backbone.modules():
        if isinstance(module, torchvision.ops.SqueezeExcitation):
            module.scale_activation = torch.nn.Hardsigmoid()
    images = torch.randn(2, 3, 97, 161)
    with torch.no_grad():
        expected = tv_features(reference)(images)
        actual = backbone(images)["high"]
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


def test_rf2_tail_stays_at_initialisation_and_is_reported():
    backbone = mobilenet_v3("large", rf2=True)
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    source = torchvision.models.mobilenet_v3_large().state_dict()
    report = load_torchvision(backbone, source)
    assert report.shape_mismatch and all(k.startswith(("features.13.", "features.14.", "features.15.", "features.16."))
                                         for k in report.shape_mismatch)
    assert "features.13.block.0.0.weight" in report.shape_mismatch  # 672 -> 336 expansion
    state = backbone.state_dict()
    for key in report.shape_mismatch:
        assert torch.equal(state[key], before[key])
    for key in report.loaded:
        assert torch.equal(state[key], source[key])
    assert "features.12.block.0.0.weight" in report.loaded
    assert "kept at initialisation (shape differs)" in report.summary()


def test_load_from_file(tmp_path):
    path = tmp_path / "mnv3.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
    report = load_torchvision(mobilenet_v3("small", rf2=False), path)
    assert len(report.loaded) > 200


def test_missing_and_corrupt_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="do not exist"):
        load_torchvision(mobilenet_v3("small"), tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="could not read"):
        load_torchvision(mobilenet_v3("small"), bad)


def test_imagenet_download_offline_is_one_clear_error(monkeypatch, tmp_path):
    # torchvision's weights come through segkit's cache (segkit.weights): offline, one line naming the address
    monkeypatch.setenv("SEGKIT_HOME", str(tmp_path))
    monkeypatch.delenv("SEGKIT_WEIGHTS_MIRROR", raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(UserError, match="offline") as info:
        load_pretrained(build_model(ModelConfig()), "mobilenet_v3_large", "imagenet")
    assert "\n" not in str(info.value) and "mobilenet_v3_large-8738ca79.pth" in str(info.value)


def test_imagenet_for_minimalistic_is_refused():
    with pytest.raises(UserError, match="no ImageNet weights"):
        load_pretrained(build_model(ModelConfig(backbone="mobilenet_v3_large_minimal")), "mobilenet_v3_large_minimal",
                        "imagenet")
