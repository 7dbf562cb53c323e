"""segkit.inference: half resolution, TTA (flip, scales) averaging probabilities, label maps."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from segkit.inference import TTA, predict_scores, resize_images, to_labels


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

class GridProbe(nn.Module):
    """A stand-in network whose logits are its input's first channel sampled every 8 pixels -- cell i on pixel
    8i, where the authors' align_corners geometry puts it: class 1 = the sample, class 0 = 0.001. Its labels
    show exactly where a prediction path places each cell on the photo."""

    output_stride = 8
    num_classes = 2

    def __init__(self):
        super().__init__()
        self.classify = nn.Conv2d(3, 2, 1)
        with torch.no_grad():
            self.classify.weight.zero_()
            self.classify.weight[1, 0] = 1.0
            self.classify.bias.copy_(torch.tensor([0.001, 0.0]))

    def logits(self, images):
        return self.classify(images[:, :, ::8, ::8])

    def forward(self, images):
        return F.interpolate(self.logits(images), size=images.shape[-2:], mode="bilinear", align_corners=True)


def stripes(size, axis, seed=0):
    """An RGB photo of black and white stripes across ``axis`` (0: rows, 1: columns) at random positions, black
    within 32 pixels of every edge (so the pad, 0 after normalisation, never wins)."""
    rng = np.random.default_rng(seed)
    length = size[axis]
    edges = np.sort(rng.choice(np.arange(32, length - 32), size=24, replace=False))
    profile = np.zeros(length, np.uint8)
    for start, stop in zip(edges[::2], edges[1::2]):
        profile[start:stop] = 255
    image = np.repeat(profile[:, None] if axis == 0 else profile[None, :], size[1 - axis], axis=1 - axis)
    return np.repeat(image[:, :, None], 3, axis=2)


def expected_stripe_labels(image, axis, resolution):
    """Labels from first principles: cell i sits on photo pixel 8i (full resolution) or, through the 2x2 area
    mean, on 16i + 0.5 with the mean of pixels 16i and 16i + 1 (half); between cells logits are linear."""
    profile = image[:, 0, 0] if axis == 0 else image[0, :, 0]
    values = profile.astype(np.float64) / 127.5 - 1
    if resolution == "full":
        centres = np.arange(0, len(values), 8)
        samples = values[centres]
    else:
        pairs = np.arange(0, len(values) - 1, 16)
        centres, samples = pairs + 0.5, (values[pairs] + values[pairs + 1]) / 2
    labels = (np.interp(np.arange(len(values)), centres, samples) > 0.001).astype(np.uint8)
    return np.repeat(labels[:, None] if axis == 0 else labels[None, :], image.shape[1 - axis], axis=1 - axis)


@pytest.mark.parametrize("size, resolution", [((1024, 2048), "full"), ((512, 1024), "full"),
                                              ((1024, 2048), "half")])
@pytest.mark.parametrize("axis", [0, 1])
def test_evaluation_predictions_are_aligned_with_the_photo(size, resolution, axis):
    # Stretching the 1/8 logits over an even-sized image (align_corners to 1024x2048) moves the far edge by 7 px.
    from segkit.data.transforms import image_to_tensor

    image = stripes(size, axis)
    scores = predict_scores(GridProbe(), image_to_tensor(image, "tf")[None], resolution)
    assert np.array_equal(to_labels(scores)[0].numpy(), expected_stripe_labels(image, axis, resolution))


def test_grid_size_and_padding():
    from segkit.inference import grid_size, pad_to_grid

    assert grid_size((1024, 2048), 16) == (1025, 2049) and grid_size((512, 1024), 32) == (513, 1025)
    assert grid_size((769, 769), 16) == (769, 769) and grid_size((375, 500), 16) == (385, 513)
    assert grid_size((375, 500), 8) == (377, 505)
    x = torch.randn(1, 3, 30, 40)
    padded = pad_to_grid(x, 16)
    assert padded.shape[-2:] == (33, 49) and torch.equal(padded[..., :30, :40], x)
    assert padded[..., 30:, :].abs().sum() == 0 and padded[..., 40:].abs().sum() == 0
