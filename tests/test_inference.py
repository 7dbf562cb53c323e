"""segkit.inference: the prediction plan (the grid rule written once), half resolution, TTA (flip, scales)
averaging probabilities, label maps, sliding windows."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import segkit.geometry as geometry
from segkit.data.normalize import image_to_tensor
from segkit.deploy.backends import BACKENDS, NEEDS_QUANTIZED, cpu_has_bf16
from segkit.deploy.export import grid_graph, ort_session
from segkit.deploy.labelmap import label_map
from segkit.errors import UserError
from segkit.inference import (TTA, SlidingWindow, _tiles, grid_size, pad_to_grid, plan_for, predict_scores,
                              resize_images, sliding_window_scores, to_labels)
from segkit.predict import Predictor


class Recorder(nn.Module):
    """Wraps a model and records the input shapes it was called with."""

    def __init__(self, model):
        super().__init__()
        self.model, self.shapes = model, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.model(x)


class ColumnRamp(nn.Module):
    """Two-class logits that depend only on the column: class 0 = x / width, class 1 = 0 (flip changes them)."""

    def forward(self, x):
        n, _, h, w = x.shape
        ramp = torch.linspace(0, 3, w).expand(n, 1, h, w)
        return torch.cat([ramp, torch.zeros_like(ramp)], dim=1)


class SizeLogits(nn.Module):
    """Spatially constant logits (height / 8, 0): every scale gives a different, known probability."""

    def forward(self, x):
        n, _, h, w = x.shape
        return torch.cat([torch.full((n, 1, h, w), h / 8.0), torch.zeros((n, 1, h, w))], dim=1)


def test_full_resolution_is_the_plain_forward():
    model = nn.Conv2d(3, 5, 3, padding=1)
    x = torch.randn(1, 3, 16, 32)
    torch.testing.assert_close(predict_scores(model, x, "full"), model(x))


def test_half_resolution_runs_at_half_size_and_returns_input_size():
    conv = nn.Conv2d(3, 5, 1)
    model = Recorder(conv)
    x = torch.randn(1, 3, 64, 128)
    scores = predict_scores(model, x, "half")
    assert model.shapes == [(1, 3, 32, 64)]
    assert scores.shape == (1, 5, 64, 128)
    # the definition: 2x2 area mean, then bilinear upsampling of the logits
    expected = F.interpolate(conv(F.avg_pool2d(x, 2)), size=(64, 128), mode="bilinear", align_corners=False)
    torch.testing.assert_close(scores, expected)


def test_area_downsampling_is_a_2x2_mean():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    torch.testing.assert_close(resize_images(x, (2, 2)), torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))


def test_flip_averages_probabilities_of_both_views():
    x = torch.zeros(1, 3, 4, 8)
    logits = ColumnRamp()(x)
    expected = (logits.softmax(1) + logits.flip(-1).softmax(1)) / 2  # the flipped view, flipped back
    scores = predict_scores(ColumnRamp(), x, "full", TTA(flip=True))
    torch.testing.assert_close(scores, expected)
    torch.testing.assert_close(scores.sum(1), torch.ones(1, 4, 8))  # probabilities, not logits


def test_scales_average_probabilities_over_scales():
    x = torch.zeros(1, 3, 32, 32)
    model = Recorder(SizeLogits())
    scores = predict_scores(model, x, "full", TTA(scales=(0.5, 1.0, 1.5)))
    assert [s[-2:] for s in model.shapes] == [(16, 16), (32, 32), (48, 48)]
    p = [torch.tensor([h / 8.0, 0.0]).softmax(0)[0] for h in (16, 32, 48)]
    torch.testing.assert_close(scores[0, 0], torch.full((32, 32), float(sum(p) / 3)))


def test_half_resolution_scales_are_relative_to_half():
    model = Recorder(SizeLogits())
    predict_scores(model, torch.zeros(1, 3, 64, 64), "half", TTA.parse("flip,0.5,1.0"))
    assert [s[-2:] for s in model.shapes] == [(16, 16), (16, 16), (32, 32), (32, 32)]


def test_tta_parse():
    assert TTA.parse("flip,0.75,1.0,1.25") == TTA(scales=(0.75, 1.0, 1.25), flip=True)
    assert TTA.parse("") == TTA() and TTA.parse(None).is_identity
    assert TTA.parse("flip") == TTA(scales=(1.0,), flip=True)
    with pytest.raises(ValueError, match="neither"):
        TTA.parse("flop")
    with pytest.raises(ValueError, match="positive"):
        TTA.parse("0")


def test_to_labels_is_argmax_as_uint8():
    scores = torch.randn(2, 19, 8, 16)
    labels = to_labels(scores)
    assert labels.dtype == torch.uint8 and labels.shape == (2, 8, 16)
    assert torch.equal(labels.long(), scores.argmax(1))


# ---- the pixel grid: predictions aligned with the photo ------------------------------------------------------

@pytest.mark.parametrize("size, resolution", [((1024, 2048), "full"), ((512, 1024), "full"),
                                              ((1024, 2048), "half")])
@pytest.mark.parametrize("axis", [0, 1])
def test_evaluation_predictions_are_aligned_with_the_photo(size, resolution, axis, grid_probe):
    # Stretching the 1/8 logits over an even-sized image (align_corners to 1024x2048) moves the far edge by 7 px.
    image = grid_probe.stripes(size, axis)
    scores = predict_scores(grid_probe.model(), image_to_tensor(image, "tf")[None], resolution)
    assert np.array_equal(to_labels(scores)[0].numpy(), grid_probe.expected(image, axis, resolution))


def test_grid_size_and_padding():
    assert grid_size((1024, 2048), 16) == (1025, 2049) and grid_size((512, 1024), 32) == (513, 1025)
    assert grid_size((769, 769), 16) == (769, 769) and grid_size((375, 500), 16) == (385, 513)
    assert grid_size((375, 500), 8) == (377, 505)
    x = torch.randn(1, 3, 30, 40)
    padded = pad_to_grid(x, 16)
    assert padded.shape[-2:] == (33, 49) and torch.equal(padded[..., :30, :40], x)
    assert padded[..., 30:, :].abs().sum() == 0 and padded[..., 40:].abs().sum() == 0


# ---- sliding window ---------------------------------------------------------------------------------------------

class Pointwise(nn.Module):
    """Fully convolutional with a 1x1 receptive field: tiling cannot change it."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 5, 1)

    def forward(self, x):
        return self.conv2(torch.relu(self.conv1(x)))


@pytest.mark.parametrize("resolution, tta", [("full", TTA()), ("full", TTA(flip=True)), ("half", TTA())])
def test_sliding_window_equals_whole_image_for_pointwise_model(resolution, tta):
    model, x = Pointwise().eval(), torch.randn(1, 3, 48, 80)
    whole = predict_scores(model, x, resolution, tta)
    tiled = sliding_window_scores(model, x, SlidingWindow((16, 24), overlap=0.5), resolution, tta)
    torch.testing.assert_close(tiled, whole, rtol=1e-5, atol=1e-5)


def test_sliding_window_at_half_with_tta_is_close_not_equal():
    # Tiles average probabilities at half size, then upsample them; whole-image TTA upsamples logits before the
    # softmax. Both are the same model, so the maps differ only where the bilinear interpolation mixes classes.
    model, x = Pointwise().eval(), torch.randn(1, 3, 48, 80)
    whole = predict_scores(model, x, "half", TTA(flip=True))
    tiled = sliding_window_scores(model, x, SlidingWindow((16, 24), overlap=0.5), "half", TTA(flip=True))
    torch.testing.assert_close(tiled, whole, rtol=0, atol=0.05)


def test_sliding_window_larger_than_image_is_whole_image_for_any_model():
    model, x = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 5, 3, padding=1)).eval(), \
        torch.randn(1, 3, 20, 36)
    whole = predict_scores(model, x, "full")
    torch.testing.assert_close(sliding_window_scores(model, x, SlidingWindow((64, 64))), whole)


def test_tiles_cover_the_image_and_stay_inside():
    for size, window in (((48, 80), SlidingWindow((16, 24), 0.5)), ((50, 81), SlidingWindow((17, 30), 0.0)),
                         ((10, 10), SlidingWindow((32, 32)))):
        covered = torch.zeros(size, dtype=torch.int32)
        for top, left, bottom, right in _tiles(size, window):
            assert 0 <= top < bottom <= size[0] and 0 <= left < right <= size[1]
            assert (bottom - top, right - left) == (min(window.size[0], size[0]), min(window.size[1], size[1]))
            covered[top:bottom, left:right] += 1
        assert covered.min() >= 1
    with pytest.raises(UserError, match="H,W"):
        SlidingWindow.parse("512")
    assert SlidingWindow.parse("512x1024").size == (512, 1024)


# ---- the grid rule, written once ----------------------------------------------------------------------------------

@pytest.mark.parametrize("resolution", ["full", "half"])
def test_changing_the_grid_rule_in_one_place_moves_every_path(resolution, grid_probe, monkeypatch):
    # The naive rule (no padding: logits stretched over the image) instead of k * stride + 1. Set in
    # segkit.geometry.grid_size alone, it must reach the reference, every backend (sparse and dense label maps,
    # OpenVINO's photo graph) and the exported graph: all agree with each other and differ from the real rule.
    model, image = grid_probe.model(), grid_probe.stripes((136, 264), axis=1)
    images = image_to_tensor(image, "tf")[None]

    def every_path() -> dict:
        plan = plan_for(image.shape[:2], resolution, model.output_stride)
        paths = {"reference": to_labels(predict_scores(model, images, resolution))[0].numpy()}
        for name in [name for name in BACKENDS if name not in NEEDS_QUANTIZED and (name != "openvino-bf16" or
                                                                                   cpu_has_bf16())]:
            predictor = Predictor.from_model(model, "tf", name, "cpu")
            paths[name] = predictor.predict(image, resolution)
            paths[f"{name} label_map"] = label_map(*predictor.logits(image, resolution)).numpy()
        graph = ort_session(grid_graph(model, plan, labels=True))
        paths["exported graph"] = graph.run(None, {"images": images.numpy()})[0][0]
        return paths

    real = every_path()
    monkeypatch.setattr(geometry, "grid_size", lambda size, stride: tuple(size))
    naive = every_path()
    assert not np.array_equal(naive["reference"], real["reference"])  # the rule matters here
    for name, labels in naive.items():
        assert np.array_equal(labels, naive["reference"]), name
    for name, labels in real.items():
        assert np.array_equal(labels, grid_probe.expected(image, 1, resolution)), name


def test_a_plan_writes_down_the_geometry_of_a_prediction():
    plan = plan_for((1024, 2048), "half", 16)
    assert (plan.image_size, plan.network_size, plan.padded_size) == ((1024, 2048), (512, 1024), (513, 1025))
    assert plan.steps == (("corners", (513, 1025)), ("crop", (512, 1024)), ("centers", (1024, 2048)))
    assert plan_for((769, 769), "full", 16).steps == (("corners", (769, 769)),)  # on the grid already
    images = torch.randn(1, 3, 1024, 2048)
    assert plan.network_input(images).shape[-2:] == (513, 1025)
    assert plan.upsample(torch.randn(1, 19, 65, 129)).shape == (1, 19, 1024, 2048)
