"""segkit.deploy.backends: each backend against the eager model, auto's choice and fallbacks, OpenVINO's photo graph
(float32 and bfloat16), odd sizes, bounded per-size caches; released backends freed on the spot, the process intact
after them."""
import gc
import json
import subprocess
import sys
import weakref

import pytest
import torch

import segkit.deploy.backends as backends
from segkit.deploy.backend import CACHED_SIZES, BackendOptions
from segkit.deploy.backends import BACKEND_CHOICES, BACKENDS, cpu_has_bf16, make_backend
from segkit.deploy.export import PhotoLogits
from segkit.deploy.export import photo_graph
from segkit.deploy.quantized import MANIFEST
from segkit.errors import UserError
from segkit.hub import file_sha256
from segkit.inference import grid_stride, plan_for, plan_prediction
from segkit.predict import Predictor


def test_auto_backend_works_here_and_without_native_bf16(small_checkpoint, photos, monkeypatch):
    path, model, config = small_checkpoint
    image = photos.random(96, 160, seed=4)
    expected = photos.eager(model, image, config.data.normalize, "full")
    predictor = Predictor.from_checkpoint(path)  # auto: whatever this machine's fastest path is
    clear = photos.clear(model, image, config.data.normalize, "full")  # bfloat16 may flip near-ties
    assert (predictor.predict(image) == expected)[clear].mean() >= 0.999
    # without native bfloat16 auto takes OpenVINO in float32 (the rule of segkit.runtime.choice)
    import segkit.runtime.choice as choice

    monkeypatch.setattr(choice, "has_bf16", lambda: False)
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    fallback = Predictor.from_checkpoint(path)
    assert fallback.backend_name == "openvino" and (fallback.predict(image) == expected).mean() >= 0.999
    # and ONNX Runtime where OpenVINO is not installed (segkit without the [torch] or [openvino] extra)
    monkeypatch.setattr(choice, "installed", lambda package: False)
    assert Predictor.from_checkpoint(path).backend_name == "onnxruntime"


def test_one_table_of_backends():
    assert BACKEND_CHOICES == ("auto", *BACKENDS) and set(BACKENDS) == {
        "torch", "onnxruntime", "openvino", "openvino-bf16", "openvino-int8", "litert", "litert-int8"}
    with pytest.raises(UserError, match="backend='tensorrt' is unknown"):
        make_backend(None, "tensorrt")
    with pytest.raises(UserError, match="threads=0 must be at least 1"):
        make_backend(None, "torch", BackendOptions(threads=0))


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_float32_networks_equal_pytorch(small_checkpoint, photos, name):
    _, model, config = small_checkpoint
    photo = photos.random(96, 160, seed=1)
    plan = plan_prediction((96, 160), 16)
    with torch.inference_mode():
        expected = PhotoLogits(model.eval(), config.data.normalize, plan)(torch.from_numpy(photo)[None])
    backend = make_backend(model, name)
    got = backend.logits(backend.inputs(photo, plan), plan)
    assert expected.abs().max() > 0.1
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("resolution", ["full", "half"])
def test_openvino_default_path_labels_flip_only_at_near_ties(small_checkpoint, photos, resolution):
    # The default CPU backend where bfloat16 is native; elsewhere the same photo-graph path in float32.
    # bfloat16 keeps 8 bits of mantissa: logits move by about 1 %, so labels may flip where the two best classes
    # are that close (a random-weight model has many such pixels) and nowhere else.
    backend = "openvino-bf16" if cpu_has_bf16() else "openvino"
    path, model, config = small_checkpoint
    image = photos.random(96, 160, seed=2)
    expected = photos.eager(model, image, config.data.normalize, resolution)
    clear = photos.clear(model, image, config.data.normalize, resolution)
    predictor = Predictor.from_checkpoint(path, backend=backend)
    labels = predictor.predict(image, resolution)
    assert labels.shape == expected.shape and clear.mean() > 0.2
    assert (labels == expected)[clear].mean() >= 0.999
    assert predictor.last_timing.preprocess_ms == 0  # the photo went into the graph as uint8


def test_openvino_bf16_needs_native_bf16(small_checkpoint, photos, monkeypatch):
    monkeypatch.setattr(backends, "cpu_has_bf16", lambda: False)
    with pytest.raises(UserError, match="no native bfloat16"):
        make_backend(small_checkpoint[1], "openvino-bf16")


def test_compiled_graphs_per_size_are_bounded(small_checkpoint, photos):
    predictor = Predictor.from_checkpoint(small_checkpoint[0], backend="onnxruntime")
    heights = range(40, 40 + 16 * (CACHED_SIZES + 2), 16)  # padded to 49, 65, ...: a new network size each
    for height in heights:
        predictor.predict(photos.random(height, 48))
    assert len(predictor.backend.graphs) == CACHED_SIZES
    assert plan_prediction((heights[-1], 48), 16) in predictor.backend.graphs  # the most recent kept
    assert plan_prediction((heights[0], 48), 16) not in predictor.backend.graphs  # the oldest dropped


def test_the_backends_are_the_names_known_without_pytorch():
    from segkit.runtime.choice import BACKEND_NAMES, BUNDLED

    assert tuple(BACKENDS) == BACKEND_NAMES and set(BUNDLED) <= set(BACKENDS)


def write_openvino_graphs(folder, checkpoint, model, normalize, size=(64, 128)):
    """A ``quantized.json`` folder of OpenVINO graphs for ``size`` at both resolutions (float graphs stand in for
    int8 ones: the backend runs whatever the folder holds)."""
    import openvino

    from segkit.cpu import cpu_int8
    from segkit.runtime.runners import openvino_core

    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for resolution in ("full", "half"):
        file = f"openvino_{resolution}.xml"
        graph = photo_graph(model, normalize, plan_for(size, resolution, grid_stride(model)))
        openvino.save_model(openvino_core().read_model(graph, b""), folder / file)
        kind, isa = cpu_int8()
        records.append({"format": "openvino", "photo_size": list(size), "resolution": resolution, "file": file,
                        "cpu_int8": kind, "cpu_isa": isa})
    (folder / MANIFEST).write_text(json.dumps({"checkpoint_sha256": file_sha256(checkpoint), "graphs": records}))
    return folder


# Built in a child, as a crash would take pytest with it: two float OpenVINO backends released in the order they
# were made, then an int8 one (two graphs) released by a garbage collection on another thread; then a signal the
# process handles (torch's DataLoader installs a SIGCHLD handler) and a child process to send it.
RELEASE_THEN_SIGNAL = """
import gc, signal, subprocess, sys, threading
import numpy as np
from segkit.predict import Predictor
checkpoint, int8 = sys.argv[1:]
photo = np.zeros((64, 128, 3), np.uint8)
first, second = (Predictor.from_checkpoint(checkpoint, backend="openvino") for _ in range(2))
first.predict(photo), second.predict(photo)
del first, second
predictor = Predictor.from_checkpoint(checkpoint, backend="openvino-int8", quantized=int8)
predictor.predict(photo, "full"), predictor.predict(photo, "half")
del predictor
collector = threading.Thread(target=gc.collect)
collector.start(), collector.join()
signal.signal(signal.SIGCHLD, lambda *_: None)
subprocess.run([sys.executable, "-c", "pass"], check=True)
print("signal delivered")
"""


def test_released_openvino_graphs_leave_signal_delivery_intact(small_checkpoint, tmp_path):
    # OpenVINO's CPU plugin gives the thread that loads it an alternate signal stack and unmaps it when the plugin
    # goes; one plugin per Core, released out of order or on another thread, left the thread's signal stack
    # unmapped, and the next handled signal killed the process with SIGSEGV (no traceback: the kernel cannot
    # deliver it). One Core per process keeps one plugin alive.
    path, model, config = small_checkpoint
    int8 = write_openvino_graphs(tmp_path / "int8", path, model, config.data.normalize)
    result = subprocess.run([sys.executable, "-c", RELEASE_THEN_SIGNAL, str(path), str(int8)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "signal delivered" in result.stdout, (result.returncode, result.stderr[-2000:])


@pytest.mark.parametrize("backend", ["openvino-int8", "litert-int8", "onnxruntime", "openvino", "litert"])
def test_backends_are_freed_without_the_cycle_collector(small_checkpoint, tmp_path, backend):
    # Freed by reference counting when the last reference goes, on that thread: not by a later garbage collection
    # on whatever thread runs it.
    if "litert" in backend:
        pytest.importorskip("ai_edge_litert", reason="needs the optional extra .[mobile] (make test installs it)")
    path, model, config = small_checkpoint
    folder = tmp_path / "int8"
    folder.mkdir()
    record = {"format": backend.split("-")[0], "photo_size": [64, 128], "resolution": "full", "file": "graph"}
    (folder / MANIFEST).write_text(json.dumps({"checkpoint_sha256": file_sha256(path), "graphs": [record]}))
    gc.disable()
    try:
        freed = weakref.ref(make_backend(model, backend, BackendOptions(quantized=folder, checkpoint=path)))
        assert freed() is None
    finally:
        gc.enable()

