"""segkit.models.segmentor: logits before the final upsampling on the input as given; forward adds that upsample."""
import torch
import torch.nn.functional as F

import segkit.predict
from segkit.config import ModelConfig
from segkit.predict import Predictor
from segkit.inference import pad_to_grid
from segkit.models import build_model


def test_logits_run_on_the_input_as_given():
    model = build_model(ModelConfig()).eval()
    x = torch.randn(1, 3, 129, 257)
    with torch.inference_mode():
        assert model.logits(x).shape[-2:] == (17, 33)  # 1/8: no padding inside the model
        assert model.logits(pad_to_grid(x[..., :128, :256], 16)).shape[-2:] == (17, 33)
        torch.testing.assert_close(model(x), F.interpolate(model.logits(x), size=(129, 257), mode="bilinear",
                                                           align_corners=True))


def test_output_stride_and_head_resolution():
    for config, stride, cell in ((ModelConfig(output_stride=32), 32, 8), (ModelConfig(head="raspp"), 16, 16)):
        model = build_model(config).eval()
        assert model.output_stride == stride
        with torch.inference_mode():
            assert model.logits(torch.randn(1, 3, 65, 129)).shape[-2:] == (64 // cell + 1, 128 // cell + 1)


def test_the_documented_predictor_name():
    assert segkit.predict.Predictor is Predictor  # segkit.predict.Predictor, as the README and design name it
