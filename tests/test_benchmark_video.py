"""segkit.benchmark.video: the generated clip, and the video path's frames/s beside the single-image path's."""
import functools
import json

import pytest

import segkit.benchmark.video as benchmark_video
from segkit.config import Config, ModelConfig


def test_make_clip_pans_over_a_street_scene(tmp_path, clips):
    clip = benchmark_video.make_clip(tmp_path / "clip.mp4", frames=5, size=(96, 160), fps=17.0)
    assert clips.facts(clip) == (5, 17.0, 96, 160)
    frames = benchmark_video.decode(clip)
    assert len(frames) == 5 and frames[0].shape == (96, 160, 3)
    # the camera moves: each frame is the last one shifted by PAN_STEP pixels, not a copy of it
    step = benchmark_video.PAN_STEP
    shifted = abs(frames[1][:, :-step].astype(int) - frames[0][:, step:]).mean()
    assert shifted < abs(frames[1].astype(int) - frames[0]).mean() / 2


def test_video_report_rates_and_ratio():
    config = Config(name="tiny", model=ModelConfig(backbone="mobilenet_v3_small"))
    record = benchmark_video.video_report(config, ("torch", "onnxruntime"), ("half",), repeats=1, threads=2,
                                          frames=3, size=(96, 160))
    assert record["clip"] == {"frames": 3, "height": 96, "width": 160} and record["config"] == "tiny"
    assert set(record["video"]) == {"torch", "onnxruntime"}
    for per in record["video"].values():
        rates = per["half"]
        assert rates["single_image_fps"] > 0 and rates["video_fps"] > 0 and rates["predictor_fps_in_video"] > 0
        assert rates["ratio"] == pytest.approx(rates["video_fps"] / rates["single_image_fps"], abs=0.01)
    text = benchmark_video.video_text(record, "torch")
    assert "torch *" in text and "onnxruntime " in text and f"{record['video']['torch']['half']['ratio']:.2f}x" in text


def test_tool_video_flag(tool, monkeypatch, capsys):
    benchmark = tool("benchmark")
    monkeypatch.setattr(benchmark, "video_report",
                        functools.partial(benchmark_video.video_report, frames=2, size=(96, 160)))
    benchmark.main(["--video", "configs/lraspp_small.py", "--backend", "torch", "--resolution", "half", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert record["config"] == "lraspp_small" and record["repeats"] == 3 and list(record["video"]) == ["torch"]
    assert list(record["video"]["torch"]) == ["half"]
