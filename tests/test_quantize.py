"""segkit.deploy.quantize and tools/quantize.py: int8 graphs (OpenVINO through NNCF, LiteRT through the AI Edge
Quantizer) of a briefly trained model, scored against the float model on the synthetic val split and kept only
within the gate; the int8 backends in eval and auto; each bad input in one line with nothing left behind."""
import json
import sys

import cv2
import numpy as np
import pytest

import segkit.deploy.quantize as quantize_module
from segkit.config import Config, DataConfig, ModelConfig, TrainConfig
from segkit.data.synthetic import make_synthetic
from segkit.deploy.quantize import calibration_photos
from segkit.deploy.quantized import QuantizedGraphs, quantized_dir
from segkit.engine.trainer import train
from segkit.errors import UserError
from segkit.predict import Predictor

pytest.importorskip("nncf", reason="needs the optional extra .[quantize] (make test installs it)")
pytest.importorskip("litert_torch", reason="needs the optional extra .[mobile] (make test installs it)")

HEIGHT, WIDTH = 128, 256


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


def test_a_graph_over_the_gate_leaves_nothing(trained, tool, capsys, tmp_path, monkeypatch):
    checkpoint, _ = trained
    real = quantize_module._miou
    calls = []

    def worse_int8(predict, job):  # the float model first, then each int8 graph 2 points under it
        scores = real(predict, job)
        calls.append(scores)
        return scores if len(calls) == 1 else {r: v - 2.0 for r, v in scores.items()}

    monkeypatch.setattr(quantize_module, "_miou", worse_int8)
    out_dir = tmp_path / "int8"
    code, out, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--format", "openvino", "--out",
                              str(out_dir), "--resolution", "full")
    assert code == 1 and "float model: mIoU" in out and "drop +2." in out
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--max-drop 1" in errors[0] and "nothing written" in errors[0]
    assert not out_dir.exists() and not list(tmp_path.glob(".int8*"))


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

    def reject(*args, **kwargs):
        raise RuntimeError("failed to legalize operation 'tfl.custom'\nmore lines")

    monkeypatch.setattr(litert_torch, "convert", reject)
    code, _, err = quantize(tool, capsys, checkpoint, "--calib", "train", "--format", "litert", "--out",
                            str(out_dir))
    assert code == 2 and err.count("\n") == 1 and "LiteRT's converter rejected the graph" in err
    assert "failed to legalize operation" in err
    assert not out_dir.exists() and not list(tmp_path.glob(".out*"))


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
