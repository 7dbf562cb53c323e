"""tools/convert_tf.py: a converted reference checkpoint runs through every tool; each refusal is one line and
leaves no output file."""
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from segkit.config import load_config
from segkit.data.synthetic import make_synthetic
from segkit.checkpoint import load_checkpoint
from segkit.models import build_model, from_checkpoint
from segkit.models.tf_checkpoint import read_tf_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SMALL_ZOO = str(ROOT / "configs" / "tf_zoo" / "mnv3_small_cityscapes.py")
LARGE_ZOO = str(ROOT / "configs" / "tf_zoo" / "mnv3_large_cityscapes.py")

pytestmark = pytest.mark.tf_reference


def convert(tool, capsys, *args):
    """(exit status, stdout, stderr) of the tool run in this process."""
    try:
        tool("convert_tf").main(list(args))
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def zoo_tarball(tmp_path_factory, copy_reference):
    """The reference Small OS32 graph packed as the model zoo packs its releases."""
    folder = tmp_path_factory.mktemp("zoo")
    inner = copy_reference("lraspp_small_os32", folder / "deeplab_mnv3_small_cityscapes_trainfine")
    (inner.parent / "frozen_inference_graph.pb").write_bytes(b"graph")
    tarball = folder / "deeplab_mnv3_small_cityscapes_trainfine_2019_11_15.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(inner.parent, arcname=inner.parent.name)
    return tarball


def test_converted_zoo_tarball_runs_in_every_tool(zoo_tarball, tmp_path, capsys, tool, reference, reference_image):
    out = tmp_path / "small.pt"
    code, stdout, stderr = convert(tool, capsys, str(zoo_tarball), "--config", SMALL_ZOO, "--out", str(out))
    assert code == 0, stderr
    assert "loaded 217 into mobilenet_v3_small + RF2, lraspp F=128" in stdout and "output stride 32" in stdout
    state = load_checkpoint(out)
    assert state["config"]["model"]["output_stride"] == 32 and state["iteration"] == 0
    assert state["converted_from"].endswith("deeplab_mnv3_small_cityscapes_trainfine/model.ckpt")
    model = from_checkpoint(out)
    assert not model.training
    tensors = read_tf_checkpoint(reference / "lraspp_small_os32").tensors
    assert np.array_equal(model.backbone.features[0][0].weight.detach().permute(2, 3, 1, 0).numpy(),
                          tensors["MobilenetV3/Conv/weights"])

    # infer, export, eval and benchmark take it as --checkpoint; training takes it as model.pretrained
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), reference_image[:256, :512, ::-1])
    make_synthetic(tmp_path / "data", train=1, val=1, height=64, width=128, seed=0)
    commands = [
        ["infer.py", str(photo), "--checkpoint", str(out), "--out", str(tmp_path / "pred"), "--backend", "torch"],
        ["export.py", "--checkpoint", str(out), "--out", str(tmp_path / "m.onnx"), "--height", "64", "--width", "128"],
        ["eval.py", "--checkpoint", str(out), "--data-root", str(tmp_path / "data"), "--resolution", "full",
         "--json", str(tmp_path / "eval.json")],
        ["benchmark.py", "--checkpoint", str(out), "--backend", "torch", "--repeats", "1", "--resolution", "half"],
    ]
    for command in commands:
        result = subprocess.run([sys.executable, str(ROOT / "tools" / command[0]), *command[1:]], cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, (command[0], result.stderr[-2000:])
    assert (tmp_path / "pred" / "photo_labelIds.png").is_file() and (tmp_path / "m.onnx").is_file()
    assert (tmp_path / "eval.json").is_file()
    tuned = build_model(load_config(SMALL_ZOO, [f"model.pretrained={out}",
                                                                         "model.num_classes=5"]).model)
    torch.testing.assert_close(tuned.backbone.state_dict(), model.backbone.state_dict())


def test_refusals_write_nothing(zoo_tarball, tmp_path, capsys, tool, reference, copy_reference, tf_bundle):
    out = tmp_path / "out.pt"
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    broken = tmp_path / "broken"
    copy_reference("lraspp_small_os32", broken)
    data = broken / "model.ckpt.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1000])
    model = build_model(load_config(SMALL_ZOO).model)
    tensors = tf_bundle.tensors(model)
    del tensors["decoder/feature_projection0/biases"], tensors["MobilenetV3/expanded_conv_4/depthwise/BatchNorm/beta"]
    incomplete = tf_bundle.arrays(tmp_path / "incomplete" / "model.ckpt", tensors)
    cases = [
        ([str(photo)], "is not a TensorFlow checkpoint"),
        ([str(tmp_path / "nothing" / "model.ckpt")], "does not exist"),
        ([str(broken)], "is truncated"),
        ([str(zoo_tarball)], "holds mobilenet_v3_small \\+ RF2.*use configs/tf_zoo/mnv3_small_cityscapes.py"),
        ([str(incomplete), "--config", SMALL_ZOO],
         "lacks 2 variable.*expanded_conv_4/depthwise/BatchNorm/beta, decoder/feature_projection0/biases"),
        ([str(reference / "raspp_large_os16_f256"), "--set", "model.head=raspp"],
         "raspp F=256 without skip.*raspp F=128 without skip.*use configs/raspp_large.py"),
    ]
    for args, message in cases:
        config = [] if "--config" in args else ["--config", LARGE_ZOO]
        code, stdout, stderr = convert(tool, capsys, *args, *config, "--out", str(out))
        assert code == 2 and stderr.count("\n") == 1 and "Traceback" not in stderr, (args, stderr)
        assert re.search(message, stderr), (message, stderr)
        assert not out.exists() and not list(tmp_path.glob(".out.pt*"))
    shutil.rmtree(broken)
