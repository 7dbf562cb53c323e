"""segkit.runtime: deploy bundles run without PyTorch give the Predictor's (PyTorch's) labels -- Table 7 rows 8 and
11, full and half resolution, odd photo sizes, every runtime; the cache makes a bundle once and rebuilds one that is
damaged, outdated or made from another checkpoint; tools/infer.py on a cached bundle and python -m segkit.runtime
run in processes where importing torch fails; tools/export.py --bundle."""
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.checkpoint import save_checkpoint
from segkit.config import table7_config
from segkit.cpu import has_bf16
from segkit.models import build_model
from segkit.predict import Predictor
from segkit.runtime.bundle import MANIFEST, Bundle
from segkit.runtime.predictor import BundlePredictor, bundle_for

ROOT = Path(__file__).resolve().parents[1]
NO_TORCH = "import sys, runpy; sys.modules['torch'] = None; "  # a process where `import torch` fails


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """{row: checkpoint} of Table 7 rows 8 and 11 with random, realistic weights."""
    from conftest import realistic

    folder = tmp_path_factory.mktemp("rows")
    paths = {}
    for row in (8, 11):
        torch.manual_seed(row)
        config = table7_config(row).resolved()
        paths[row] = folder / f"row{row}.pt"
        save_checkpoint(paths[row], {"model": realistic(build_model(config.model)).state_dict(),
                                     "config": config.to_dict(), "iteration": 0})
    return paths


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGKIT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def quiet(*args, **kwargs):
    pass


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "openvino-bf16", "litert"])
@pytest.mark.parametrize("row", [8, 11])
def test_the_runtimes_labels_are_pytorchs(rows, photos, row, backend):
    if backend == "openvino-bf16" and not has_bf16():
        pytest.skip("this CPU has no native bfloat16")
    if backend == "litert":
        pytest.importorskip("ai_edge_litert", reason="needs the optional extra .[mobile] (make test installs it)")
    reference = Predictor.from_checkpoint(rows[row], backend="torch")
    model, normalize = reference.backend.model, reference.normalize
    sizes = ((375, 501),) if backend == "litert" else ((512, 1024), (375, 501))  # LiteRT converts slowly
    for size in sizes:
        photo = photos.random(*size, seed=row)
        for resolution in ("full", "half"):
            labels = BundlePredictor(bundle_for(rows[row], size, resolution, backend, quiet)).predict(photo)
            expected = reference.predict(photo, resolution)
            # bfloat16 rounds every convolution's input: compare where the two best classes are clearly apart
            where = photos.clear(model, photo, normalize, resolution) if backend == "openvino-bf16" else ...
            assert labels.shape == size and (labels[where] == expected[where]).mean() >= 0.9999, (size, resolution)


def test_the_cache_makes_a_bundle_once_and_never_runs_a_bad_one(rows, home, photos, monkeypatch):
    import segkit.deploy.bundle as bundles

    said = []
    size = (96, 160)
    first = bundle_for(rows[11], size, "full", "onnxruntime", said.append)
    assert len(said) == 1 and first.folder.parent == home / "bundles"
    assert bundle_for(rows[11], size, "full", "onnxruntime", said.append).folder == first.folder and len(said) == 1
    photo = photos.random(*size)
    expected = BundlePredictor(first).predict(photo)
    # damaged graph, another version, another checkpoint's record: each made again, never run
    for damage in ("graph", "version", "checkpoint", "manifest"):
        if damage == "graph":
            graph = first.folder / "graph.onnx"
            graph.write_bytes(graph.read_bytes()[:-100])
        elif damage == "manifest":
            (first.folder / MANIFEST).write_text("{ not json")
        else:
            meta = json.loads((first.folder / MANIFEST).read_text())
            if damage == "version":
                meta["versions"]["onnxruntime"] = "0.0.1"
            else:
                meta["checkpoint_sha256"] = "0" * 64
            (first.folder / MANIFEST).write_text(json.dumps(meta))
        again = bundle_for(rows[11], size, "full", "onnxruntime", said.append)
        assert len(said) == 2 + ["graph", "version", "checkpoint", "manifest"].index(damage), damage
        assert np.array_equal(BundlePredictor(again).predict(photo), expected), damage
    # bounded: the least recently used go
    monkeypatch.setattr(bundles, "CACHED_BUNDLES", 2)
    for width in (160, 176, 192):
        bundle_for(rows[11], (96, width), "full", "onnxruntime", quiet)
    kept = sorted(p.name for p in (home / "bundles").iterdir() if p.is_dir())
    assert len(kept) == 2 and all("96x176" in name or "96x192" in name for name in kept), kept  # no staging left


def test_infer_runs_a_cached_bundle_without_pytorch(rows, home, tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (120, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "street.png"), photo)
    command = [str(ROOT / "tools" / "infer.py"), str(tmp_path / "street.png"), "--checkpoint", str(rows[11]),
               "--backend", "onnxruntime"]
    env = {**os.environ, "SEGKIT_HOME": str(home)}

    def infer(out, torch_allowed):
        code = (("" if torch_allowed else NO_TORCH) + f"sys.argv = {command + ['--out', str(out)]!r}; "
                f"runpy.run_path({str(ROOT / 'tools' / 'infer.py')!r}, run_name='__main__')")
        if torch_allowed:
            code = "import sys, runpy; " + code
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)

    refused = infer(tmp_path / "none", torch_allowed=False)  # no bundle yet, and none can be made here
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "needs PyTorch" in refused.stderr
    made = infer(tmp_path / "first", torch_allowed=True)
    assert made.returncode == 0 and "making the onnxruntime bundle" in made.stdout, made.stderr
    cached = infer(tmp_path / "second", torch_allowed=False)
    assert cached.returncode == 0 and "making" not in cached.stdout, cached.stderr
    for name in ("street_color.png", "street_overlay.png", "street_labelIds.png"):
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes(), name


def test_an_exported_bundle_runs_in_the_runtime_alone(rows, tmp_path, tool, capsys, photos):
    tool("export").main(["--checkpoint", str(rows[11]), "--bundle", str(tmp_path / "b"), "--height", "75", "--width",
                         "101", "--resolution", "half", "--backend", "openvino"])
    out = capsys.readouterr().out
    assert "labels agree on 100.000% of pixels" in out, out
    bundle = Bundle.read(tmp_path / "b")
    assert bundle.name == "openvino" and bundle.photo_size == (75, 101) and bundle.meta["resolution"] == "half"
    photo = photos.random(75, 101, seed=3)
    cv2.imwrite(str(tmp_path / "a.png"), photo[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "other.png"), photos.random(80, 101)[:, :, ::-1])
    code = NO_TORCH + (f"sys.argv = ['segkit.runtime', {str(tmp_path / 'b')!r}, {str(tmp_path / 'a.png')!r}, "
                       f"{str(tmp_path / 'other.png')!r}, '--out', {str(tmp_path / 'preds')!r}]; "
                       "runpy.run_module('segkit.runtime', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "101x80" not in result.stderr, result.stderr
    assert "other.png" in result.stderr and "101x75" in result.stderr
    expected = Predictor.from_checkpoint(rows[11], backend="torch").predict(photo, "half")
    label_ids = cv2.imread(str(tmp_path / "preds" / "a_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert (bundle.table.to_classes(label_ids) == expected).mean() >= 0.9999
    # a damaged bundle is one line; a folder of other files is not written over
    (tmp_path / "b" / "graph.bin").write_bytes(b"damaged")
    result = subprocess.run([sys.executable, "-m", "segkit.runtime", str(tmp_path / "b"), str(tmp_path / "a.png")],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "damaged" in result.stderr
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_:
        tool("export").main(["--checkpoint", str(rows[11]), "--bundle", str(tmp_path / "mine"), "--height", "64",
                             "--width", "64"])
    assert exit_.value.code == 2 and (tmp_path / "mine" / "notes.txt").read_text() == "mine"


def test_the_runtime_refuses_what_the_predictor_refuses(rows):
    from segkit.errors import UserError
    from segkit.runtime.predictor import RuntimePredictor

    predictor = RuntimePredictor(rows[11], "onnxruntime", say=quiet)
    for photo, words in ((np.zeros((20, 20, 3), np.uint8), "at least 32x32"),
                         (np.zeros((64, 64), np.uint8), "RGB uint8"), (np.zeros((64, 64, 3), np.float32), "RGB uint8")):
        with pytest.raises(UserError, match=words):
            predictor.predict(photo)
