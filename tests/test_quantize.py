"""segkit.deploy.quantize and tools/quantize.py: int8 graphs (OpenVINO through NNCF, LiteRT through the AI Edge
Quantizer) of a briefly trained model, scored against the float model on the synthetic val split and written, as a
whole folder, only when every format is within the gate; the gate holding on a CPU without VNNI (emulated); the
int8 backends in eval and auto, which takes them only on the kind of CPU they passed on; each bad input in one line
with nothing left behind."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import segkit.deploy.quantize as quantize_module
import segkit.deploy.quantized as quantized_module
from segkit.checkpoint import quantized_dir
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig
from segkit.cpu import cpu_int8
from segkit.data.synthetic import make_synthetic
from segkit.deploy.backend import BackendOptions
from segkit.deploy.backends import default_backend, make_backend
from segkit.deploy.quantize import calibration_photos
from segkit.deploy.quantized import QuantizedGraphs, warn_once
from segkit.engine.trainer import train
from segkit.errors import UserError
from segkit.predict import Predictor

pytest.importorskip("nncf", reason="needs the optional extra .[quantize] (make test installs it)")
pytest.importorskip("litert_torch", reason="needs the optional extra .[mobile] (make test installs it)")

HEIGHT, WIDTH = 128, 256
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(checkpoint, data root): MobileNetV3-Small LR-ASPP trained briefly on a small synthetic city."""
    root = tmp_path_factory.mktemp("city")
    make_synthetic(root / "data", train=8, val=3, height=HEIGHT, width=WIDTH, seed=5)
    # the demo's short-budget choices (configs/demo.py): about 19 % val mIoU after 150 iterations, 20 s
    config = Config(name="tiny", model=ModelConfig(backbone="mobilenet_v3_small", bn_momentum=0.1,
                                                   zero_init_residual=True),
                    data=DataConfig(root=str(root / "data"), crop_size=(129, 257), scale_range=(0.75, 1.25),
                                    workers=0, color_jitter=False),
                    train=TrainConfig(iterations=150, batch_size=4, checkpoint_every=150, eval_every=0, log_every=50,
                                      channels_last=False))
    config.optimizer.name, config.optimizer.lr, config.optimizer.weight_decay = "adamw", 4e-3, 1e-4
    config.schedule.warmup_iterations = 10
    train(config, root / "run", device="cpu", progress=False)
    return root / "run" / "last.pt", root / "data"


def quantize(tool, capsys, checkpoint, *args):
    """(exit status, stdout, stderr) of tools/quantize.py run in this process."""
    try:
        code = tool("quantize").main(["--checkpoint", str(checkpoint), *args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def reject(*args, **kwargs):  # LiteRT's converter failing on a graph
    raise RuntimeError("failed to legalize operation 'tfl.custom'\nmore lines")


def files_of(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_int8_graphs_pass_the_gate_and_run_in_eval_and_auto(trained, tool, capsys, tmp_path):
    checkpoint, data = trained
    code, out, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--max-drop", "1.0")
    assert code == 0, err
    assert "float model: mIoU" in out and "openvino int8: mIoU" in out and "litert int8: mIoU" in out
    graphs = QuantizedGraphs.read(quantized_dir(checkpoint))
    records = graphs.manifest["graphs"]
    assert {(r["format"], r["resolution"]) for r in records} == {(f, r) for f in ("openvino", "litert")
                                                                 for r in ("full", "half")}
    assert all(r["drop"] <= 1.0 and r["float"] > 10 and r["photo_size"] == [HEIGHT, WIDTH] for r in records)
    assert all((r["cpu_int8"], r["cpu_isa"]) == cpu_int8() for r in records)  # the CPU kind the gate passed on
    # tools/eval.py scores the int8 graphs as a backend, to the manifest's figure
    for backend in ("openvino-int8", "litert-int8"):
        scores = tmp_path / f"{backend}.json"
        tool("eval").main(["--checkpoint", str(checkpoint), "--data-root", str(data), "--backend", backend,
                           "--resolution", "full", "--json", str(scores), "--workers", "0"])
        miou = json.loads(scores.read_text())["full"]["miou"]
        record = next(r for r in records if r["format"] == backend.split("-")[0] and r["resolution"] == "full")
        assert miou == pytest.approx(record["int8"], abs=1e-6), backend
    # auto takes the validated OpenVINO int8 graphs, and the float default for a photo of another size
    predictor = Predictor.from_checkpoint(checkpoint)
    assert predictor.backend_name == "openvino-int8"
    photo = cv2.cvtColor(cv2.imread(str(next((data / "leftImg8bit" / "val").rglob("*.png")))), cv2.COLOR_BGR2RGB)
    float_labels = Predictor.from_checkpoint(checkpoint, backend="onnxruntime").predict(photo)
    assert (predictor.predict(photo) == float_labels).mean() > 0.9  # a barely trained model: near-ties abound
    other = np.ascontiguousarray(photo[:96, :160])
    assert predictor.predict(other).shape == (96, 160)
    with pytest.raises(UserError, match="are for 256x128 full, 256x128 half, not 160x96"):
        Predictor.from_checkpoint(checkpoint, backend="openvino-int8").predict(other)


def test_a_format_over_the_gate_leaves_nothing(trained, tool, capsys, tmp_path, monkeypatch):
    """The OpenVINO graphs pass, the LiteRT ones are made 2 points worse: nothing is written, not even the OpenVINO
    graphs, and the error says so."""
    checkpoint, _ = trained
    real = quantize_module._miou
    calls = []

    def worse_litert(predict, job):  # the float model, the OpenVINO graphs, then the LiteRT ones 2 points under
        scores = real(predict, job)
        calls.append(scores)
        return {r: v - 2.0 for r, v in scores.items()} if len(calls) == 3 else scores

    monkeypatch.setattr(quantize_module, "_miou", worse_litert)
    out_dir = tmp_path / "int8"
    code, out, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--out", str(out_dir), "--resolution",
                              "full")
    assert code == 1 and "float model: mIoU" in out and "wrote" not in out
    drops = {line.split(" int8:")[0]: [float(d) for d in re.findall(r"([+-]\d+\.\d+) at", line.split("; drop ")[1])]
             for line in out.splitlines() if " int8: mIoU" in line}  # "litert int8: ...; drop +2.05 at full (max 1)"
    assert len(drops["litert"]) == 1 and drops["openvino"][0] <= 1.0 < drops["litert"][0]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the litert int8 graphs lose more than --max-drop 1 " in errors[0], err
    assert f"nothing written to {out_dir}" in errors[0] and "--format openvino alone" in errors[0]
    assert not out_dir.exists() and not list(tmp_path.glob(".int8*"))


def test_an_error_midway_leaves_the_old_folder_as_it_was(trained, tool, capsys, tmp_path, monkeypatch):
    """The OpenVINO graphs pass their gate, then LiteRT's converter fails: an earlier run's folder stays byte for
    byte, and the error says so."""
    checkpoint, _ = trained
    out_dir = tmp_path / "int8"
    out_dir.mkdir()
    (out_dir / "quantized.json").write_text(json.dumps({"checkpoint": "old.pt", "checkpoint_sha256": "0" * 64,
                                                        "graphs": []}))
    (out_dir / "openvino_full_h64_w64.xml").write_text("<net/>")
    before = files_of(out_dir)
    import litert_torch

    monkeypatch.setattr(litert_torch, "convert", reject)
    code, out, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--out", str(out_dir), "--resolution",
                              "full")
    assert code == 2 and err.count("\n") == 1 and "LiteRT's converter rejected the graph" in err
    assert f"nothing written ({out_dir} left as it was)" in err
    assert "openvino int8: mIoU" in out and "wrote" not in out
    assert files_of(out_dir) == before and [path.name for path in tmp_path.iterdir()] == ["int8"]


def test_a_folder_is_swapped_in_whole_or_not_at_all(tmp_path, monkeypatch):
    folder, staging = tmp_path / "int8", tmp_path / ".int8.1.partial"
    for path, text in ((folder / "old.xml", "old"), (staging / "new.xml", "new")):
        path.parent.mkdir()
        path.write_text(text)
    rename = Path.rename

    def fail_for_staging(self, target):  # e.g. the disk full, or the process killed, at the second rename
        if self == staging:
            raise OSError("no space left on device")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", fail_for_staging)
    with pytest.raises(OSError):
        quantize_module._swap_in(staging, folder)
    assert files_of(folder) == {"old.xml": b"old"}  # the old folder back under its name
    monkeypatch.undo()
    quantize_module._swap_in(staging, folder)
    assert files_of(folder) == {"new.xml": b"new"} and [path.name for path in tmp_path.iterdir()] == ["int8"]


@pytest.mark.parametrize("same_checkpoint", [True, False])
def test_a_new_folder_keeps_the_checkpoints_graphs_for_other_photo_sizes(small_checkpoint, tmp_path,
                                                                           same_checkpoint):
    path, _, _ = small_checkpoint
    folder, staging = tmp_path / "int8", tmp_path / ".int8.1.partial"
    folder.mkdir()
    staging.mkdir()

    def record(format, size, file):
        return {"format": format, "photo_size": size, "resolution": "full", "file": file}

    old = [record("openvino", [64, 128], "a.xml"), record("litert", [128, 256], "b.tflite"),
           record("openvino", [128, 256], "c.xml"), record("openvino", [32, 64], "gone.xml")]  # gone: files lost
    sha = quantized_module.file_sha256(path) if same_checkpoint else "0" * 64
    (folder / "quantized.json").write_text(json.dumps({"checkpoint": "x.pt", "checkpoint_sha256": sha,
                                                       "graphs": old}))
    for name in ("a.xml", "a.bin", "b.tflite", "c.xml", "c.bin"):
        (folder / name).write_text(f"old {name}")
    for name in ("d.xml", "d.bin"):
        (staging / name).write_text(f"new {name}")
    new = [dict(record("openvino", [128, 256], "d.xml"), validated=True)]  # replaces c.xml: same format and size
    job = quantize_module.QuantizeJob(None, path, "tf", ("openvino",), None, (128, 256), None, folder)
    quantize_module._write_folder(job, staging, new, say=lambda line: None)
    kept = ["a.xml", "a.bin", "b.tflite"] if same_checkpoint else []
    graphs = QuantizedGraphs.read(folder)
    assert [r["file"] for r in graphs.manifest["graphs"]] == [n for n in kept if n != "a.bin"] + ["d.xml"]
    assert "validated" not in graphs.manifest["graphs"][-1] and graphs.made_from(path)
    assert sorted(files_of(folder)) == sorted(kept + ["d.xml", "d.bin", "quantized.json"])
    assert all(text.startswith(b"old" if name in kept else b"new") for name, text in files_of(folder).items()
               if name != "quantized.json")
    assert [p.name for p in tmp_path.iterdir()] == ["int8"]


def test_a_split_without_labels_is_one_line_before_any_work(trained, tool, capsys, tmp_path):
    checkpoint, data = trained
    root = tmp_path / "data"
    shutil.copytree(data / "leftImg8bit" / "val", root / "leftImg8bit" / "test")  # as Cityscapes' test: no labels
    code, out, err = quantize(tool, capsys, checkpoint, "--calib", str(data / "leftImg8bit" / "train"), "--split",
                              "test", "--data-root", str(root), "--out", str(tmp_path / "int8"))
    assert code == 2 and err.count("\n") == 1 and "--split test has no labels" in err and "--split val" in err
    assert out == "" and not (tmp_path / "int8").exists()  # not even the calibration photos were read


@pytest.mark.skipif(cpu_int8()[0] not in ("vnni", "no-vnni"), reason="oneDNN's x86 ISA cap")
def test_int8_graphs_keep_their_accuracy_on_a_cpu_without_vnni(trained, tmp_path):
    """oneDNN capped at AVX-512 without VNNI (ONEDNN_MAX_CPU_ISA, which OpenVINO's CPU plugin honours; on a CPU
    without AVX-512 it is the CPU's own AVX2): its int8 convolutions saturate a 16-bit sum, which cost this model
    1.4 points at full resolution with NNCF's default overflow fix (BENCHMARKS.md). The gate holds, and
    quantized.json says on which kind of CPU."""
    checkpoint, _ = trained
    out_dir = tmp_path / "int8"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "quantize.py"), "--checkpoint", str(checkpoint),
                             "--calib", "train", "--format", "openvino", "--resolution", "full", "--out",
                             str(out_dir)], env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    (record,) = QuantizedGraphs.read(out_dir).manifest["graphs"]
    assert record["drop"] <= 1.0 and record["cpu_int8"] == "no-vnni"


def test_auto_takes_int8_graphs_only_on_the_kind_of_cpu_they_passed_on(small_checkpoint, tmp_path, capsys):
    path, model, config = small_checkpoint
    options = BackendOptions("cpu", normalize=config.data.normalize, quantized=tmp_path, checkpoint=path)
    kind, isa = cpu_int8()
    other = "no-vnni" if kind == "vnni" else "vnni"

    def made(backend, **cpu):
        """(name, stderr) of the backend made for a graph that passed its gate on the CPU ``cpu`` describes."""
        record = {"format": "openvino", "photo_size": [64, 128], "resolution": "full", "file": "g.xml", **cpu}
        (tmp_path / "quantized.json").write_text(json.dumps({"checkpoint": str(path), "graphs": [record],
                                                              "checkpoint_sha256": quantized_module.file_sha256(path)}))
        warn_once.cache_clear()
        name = make_backend(model, backend, options).name
        return name, capsys.readouterr().err

    assert made("auto", cpu_int8=kind, cpu_isa=isa) == ("openvino-int8", "")
    for cpu, said in (({"cpu_int8": other, "cpu_isa": "x"}, f"kind {other}/x, not on one like this ({kind}/{isa})"),
                      ({}, "kind unrecorded/?")):  # a folder written before the kind was recorded
        name, err = made("auto", **cpu)
        assert name == default_backend(torch.device("cpu")) and err.count("\n") == 1 and said in err, err
        assert err.startswith("warning: ") and f"auto uses {name}" in err
    name, err = made("openvino-int8", cpu_int8=other, cpu_isa="x")
    assert name == "openvino-int8" and err.count("\n") == 1 and "quantize again on this machine" in err
    make_backend(model, "openvino-int8", options)
    assert capsys.readouterr().err == ""  # said once


def test_calibration_photos_from_a_folder_of_mixed_sizes(tmp_path):
    folder = tmp_path / "calib"
    (folder / "sub").mkdir(parents=True)
    for index, size in enumerate(((HEIGHT, WIDTH), (200, 300), (HEIGHT, WIDTH))):
        path = folder / ("sub" if index == 1 else "") / f"p{index}.jpg"
        cv2.imwrite(str(path), np.full((*size, 3), 40 * index, np.uint8))
    calibration = calibration_photos(str(folder), (HEIGHT, WIDTH), limit=300)
    assert len(calibration.photos) == 3 and calibration.resized == 1
    assert all(photo.shape == (HEIGHT, WIDTH, 3) for photo in calibration.photos)
    assert len(calibration_photos(str(folder), (HEIGHT, WIDTH), limit=2).photos) == 2


def test_bad_inputs_are_one_line_and_write_nothing(trained, tool, capsys, tmp_path, monkeypatch):
    checkpoint, _ = trained
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    out_dir = tmp_path / "out"
    cases = [(["--calib", str(tmp_path / "empty")], "holds no images"),
             (["--calib", str(tmp_path / "nowhere")], "neither a folder nor a split"),
             (["--calib", str(tmp_path / "broken")], "a.png"),
             (["--calib", "train", "--keep-float", "gates"], "--keep-float gates is unknown")]
    for args, words in cases:
        code, _, err = quantize(tool, capsys, checkpoint, *args, "--out", str(out_dir))
        assert code == 2 and err.count("\n") == 1 and words in err, (args, err)
    monkeypatch.setitem(sys.modules, "nncf", None)  # as when the extra is not installed
    code, _, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--format", "openvino", "--out",
                            str(out_dir))
    assert code == 2 and err.count("\n") == 1 and "nncf" in err and ".[quantize]" in err
    monkeypatch.delitem(sys.modules, "nncf")
    import litert_torch

    monkeypatch.setattr(litert_torch, "convert", reject)
    code, _, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--format", "litert", "--out",
                            str(out_dir))
    assert code == 2 and err.count("\n") == 1 and "LiteRT's converter rejected the graph" in err
    assert "failed to legalize operation" in err and f"nothing written to {out_dir}" in err
    assert not out_dir.exists() and not list(tmp_path.glob(".out*"))
    # the output folder is replaced whole: a file, or a folder of other files, is refused before scoring
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    for out, words in ((tmp_path / "mine", "holds files but no quantized.json"),
                       (tmp_path / "mine" / "notes.txt", "is a file")):
        code, stdout, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--out", str(out))
        assert code == 2 and err.count("\n") == 1 and f"--out '{out}' {words}" in err and "float model" not in stdout
    assert files_of(tmp_path / "mine") == {"notes.txt": b"mine"}


def test_keep_float_leaves_the_stem_and_classifiers_in_float(small_checkpoint, photos):
    _, model, config = small_checkpoint
    from segkit.deploy.litert import optional
    from segkit.inference import grid_stride, plan_for

    plan = plan_for((64, 128), "full", grid_stride(model))
    calibration = [photos.random(64, 128, seed=seed) for seed in range(2)]
    normalize = config.data.normalize

    def quantized_inputs(graph):
        """{conv name: whether its weights are quantized (int8 then dequantized, or fake-quantized, rather than a
        float constant)} for the OpenVINO graph."""
        return {op.get_friendly_name(): op.input(1).get_source_output().get_node().get_type_name() != "Constant"
                for op in graph.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")}

    def float_outputs(content):
        """{conv output name: whether it is float32} for the LiteRT graph."""
        interpreter = optional("ai_edge_litert.interpreter", "LiteRT").Interpreter(model_content=content)
        tensors = {d["index"]: d for d in interpreter.get_tensor_details()}
        return {tensors[op["outputs"][0]]["name"]: tensors[op["outputs"][0]]["dtype"] == np.float32
                for op in interpreter._get_ops_details() if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")}

    for keep in ((), ("stem", "classifier")):
        convs = quantized_inputs(quantize_module.quantize_openvino(model, normalize, plan, calibration, keep))
        names = list(convs)
        kept = {names[0]} | {n for n in names if "classifier" in n} if keep else set()
        assert len([n for n in names if "classifier" in n]) == 2  # the LR-ASPP head's two classifiers
        assert {n for n, quantized in convs.items() if not quantized} == kept, keep
        outputs = float_outputs(quantize_module.quantize_litert(model, normalize, plan, calibration, keep))
        names = list(outputs)
        kept = {names[0]} | {n for n in names if "classifier" in n} if keep else set()
        assert {n for n, is_float in outputs.items() if is_float} == kept, keep


def test_the_photo_size_is_the_upright_one_and_an_undecodable_photo_one_line(tmp_path):
    # the size probe read photos as stored (a phone photo's EXIF turn ignored) and an undecodable one raised
    # AttributeError: calibration photos were turned upright, then squashed to the stored size
    from types import SimpleNamespace

    from PIL import Image

    from segkit.data.dataset import Sample
    from segkit.deploy.quantize import photo_size_of

    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise: 60x40 stored, 40x60 upright
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif)
    sample = Sample("phone", "", tmp_path / "phone.jpg", None)
    assert photo_size_of(SimpleNamespace(samples=[sample])) == (60, 40)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    with pytest.raises(UserError) as error:
        photo_size_of(SimpleNamespace(samples=[Sample("broken", "", tmp_path / "broken.jpg", None)]))
    assert "\n" not in str(error.value) and "broken.jpg" in str(error.value)
