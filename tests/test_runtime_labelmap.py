"""segkit.runtime.labelmap: the numpy label map equals the torch one (segkit.deploy.labelmap) and the dense
reference (the plan executed by ``GridPlan.upsample``, then the per-pixel max) on a network's logits at full and
half resolution and odd photo sizes, on the pixel-grid probe, on smooth logits (the sparse path) and on random ones
(the dense path); it and segkit.geometry import without torch."""
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from segkit.config import ModelConfig
from segkit.data.labels import to_train_ids
from segkit.data.synthetic import generate_scene
from segkit.data.normalize import image_to_tensor
from segkit.deploy import labelmap as torch_labelmap
from segkit.geometry import GridPlan, grid_size, plan_for
from segkit.inference import to_labels
from segkit.models import build_model
from segkit.runtime import labelmap
from segkit.runtime.labelmap import label_map


@pytest.fixture
def path(request, monkeypatch):
    """Which path of the numpy label map runs: "sparse" (never the dense fallback), "dense" (always, once any
    window is mixed) or "auto" (the fallback above MAX_MIXED, as shipped); ``dense_runs`` counts the fallback."""
    chosen = SimpleNamespace(name=request.param, dense_runs=0)
    real = labelmap._dense

    def dense(*args):
        chosen.dense_runs += 1
        return real(*args)

    monkeypatch.setattr(labelmap, "_dense", dense)
    monkeypatch.setattr(labelmap, "MAX_MIXED", {"sparse": 1.0, "dense": 0.0, "auto": labelmap.MAX_MIXED}[request.param])
    return chosen


def assert_forced_path_ran(path):
    assert path.dense_runs == (1 if path.name == "dense" else 0)


def assert_labels_agree(got: np.ndarray, logits: torch.Tensor, plan: GridPlan):
    """``got`` equals the dense reference and the torch label map on >= 99.99 % of the pixels, and differs only
    at near-ties: where the dense scores of its class and the best one are within float rounding."""
    scores = plan.upsample(logits)[0]
    dense = to_labels(scores[None])[0].numpy()
    assert got.shape == plan.image_size and got.dtype == np.uint8
    assert (got == dense).mean() >= 0.9999
    assert (got == torch_labelmap.label_map(logits, plan).numpy()).mean() >= 0.9999
    rows, cols = (torch.from_numpy(index) for index in np.nonzero(got != dense))
    chosen = scores[torch.from_numpy(got).long()[rows, cols], rows, cols]
    gap = scores[:, rows, cols].max(dim=0).values - chosen
    assert len(gap) == 0 or gap.max() <= 1e-5 * max(1.0, float(scores.abs().max()))


@pytest.fixture
def network(realistic):
    return realistic(build_model(ModelConfig(backbone="mobilenet_v3_small")))


@pytest.mark.parametrize("path", ["auto", "sparse", "dense"], indirect=True)
@pytest.mark.parametrize("image_size, resolution", [((1024, 2048), "full"), ((1024, 2048), "half"),
                                                    ((512, 1024), "full"), ((512, 1024), "half"),
                                                    ((375, 500), "full"), ((375, 500), "half"), ((99, 99), "full"),
                                                    ((99, 99), "half"), ((1023, 2047), "half")])
def test_label_map_of_a_network_on_a_photo(image_size, resolution, path, network):
    photo, _ = generate_scene(*image_size, np.random.default_rng(1))
    plan = plan_for(image_size, resolution, network.output_stride)
    with torch.inference_mode():
        logits = network.logits(plan.network_input(image_to_tensor(photo, "tf")[None]))
    assert_labels_agree(label_map(logits.numpy(), plan), logits, plan)
    if path.name != "auto":
        assert_forced_path_ran(path)


@pytest.mark.parametrize("path", ["sparse", "dense"], indirect=True)
@pytest.mark.parametrize("size, resolution", [((1024, 2048), "full"), ((512, 1024), "full"),
                                              ((1024, 2048), "half")])
@pytest.mark.parametrize("axis", [0, 1])
def test_label_map_puts_the_cells_on_the_photo_pixels(size, resolution, axis, path, grid_probe):
    model, image = grid_probe.model(), grid_probe.stripes(size, axis)
    plan = plan_for(size, resolution, model.output_stride)
    with torch.no_grad():
        logits = model.logits(plan.network_input(image_to_tensor(image, "tf")[None])).numpy()
    assert np.array_equal(label_map(logits, plan), grid_probe.expected(image, axis, resolution))
    assert_forced_path_ran(path)  # the stripes' edges make mixed windows: the forced path ran


def smooth_logits(low_size, image_size, seed=0):
    """Logits of a trained-looking model: a synthetic street's classes at the logits' resolution, one-hot times
    4, plus unit noise -- almost every window has one label."""
    _, label_ids = generate_scene(*image_size, np.random.default_rng(seed))
    rows = np.arange(low_size[0]) * image_size[0] // low_size[0]
    cols = np.arange(low_size[1]) * image_size[1] // low_size[1]
    classes = to_train_ids(label_ids)[np.ix_(rows, cols)]
    logits = 4 * (np.arange(19)[:, None, None] == classes).astype(np.float32)  # trainId 255 (void): all zeros
    noise = np.random.default_rng(seed).standard_normal(logits.shape, dtype=np.float32)
    return torch.from_numpy(logits + noise)[None]


@pytest.mark.parametrize("path", ["auto"], indirect=True)
@pytest.mark.parametrize("low, image, network", [((129, 257), (1024, 2048), (1024, 2048)),
                                                 ((65, 129), (1024, 2048), (512, 1024)),
                                                 ((65, 129), (512, 1024), (512, 1024))])
def test_smooth_logits_take_the_sparse_path(low, image, network, path):
    logits = smooth_logits(low, image)
    plan = GridPlan(image, network, grid_size(network, 16))
    assert_labels_agree(label_map(logits.numpy(), plan), logits, plan)
    assert path.dense_runs == 0


@pytest.mark.parametrize("path", ["auto"], indirect=True)
@pytest.mark.parametrize("low, image, network", [((129, 257), (1024, 2048), (1024, 2048)),
                                                 ((65, 129), (1024, 2048), (512, 1024)),
                                                 ((25, 33), (375, 500), (188, 250))])
def test_random_logits_take_the_dense_path(low, image, network, path):
    logits = torch.randn(1, 19, *low)
    plan = GridPlan(image, network, grid_size(network, 8))
    assert plan.padded_size == ((low[0] - 1) * 8 + 1, (low[1] - 1) * 8 + 1)
    assert_labels_agree(label_map(logits.numpy(), plan), logits, plan)
    assert path.dense_runs == 1


@pytest.mark.parametrize("path", ["sparse", "dense"], indirect=True)
def test_ties_go_to_the_first_class(path):
    # Classes 3 and 7 tie on cells 0-9, 5 wins on cells 10-20: interpolated, 3 and 7 stay equal, and column 76,
    # halfway between cells 9 and 10 (pixels 72 and 80), is an exact three-way tie.
    logits = np.zeros((1, 9, 13, 21), np.float32)
    logits[0, [3, 7], :, :10] = 1
    logits[0, 5, :, 10:] = 1
    plan = plan_for((96, 160), "full", 8)
    got = label_map(logits, plan)
    assert (got[:, :77] == 3).all() and (got[:, 77:] == 5).all()
    assert_forced_path_ran(path)
    assert np.array_equal(got, to_labels(plan.upsample(torch.from_numpy(logits)))[0].numpy())


@pytest.mark.parametrize("steps", [(("corners", 1025), ("crop", 1024)), (("corners", 513), ("crop", 512),
                                                                          ("centers", 1023)),
                                   (("corners", 385), ("crop", 375)), (("corners", 97),), (("corners", 1),)])
def test_the_weights_are_those_of_torchs_interpolation(steps):
    # each step's matrix is F.interpolate (align_corners True for "corners", False for "centers") of the unit
    # vectors; the axis plan is their product, in windows of k cells
    import torch.nn.functional as F

    for kind, n_out in (("corners", 97), ("centers", 1023), ("centers", 5), ("corners", 1)):
        torchs = F.interpolate(torch.eye(13, dtype=torch.float64)[None], size=n_out, mode="linear",
                               align_corners=kind == "corners")[0].T.numpy()
        np.testing.assert_allclose(labelmap.interpolation_matrix(13, n_out, kind), torchs, rtol=0, atol=1e-12)
    assert np.array_equal(labelmap.interpolation_matrix(13, 7, "crop"), np.eye(13)[:7])
    n_in = (steps[0][1] - 1) // 8 + 1
    plan = labelmap.axis_plan(n_in, steps)
    matrix = np.eye(n_in)
    for kind, n_out in steps:
        matrix = labelmap.interpolation_matrix(matrix.shape[0], n_out, kind) @ matrix
    rebuilt = np.zeros((matrix.shape[0], n_in + plan.k - 1))
    for row, (start, weights) in enumerate(zip(plan.start, plan.weights)):
        rebuilt[row, start: start + plan.k] = weights
    np.testing.assert_allclose(rebuilt[:, :n_in], matrix, atol=1e-6)
    assert plan.weights.dtype == np.float32 and torch_labelmap.axis_plan(n_in, steps).k == plan.k


def test_the_runtime_label_map_runs_without_torch():
    code = """if True:
        import sys
        sys.modules["torch"] = None  # any import of torch now fails
        import numpy as np
        import segkit.geometry, segkit.runtime, segkit.runtime.labelmap as labelmap
        logits = np.random.default_rng(0).standard_normal((1, 5, 13, 21), dtype=np.float32)
        plan = segkit.geometry.plan_for((192, 320), "half", 8)
        labelmap.MAX_MIXED = 1.0
        sparse = labelmap.label_map(logits, plan)
        labelmap.MAX_MIXED = 0.0
        dense = labelmap.label_map(logits, plan)
        sys.stdout.buffer.write(sparse.tobytes() + dense.tobytes())
    """
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr.decode()
    logits = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 5, 13, 21), dtype=np.float32))
    plan = plan_for((192, 320), "half", 8)
    sparse, dense = np.frombuffer(done.stdout, np.uint8).reshape(2, 192, 320)
    reference = to_labels(plan.upsample(logits))[0].numpy()
    assert (sparse == reference).mean() >= 0.9999 and (dense == reference).mean() >= 0.9999
