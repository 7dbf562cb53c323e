import torch

from segkit.models.heads import LRASPP, RASPP, GatePool, gate_pool_kernel


def test_gate_kernel_from_crop_and_output_stride():
    assert gate_pool_kernel((769, 769), 16) == (49, 49)
    assert gate_pool_kernel((769, 769), 32) == (25, 25)
    assert gate_pool_kernel((769, 769), 8) == (97, 97)


def test_gate_pool_full_resolution_output_grid():
    pool = GatePool((49, 49), (4, 5))
    out = pool(torch.randn(1, 8, 64, 128))  # 1024x2048 at OS16
    assert out.shape[-2:] == (4, 16)


def test_gate_pool_clips_kernel_on_small_maps():
    pool = GatePool((49, 49), (4, 5))
    x = torch.randn(2, 8, 32, 64)  # 512x1024 at OS16: height below the kernel
    out = pool(x)
    assert out.shape[-2:] == (1, 4)
    torch.testing.assert_close(out[..., 0, 0], x[..., :, :49].mean(dim=(2, 3)))
    tiny = torch.randn(1, 8, 3, 5)  # smaller than the kernel both ways: global pooling
    torch.testing.assert_close(pool(tiny), tiny.mean(dim=(2, 3), keepdim=True))


def test_global_gate_is_mean():
    x = torch.randn(1, 4, 7, 9)
    torch.testing.assert_close(GatePool(None, (1, 1))(x), x.mean(dim=(2, 3), keepdim=True))


def features(batch=2, low=(24, 32), high=(12, 16)):
    return {"low": torch.randn(batch, 40, *low), "high": torch.randn(batch, 96, *high)}


def test_lraspp_skip_outputs_at_low_resolution():
    head = LRASPP(40, 96, 19, channels=128).eval()
    assert head(features()).shape == (2, 19, 24, 32)


def test_lraspp_without_skip_outputs_at_high_resolution_and_ignores_low():
    head = LRASPP(40, 96, 19, channels=128, skip=False).eval()
    inputs = features()
    out = head(inputs)
    assert out.shape == (2, 19, 12, 16)
    inputs["low"] = torch.randn_like(inputs["low"])
    torch.testing.assert_close(head(inputs), out)


def test_lraspp_gate_is_a_multiplicative_hard_sigmoid():
    head = LRASPP(40, 96, 3, channels=8, pool_kernel=None, skip=False).eval()
    with torch.no_grad():
        head.scale[1].weight.zero_()
        head.scale[1].bias.fill_(3.0)  # saturated: TF's gate relu6(x + 3) * 0.16667 passes 1.00002 x the branch
        x = features(batch=1)
        expected = head.high_classifier(head.cbr(x["high"]) * 1.00002)
        torch.testing.assert_close(head(x), expected)
        head.scale[1].bias.fill_(-3.0)  # relu6(0) = 0: only the classifier bias is left
        torch.testing.assert_close(head(x), head.high_classifier.bias.view(1, 3, 1, 1).expand_as(expected))


def test_lraspp_half_resolution_feature_map_smaller_than_kernel():
    head = LRASPP(120, 480, 19, channels=128, pool_kernel=(49, 49), pool_stride=(4, 5)).eval()
    out = head({"low": torch.randn(1, 120, 64, 128), "high": torch.randn(1, 480, 32, 64)})
    assert out.shape == (1, 19, 64, 128)


def test_raspp_shapes_with_and_without_skip():
    assert RASPP(40, 96, 19, channels=64).eval()(features()).shape == (2, 19, 12, 16)
    assert RASPP(40, 96, 19, channels=64, skip=True).eval()(features()).shape == (2, 19, 24, 32)
