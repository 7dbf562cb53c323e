import numpy as np
import pytest
import torch

from segkit.config import Config, ModelConfig
from segkit.data.transforms import image_to_tensor
from segkit.engine.checkpoint import save_checkpoint
from segkit.errors import UserError
from segkit.inference import predict_scores, to_labels
from segkit.models import build_model
from segkit.predict import (
    HeadLogits,
    Predictor,
    count_batchnorms,
    cpu_has_bf16,
    make_backend,
    optimize_for_inference,
    overlay,
)
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


def clear_pixels(model, image, normalize, resolution, margin=0.01):
    """Pixels whose two best classes are more than ``margin`` of the logit range apart: where bfloat16's ~1 %
    error cannot flip the label."""
    with torch.inference_mode():
        scores = predict_scores(model.eval(), image_to_tensor(image, normalize)[None], resolution)[0]
    top2 = scores.topk(2, dim=0).values
    return ((top2[0] - top2[1]) > margin * scores.abs().max()).numpy()


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


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
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


def test_auto_backend_works_here_and_falls_back_when_runtimes_are_missing(checkpoint, monkeypatch):
    import sys

    import segkit.predict

    path, model, config = checkpoint
    image = photo(96, 160, seed=4)
    expected = eager_labels(model, image, config.data.normalize, "full")
    predictor = Predictor.from_checkpoint(path)  # auto: whatever this machine's fastest path is
    clear = clear_pixels(model, image, config.data.normalize, "full")  # bfloat16 may flip near-ties
    assert (predictor.predict(image) == expected)[clear].mean() >= 0.999
    # without native bfloat16, then without OpenVINO and ONNX Runtime, auto still gives a working predictor
    monkeypatch.setattr(segkit.predict, "cpu_has_bf16", lambda: False)
    assert (Predictor.from_checkpoint(path).predict(image) == expected).mean() >= 0.999
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as when not installed
    fallback = Predictor.from_checkpoint(path)
    assert fallback.backend_name == "torch" and (fallback.predict(image) == expected).mean() >= 0.999


def test_openvino_float32_network_equals_pytorch(checkpoint):
    _, model, _ = checkpoint
    images = torch.randn(1, 3, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = HeadLogits(model.eval())(images)
    got = make_backend(model, "openvino").network(images)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("resolution", ["full", "half"])
def test_openvino_default_path_labels_flip_only_at_near_ties(checkpoint, resolution):
    # The default CPU backend where bfloat16 is native; elsewhere the same photo-graph path in float32.
    # bfloat16 keeps 8 bits of mantissa: logits move by about 1 %, so labels may flip where the two best classes
    # are that close (a random-weight model has many such pixels) and nowhere else.
    backend = "openvino-bf16" if cpu_has_bf16() else "openvino"
    path, model, config = checkpoint
    image = photo(96, 160, seed=2)
    expected = eager_labels(model, image, config.data.normalize, resolution)
    clear = clear_pixels(model, image, config.data.normalize, resolution)
    predictor = Predictor.from_checkpoint(path, backend=backend)
    labels = predictor.predict(image, resolution)
    assert labels.shape == expected.shape and clear.mean() > 0.2
    assert (labels == expected)[clear].mean() >= 0.999
    assert predictor.last_timing.preprocess_ms == 0  # the photo went into the graph as uint8


def test_openvino_bf16_needs_native_bf16(checkpoint, monkeypatch):
    import segkit.predict

    monkeypatch.setattr(segkit.predict, "cpu_has_bf16", lambda: False)
    with pytest.raises(UserError, match="no native bfloat16"):
        make_backend(checkpoint[1], "openvino-bf16")


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


def scene_logits(low_size, num_classes=19, seed=0):
    """Logits shaped like a trained model's: smooth class regions (a few rectangles) plus noise."""
    generator = torch.Generator().manual_seed(seed)
    classes = torch.zeros(low_size, dtype=torch.long)
    for index in range(12):
        top, left = torch.randint(0, low_size[0], (1,), generator=generator), torch.randint(0, low_size[1], (1,),
                                                                                             generator=generator)
        classes[top: top + low_size[0] // 3, left: left + low_size[1] // 4] = index + 1
    logits = 4 * torch.nn.functional.one_hot(classes, num_classes).permute(2, 0, 1)[None].float()
    return logits + torch.randn(logits.shape, generator=generator)


@pytest.mark.parametrize("network, image", [((96, 160), (96, 160)), ((48, 80), (96, 160)), ((50, 75), (99, 149))])
@pytest.mark.parametrize("kind", ["scene", "noise"])
def test_label_map_equals_dense_upsample_and_max(network, image, kind, monkeypatch):
    from segkit import labelmap
    from segkit.inference import grid_size
    from segkit.labelmap import dense_label_map, label_map, resize_steps

    monkeypatch.setattr(labelmap, "MAX_MIXED", 1.0)  # never fall back to the dense path: test the sparse one

    padded = grid_size(network, 16)
    low = ((padded[0] - 1) // 8 + 1, (padded[1] - 1) // 8 + 1)
    logits = scene_logits(low) if kind == "scene" else torch.randn(1, 19, *low)
    steps = resize_steps(network, image, padded)
    expected = dense_label_map(logits, steps)
    got = label_map(logits, steps)
    assert got.shape == image and got.dtype == torch.uint8
    assert (got == expected).double().mean() >= 0.9999


def street_logits(low_size, image_size, seed=0):
    """Logits shaped like a trained model's on a street photo: the synthetic city's ground truth at the logits'
    resolution, one-hot times 4, plus unit noise."""
    from segkit.data.labels import to_train_ids
    from segkit.data.synthetic import generate_scene

    _, label_ids = generate_scene(*image_size, np.random.default_rng(seed))
    train_ids = torch.from_numpy(to_train_ids(label_ids)).long()
    train_ids = torch.nn.functional.interpolate(train_ids[None, None].float(), size=low_size, mode="nearest")[0, 0]
    train_ids = train_ids.long().where(train_ids < 19, torch.zeros((), dtype=torch.long))
    logits = 4 * torch.nn.functional.one_hot(train_ids, 19).permute(2, 0, 1)[None].float()
    return logits + torch.randn(logits.shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("low, resolution", [((129, 257), "full"), ((65, 129), "full"), ((65, 129), "half")])
def test_label_map_on_a_street_at_1024x2048(low, resolution):
    # 1/8 logits of a 1024x2048 photo (LR-ASPP), 1/16 ones (a head without the skip), and half resolution
    from segkit.inference import grid_size
    from segkit.labelmap import dense_label_map, label_map, resize_steps

    image = (1024, 2048)
    network = image if resolution == "full" else (512, 1024)
    stride = (grid_size(network, 16)[0] - 1) // (low[0] - 1)
    assert stride in (8, 16, 32)
    logits = street_logits(low, image)
    steps = resize_steps(network, image, grid_size(network, 16))
    got, expected = label_map(logits, steps), dense_label_map(logits, steps)
    assert got.shape == image and (got == expected).double().mean() >= 0.9999


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
@pytest.mark.parametrize("size, resolution", [((1024, 2048), "full"), ((512, 1024), "full"),
                                              ((1024, 2048), "half")])
def test_every_backend_keeps_labels_aligned_with_the_photo(backend, size, resolution):
    from tests.test_inference import GridProbe, expected_stripe_labels, stripes

    predictor = Predictor.from_model(GridProbe(), normalize="tf", backend=backend)
    for axis in (0, 1):
        image = stripes(size, axis, seed=axis)
        labels = predictor.predict(image, resolution)
        assert np.array_equal(labels, expected_stripe_labels(image, axis, resolution)), (backend, axis)


def test_exported_label_graph_keeps_labels_aligned_with_the_photo():
    from segkit.export import onnx_bytes, ort_session
    from tests.test_inference import GridProbe, expected_stripe_labels, stripes

    image = stripes((512, 1024), axis=1)
    session = ort_session(onnx_bytes(GridProbe(), (512, 1024), labels=True))
    labels = session.run(None, {"images": image_to_tensor(image, "tf")[None].contiguous().numpy()})[0][0]
    assert np.array_equal(labels, expected_stripe_labels(image, 1, "full"))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_every_backend_takes_odd_photo_sizes_at_both_resolutions(checkpoint, backend):
    # OpenVINO's photo graph resizes inside; a non-integer area factor (odd sizes at half) once broke its export
    path, model, config = checkpoint
    predictor = Predictor.from_checkpoint(path, backend=backend)
    for size in ((375, 500), (99, 99), (1023, 2047)):
        image = photo(*size)
        for resolution in ("full", "half"):
            labels = predictor.predict(image, resolution)
            assert labels.shape == size and labels.dtype == np.uint8, (size, resolution)
            if size == (99, 99):
                expected = eager_labels(model, image, config.data.normalize, resolution)
                assert (labels == expected).mean() >= 0.999, (size, resolution)
    with pytest.raises(UserError, match="31x40 pixels; segkit needs at least 32x32"):
        predictor.predict(photo(40, 31))


def test_compiled_graphs_per_size_are_bounded(checkpoint):
    from segkit.predict import CACHED_SIZES

    predictor = Predictor.from_checkpoint(checkpoint[0], backend="onnxruntime")
    heights = range(40, 40 + 16 * (CACHED_SIZES + 2), 16)  # padded to 49, 65, ...: a new network size each
    for height in heights:
        predictor.predict(photo(height, 48))
    assert len(predictor.backend.sessions) == CACHED_SIZES
    assert (heights[-1] + 9, 49) in predictor.backend.sessions  # the most recent kept, the oldest dropped
    assert (49, 49) not in predictor.backend.sessions


def test_concurrent_label_maps_leave_the_thread_count_alone(monkeypatch):
    # The label map once set torch's process-wide thread count to 1 around its small ops and restored what it had
    # read: two overlapping calls (the second reading the first's 1) could leave the process at 1 thread.
    import threading

    from segkit import labelmap
    from segkit.inference import grid_size
    from segkit.labelmap import label_map, resize_steps

    monkeypatch.setattr(labelmap, "MAX_MIXED", 1.0)
    real, first_inside, second_inside, first_done = labelmap._interpolate_mixed, *(threading.Event() for _ in range(3))

    def overlapping(*args, **kwargs):  # the first call leaves while the second is still inside
        if threading.current_thread().name == "first":
            first_inside.set()
            second_inside.wait(10)
        else:
            second_inside.set()
            first_done.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(labelmap, "_interpolate_mixed", overlapping)
    steps = resize_steps((96, 160), (96, 160), grid_size((96, 160), 16))
    logits = scene_logits((13, 21))
    before = torch.get_num_threads()
    first = threading.Thread(target=lambda: (label_map(logits, steps), first_done.set()), name="first")
    second = threading.Thread(target=label_map, args=(logits, steps), name="second")
    first.start()
    first_inside.wait(10)
    second.start()
    first.join()
    second.join()
    seen = []  # what a thread started now (a server's next request) runs with
    later = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    later.start()
    later.join()
    assert first_done.is_set() and torch.get_num_threads() == before and seen == [before]
