"""segkit.models.tf_weights against the authors' TF graphs (tests/data/tf_reference, made by their deeplab code
with random weights): logits, intermediate probes, the full-size upsampling and every prediction path's labels."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segkit.config import ModelConfig, load_config
from segkit.errors import UserError
from segkit.models import build_model
from segkit.models.pretrained import load_pretrained
from segkit.models.tf_checkpoint import read_tf_checkpoint
from segkit.models.tf_weights import convert_tf_checkpoint, detect_architecture, tf_names
from segkit.predict import Predictor

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# Each reference graph and the segkit config that builds it (the OS32 ones are the released zoo models' flags).
GRAPHS = {
    "lraspp_large_os16": ("lraspp_large.py", []),
    "lraspp_large_os32": ("tf_zoo/mnv3_large_cityscapes.py", []),
    "lraspp_small_os16": ("lraspp_small.py", []),
    "lraspp_small_os32": ("tf_zoo/mnv3_small_cityscapes.py", []),
    "raspp_large_os16_f256": ("raspp_large.py", []),
}


def converted(reference, name):
    config_file, overrides = GRAPHS[name]
    config = load_config(CONFIGS / config_file, overrides).model
    model = build_model(config)
    conversion = convert_tf_checkpoint(read_tf_checkpoint(reference / name / "model.ckpt").tensors, model, config,
                                       name)
    model.load_state_dict(conversion.state_dict)
    return model.eval()


@pytest.fixture
def photo(reference_image):
    return reference_image


@pytest.fixture
def network_input(photo):
    """deeplab's eval input: the photo padded bottom/right to 1025x2049 with 127.5, then x * 2/255 - 1."""
    padded = np.pad(photo.astype(np.float32), ((0, 1), (0, 1), (0, 0)), constant_values=127.5)
    return torch.from_numpy(padded * np.float32(2 / 255) - np.float32(1)).permute(2, 0, 1)[None].contiguous()


def nhwc(array):
    return torch.from_numpy(array).permute(0, 3, 1, 2)


@pytest.mark.tf_reference
@pytest.mark.parametrize("name", GRAPHS)
def test_logits_equal_the_authors_graph(name, network_input, reference):
    model = converted(reference, name)
    with torch.inference_mode():
        logits = model.logits(network_input)
    expected = nhwc(np.load(reference / name / "logits_os8.npz")["logits"])
    assert logits.shape == expected.shape  # 1/8 (1/16 for R-ASPP without skip)
    tolerance = 1e-4 * max(1.0, expected.abs().max().item())
    assert (logits - expected).abs().max().item() <= tolerance
    # deeplab's last step: align_corners upsampling to the padded crop (windows at corners, centre, pad row/col)
    windows = np.load(reference / name / "upsampled_windows.npz")
    upsampled = F.interpolate(logits, size=(1025, 2049), mode="bilinear", align_corners=True)[0].permute(1, 2, 0)
    for key in windows.files:
        row, col = (int(part[1:]) for part in key.split("_"))
        window = torch.from_numpy(windows[key])
        got = upsampled[row: row + window.shape[0], col: col + window.shape[1]]
        assert (got - window).abs().max().item() <= tolerance, key


@pytest.mark.tf_reference
@pytest.mark.parametrize("name", ["lraspp_large_os16", "lraspp_small_os16"])
def test_every_block_equals_the_authors_probes(name, network_input, reference):
    # Where a port departs, this names the first layer: each block's output against TF's corner windows.
    model = converted(reference, name)
    probes = np.load(reference / name / "probes.npz")
    outputs = {}
    for index, layer in enumerate(model.backbone.features):
        layer.register_forward_hook(lambda module, inputs, output, index=index: outputs.setdefault(index, output))
    with torch.inference_mode():
        model.backbone(network_input)
    last = len(model.backbone.features) - 1
    for index, output in outputs.items():
        scope = ("Conv/hard_swish/mul_1" if index == 0 else "Conv_1/hard_swish/mul_1" if index == last else
                 f"expanded_conv{'' if index == 1 else f'_{index - 1}'}/output")
        for corner, window in (("tl", output[0, :, :3, :3]), ("br", output[0, :, -3:, -3:])):
            expected = torch.from_numpy(probes[f"MobilenetV3/{scope}|{corner}"]).permute(2, 0, 1)
            assert (window - expected).abs().max().item() <= 1e-4 * max(1.0, expected.abs().max().item()), scope


@pytest.mark.tf_reference
@pytest.mark.parametrize("name", GRAPHS)
def test_predictor_labels_equal_the_authors_at_1024x2048(name, photo, reference):
    # vis.py: labels of the padded crop, cropped back to the photo
    expected = np.load(reference / name / "labels.npz")["labels"][:1024, :2048]
    model = converted(reference, name)
    for backend, share in (("torch", 0.9999), ("onnxruntime", 0.999)):
        labels = Predictor.from_model(model, normalize="tf", backend=backend).predict(photo)
        assert labels.shape == (1024, 2048)
        assert (labels == expected).mean() >= share, backend


def test_mapping_covers_every_tensor_of_every_model():
    for config in (ModelConfig(), ModelConfig(backbone="mobilenet_v3_small", head="raspp", skip=True),
                   ModelConfig(backbone="mobilenet_v3_large_minimal", rf2=False), ModelConfig(backbone="mobilenet_v2")):
        model = build_model(config)
        names = tf_names(model)
        keys = [key for key in model.state_dict() if not key.endswith("num_batches_tracked")]
        assert sorted(names) == sorted(keys)
        assert len({variable.name for variable in names.values()}) == len(names)  # one TF variable each


@pytest.mark.tf_reference
@pytest.mark.parametrize("name, expected", [
    ("lraspp_large_os32", {"backbone": "mobilenet_v3_large", "rf2": True, "head": "lraspp", "head_channels": 128,
                           "skip": True, "num_classes": 19}),
    ("lraspp_small_os16", {"backbone": "mobilenet_v3_small", "rf2": True, "head": "lraspp", "head_channels": 128,
                           "skip": True, "num_classes": 19}),
    ("raspp_large_os16_f256", {"backbone": "mobilenet_v3_large", "rf2": True, "head": "raspp", "head_channels": 256,
                               "skip": False, "num_classes": 19}),
])
def test_architecture_is_read_from_the_variables(name, expected, reference):
    assert detect_architecture(read_tf_checkpoint(reference / name).tensors) == expected


# ---- the refusals, on checkpoints written here -------------------------------------------------------------

def test_conversion_round_trip_and_refusals(tmp_path, tf_bundle):
    config = ModelConfig(backbone="mobilenet_v3_small")
    source = build_model(config).eval()
    tensors = tf_bundle.tensors(source)
    training = {"global_step": np.array(1234, np.int64),
                "aspp0/weights/Momentum": tensors["aspp0/weights"],
                "aspp0/weights/ExponentialMovingAverage": tensors["aspp0/weights"]}
    prefix = tf_bundle.arrays(tmp_path / "ok" / "model.ckpt", {**tensors, **training})
    conversion = convert_tf_checkpoint(read_tf_checkpoint(prefix).tensors, build_model(config), config, "ok")
    assert conversion.global_step == 1234 and sorted(conversion.skipped) == sorted(training)
    for key, value in source.state_dict().items():
        assert torch.equal(conversion.state_dict[key], value), key

    target = build_model(config)
    dropped = dict(tensors)
    for name in ("image_pooling/biases", "MobilenetV3/expanded_conv_3/project/weights"):
        dropped.pop(name)
    missing = read_tf_checkpoint(tf_bundle.arrays(tmp_path / "missing" / "model.ckpt", dropped)).tensors
    with pytest.raises(UserError, match="lacks 2 variable.*expanded_conv_3/project/weights.*image_pooling/biases"):
        convert_tf_checkpoint(missing, target, config, "missing")
    unknown = {"aspp1_depthwise/depthwise_weights": np.ones((3, 3, 4, 1))}
    extra = read_tf_checkpoint(tf_bundle.arrays(tmp_path / "extra" / "model.ckpt", {**tensors, **unknown}))
    with pytest.raises(UserError, match="no place for .*aspp1_depthwise/depthwise_weights"):
        convert_tf_checkpoint(extra.tensors, target, config, "extra")
    with pytest.raises(UserError, match="holds mobilenet_v3_small \\+ RF2.*but the config builds mobilenet_v3_large.*"
                                        "set model.backbone=mobilenet_v3_small"):
        convert_tf_checkpoint(read_tf_checkpoint(prefix).tensors, build_model(ModelConfig()), ModelConfig(), "ok")
    wide = ModelConfig(backbone="mobilenet_v3_small", head_channels=256)
    with pytest.raises(UserError, match="use small_f128.py"):
        convert_tf_checkpoint(read_tf_checkpoint(prefix).tensors, build_model(wide), wide, "ok",
                              {"large.py": ModelConfig(), "small_f128.py": config})


def test_slim_imagenet_checkpoint_initialises_what_fits(tmp_path, tf_bundle):
    # A slim ImageNet MobileNetV3-Large (full-width tail, the 1280 conv and the classifier, an EMA shadow and a
    # step counter): every backbone layer that fits loads, RF2's halved tail keeps its initialisation.
    imagenet = build_model(ModelConfig(rf2=False)).backbone
    tensors = tf_bundle.tensors(imagenet)
    tensors.update({"MobilenetV3/Conv_2/weights": np.ones((1, 1, 960, 1280), np.float32),
                    "MobilenetV3/Logits/Conv2d_1c_1x1/weights": np.ones((1, 1, 1280, 1001), np.float32),
                    "MobilenetV3/Conv/weights/ExponentialMovingAverage": tensors["MobilenetV3/Conv/weights"],
                    "global_step": np.array(540000, np.int64)})
    prefix = tf_bundle.arrays(tmp_path / "v3-large_224_1.0_float" / "ema" / "model.ckpt-540000", tensors)
    model = build_model(ModelConfig())  # RF2
    before = {key: value.clone() for key, value in model.state_dict().items()}
    report = load_pretrained(model, "mobilenet_v3_large", str(prefix.parent.parent))  # the unpacked folder
    state, source = model.state_dict(), imagenet.state_dict()
    assert all(key.startswith("backbone.features.") for key in report.loaded) and len(report.loaded) > 150
    for key in report.loaded:
        assert torch.equal(state[key], source[key[len("backbone."):]]), key
    assert report.shape_mismatch and all(key.split(".")[2] in ("13", "14", "15", "16") for key in report.shape_mismatch)
    for key in report.shape_mismatch + report.missing:
        assert torch.equal(state[key], before[key]), key
    assert all(key.startswith("head.") for key in report.missing)
    assert sorted(report.unused) == ["MobilenetV3/Conv_2/weights", "MobilenetV3/Logits/Conv2d_1c_1x1/weights"]
    assert len(report.skipped) == 2 and "kept at initialisation (shape differs)" in report.summary()


def test_pretrained_segkit_checkpoint_for_fine_tuning(tmp_path):
    from segkit.config import Config
    from segkit.checkpoint import save_checkpoint

    source = build_model(ModelConfig(backbone="mobilenet_v3_small"))
    path = tmp_path / "converted.pt"
    save_checkpoint(path, {"model": source.state_dict(), "config": Config().to_dict(), "iteration": 0})
    model = build_model(ModelConfig(backbone="mobilenet_v3_small", num_classes=7, pretrained=str(path)))
    state = model.state_dict()
    for key, value in source.state_dict().items():
        if "classifier" not in key:
            assert torch.equal(state[key], value), key
    assert state["head.low_classifier.weight"].shape[0] == 7
    with pytest.raises(UserError, match="do not exist"):
        build_model(ModelConfig(pretrained=str(tmp_path / "nothing")))


def test_same_padding_matches_tf_on_even_sizes():
    # TF SAME on a stride-2 layer pads (0, 1) on even sizes and (1, 1) on odd ones (docs/paper.md#tf-padding)
    from segkit.models.blocks import same_padding

    assert same_padding(1024, 3, 2, 1) == (0, 1) and same_padding(1025, 3, 2, 1) == (1, 1)
    assert same_padding(512, 5, 2, 1) == (1, 2) and same_padding(513, 5, 2, 1) == (2, 2)
    assert same_padding(64, 5, 1, 2) == (4, 4)
    stem = build_model(ModelConfig()).backbone.features[0][0]
    x = torch.randn(1, 3, 64, 96)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), stem.weight, None, 2)
    torch.testing.assert_close(stem(x), expected)
    odd = torch.randn(1, 3, 65, 97)
    torch.testing.assert_close(stem(odd), F.conv2d(odd, stem.weight, None, 2, 1))
