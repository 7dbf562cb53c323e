import numpy as np
import pytest
import torch

from segkit.config import Config, ModelConfig
from segkit.data.transforms import image_to_tensor
from segkit.engine.checkpoint import save_checkpoint
from segkit.errors import UserError
from segkit.inference import predict_scores, to_labels
from segkit.models import build_model
from segkit.predict import Predictor, count_batchnorms, optimize_for_inference, overlay
from tests.test_export import realistic


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    model = realistic(build_model(config.model))
    path = tmp_path_factory.mktemp("run") / "best.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": config.to_dict(), "iteration": 0})
    return path, model, config


def photo(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def eager_labels(model, image, normalize, resolution):
    return to_labels(predict_scores(model.eval(), image_to_tensor(image, normalize)[None], resolution))[0].numpy()


@pytest.mark.parametrize("backbone", ["mobilenet_v3_small", "mobilenet_v2"])
def test_optimized_model_equals_eager(backbone):
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


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
@pytest.mark.parametrize("resolution, size", [("full", (70, 150)), ("half", (96, 160))])
def test_predictor_matches_eager_inference(checkpoint, backend, resolution, size):
    path, model, config = checkpoint
    predictor = Predictor.from_checkpoint(path, backend=backend)
    assert predictor.backend_name == backend
    image = photo(*size)
    labels = predictor.predict(image, resolution=resolution)
    assert labels.shape == size and labels.dtype == np.uint8 and labels.max() < 19
    expected = eager_labels(model, image, config.data.normalize, resolution)
    assert (labels == expected).mean() >= 0.999
    assert predictor.last_timing.total_ms > 0


def test_auto_backend_is_onnxruntime_on_cpu(checkpoint):
    predictor = Predictor.from_checkpoint(checkpoint[0])
    assert predictor.backend_name == ("torch" if torch.cuda.is_available() else "onnxruntime")


def test_overlay_and_colours(checkpoint):
    image = photo(40, 60)
    labels = np.zeros((40, 60), np.uint8)  # road: (128, 64, 128)
    blended = overlay(image, labels, alpha=1.0)
    assert blended.shape == image.shape and (blended == np.array([128, 64, 128], np.uint8)).all()
    assert (overlay(image, labels, alpha=0.0) == image).all()


def test_user_errors(checkpoint):
    predictor = Predictor.from_checkpoint(checkpoint[0], backend="torch")
    with pytest.raises(UserError, match="RGB uint8"):
        predictor.predict(np.zeros((10, 10), np.float32))
    with pytest.raises(UserError, match="resolution"):
        predictor.predict(photo(10, 10), resolution="quarter")
    with pytest.raises(UserError, match="backend"):
        Predictor.from_checkpoint(checkpoint[0], backend="tensorrt")
