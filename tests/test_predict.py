"""segkit.predict: photos in, label maps out, equal to the reference on every backend, aligned with the
photo, at odd sizes; one-sentence errors."""
import numpy as np
import pytest

from segkit.deploy.labelmap import label_map
from segkit.predict import Predictor, overlay
from segkit.errors import UserError


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
@pytest.mark.parametrize("resolution, size", [("full", (70, 150)), ("half", (96, 160))])
def test_predictor_matches_eager_inference(small_checkpoint, photos, backend, resolution, size):
    path, model, config = small_checkpoint
    predictor = Predictor.from_checkpoint(path, backend=backend)
    assert predictor.backend_name == backend
    image = photos.random(*size)
    labels = predictor.predict(image, resolution=resolution)
    assert labels.shape == size and labels.dtype == np.uint8 and labels.max() < 19
    expected = photos.eager(model, image, config.data.normalize, resolution)
    assert (labels == expected).mean() >= 0.999
    assert predictor.last_timing.total_ms > 0


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_every_backend_takes_odd_photo_sizes_at_both_resolutions(small_checkpoint, photos, backend):
    # OpenVINO's photo graph resizes inside; a non-integer area factor (odd sizes at half) once broke its export
    path, model, config = small_checkpoint
    predictor = Predictor.from_checkpoint(path, backend=backend)
    for size in ((375, 500), (99, 99), (1023, 2047)):
        image = photos.random(*size)
        for resolution in ("full", "half"):
            labels = predictor.predict(image, resolution)
            assert labels.shape == size and labels.dtype == np.uint8, (size, resolution)
            if size == (99, 99):
                expected = photos.eager(model, image, config.data.normalize, resolution)
                assert (labels == expected).mean() >= 0.999, (size, resolution)
    with pytest.raises(UserError, match="31x40 pixels; segkit needs at least 32x32"):
        predictor.predict(photos.random(40, 31))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_logits_give_predicts_labels(small_checkpoint, photos, backend):
    # what video smoothing averages: label_map of Predictor.logits is predict, at both resolutions and odd sizes
    predictor = Predictor.from_checkpoint(small_checkpoint[0], backend=backend)
    for size in ((96, 160), (99, 101)):
        image = photos.random(*size, seed=1)
        for resolution in ("full", "half"):
            logits, plan = predictor.logits(image, resolution)
            assert logits.shape[:2] == (1, 19) and logits.shape[-1] < size[1] // 4, (size, resolution)
            assert np.array_equal(label_map(logits, plan).numpy(), predictor.predict(image, resolution))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
@pytest.mark.parametrize("size, resolution", [((1024, 2048), "full"), ((512, 1024), "full"),
                                              ((1024, 2048), "half")])
def test_every_backend_keeps_labels_aligned_with_the_photo(backend, size, resolution, grid_probe):
    predictor = Predictor.from_model(grid_probe.model(), normalize="tf", backend=backend)
    for axis in (0, 1):
        image = grid_probe.stripes(size, axis, seed=axis)
        labels = predictor.predict(image, resolution)
        assert np.array_equal(labels, grid_probe.expected(image, axis, resolution)), (backend, axis)


def test_overlay_and_colours(small_checkpoint, photos):
    image = photos.random(40, 60)
    labels = np.zeros((40, 60), np.uint8)  # road: (128, 64, 128)
    blended = overlay(image, labels, alpha=1.0)
    assert blended.shape == image.shape and (blended == np.array([128, 64, 128], np.uint8)).all()
    assert (overlay(image, labels, alpha=0.0) == image).all()


def test_user_errors(small_checkpoint, photos):
    predictor = Predictor.from_checkpoint(small_checkpoint[0], backend="torch")
    with pytest.raises(UserError, match="RGB uint8"):
        predictor.predict(np.zeros((10, 10), np.float32))
    with pytest.raises(UserError, match="resolution"):
        predictor.predict(photos.random(10, 10), resolution="quarter")
    with pytest.raises(UserError, match="backend"):
        Predictor.from_checkpoint(small_checkpoint[0], backend="tensorrt")
