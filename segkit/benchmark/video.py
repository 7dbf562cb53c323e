"""Video end to end (``tools/benchmark.py --video``): a generated 1024x2048 clip through ``segment_video`` (decode,
network, label map, overlay, encode, in their threads) against ``Predictor.predict`` alone on the same decoded
frames, per backend -- what the video path loses to decoding, encoding and waiting."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from torch import nn

from segkit.benchmark.backends import backend_predictors
from segkit.config import Config
from segkit.data.synthetic import generate_scene
from segkit.video import CITYSCAPES_FPS, VideoOptions, open_video, segment_video

CLIP_SIZE = (1024, 2048)  # a Cityscapes frame
CLIP_FRAMES = 24
PAN_STEP = 16  # pixels the camera moves per frame: every frame differs, as on the road


def make_clip(path, frames: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE, fps: float = CITYSCAPES_FPS):
    """A dashcam stand-in: an mp4 of a camera panning across a generated street scene."""
    height, width = size
    scene, _ = generate_scene(height, width + PAN_STEP * frames, np.random.default_rng(0))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for index in range(frames):
        writer.write(cv2.cvtColor(scene[:, PAN_STEP * index: PAN_STEP * index + width], cv2.COLOR_RGB2BGR))
    writer.release()
    return Path(path)


def decode(path) -> list[np.ndarray]:
    """Every frame of a video file as OpenCV decodes it, RGB: what the video path sees."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            capture.release()
            return frames
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))


def video_rates(predictor, clip: Path, resolution: str, repeats: int) -> dict:
    """Frames/s of ``predictor.predict`` on the clip's frames (decoded beforehand) and of ``segment_video`` on the
    clip file (opening it included), alternating, medians of ``repeats``; one untimed call builds the graph."""
    frames = decode(clip)
    predictor.predict(frames[0], resolution)
    single, end_to_end, network = [], [], []
    with tempfile.TemporaryDirectory(prefix="segkit-video-") as out:
        for _ in range(repeats):
            start = time.perf_counter()
            for frame in frames:
                predictor.predict(frame, resolution)
            single.append(len(frames) / (time.perf_counter() - start))
            start = time.perf_counter()
            report = segment_video(open_video(clip), predictor, out, VideoOptions(resolution), progress=False)
            end_to_end.append(report.frames / (time.perf_counter() - start))
            network.append(report.predict_fps)
    single_fps, video_fps = statistics.median(single), statistics.median(end_to_end)
    return {"single_image_fps": round(single_fps, 2), "video_fps": round(video_fps, 2),
            "predictor_fps_in_video": round(statistics.median(network), 2), "ratio": round(video_fps / single_fps, 3)}


def video_report(config: Config, backends, resolutions=("full", "half"), repeats: int = 3,
                 model: nn.Module | None = None, threads: int | None = None, frames: int = CLIP_FRAMES,
                 size: tuple[int, int] = CLIP_SIZE) -> dict:
    """backend -> resolution -> rates (``video_rates``) on a generated ``size`` clip; ``resolution`` is where the
    network runs (full: on the frame, half: on it downsampled by 2), as ``tools/infer.py --resolution``."""
    predictors = backend_predictors(config, backends, threads, model)
    with tempfile.TemporaryDirectory(prefix="segkit-clip-") as folder:
        clip = make_clip(Path(folder) / "clip.mp4", frames, size)
        rates = {name: {res: video_rates(predictor, clip, res, repeats) for res in resolutions}
                 for name, predictor in predictors.items()}
    return {"config": config.name, "clip": {"frames": frames, "height": size[0], "width": size[1]},
            "repeats": repeats, "threads": threads, "trained_weights": model is not None, "video": rates}


def video_text(record: dict, default: str) -> str:
    """The report as a table: frames/s of single images and of the video path, and their ratio."""
    clip = record["clip"]
    lines = [f"{record['config']} ({'trained' if record['trained_weights'] else 'random'} weights): a "
             f"{clip['frames']}-frame {clip['height']}x{clip['width']} clip, median of {record['repeats']} runs, "
             f"{record['threads']} network threads",
             f"{'backend':<16}{'network at':>12}{'single image':>16}{'video':>14}{'ratio':>8}"
             f"{'predictor in video':>22}"]
    lines.append("-" * len(lines[-1]))
    for name, per in record["video"].items():
        for res, rates in per.items():
            lines.append(f"{name + (' *' if name == default else ''):<16}{res:>12}"
                         f"{rates['single_image_fps']:>10.2f} fps{rates['video_fps']:>10.2f} fps"
                         f"{rates['ratio']:>7.2f}x{rates['predictor_fps_in_video']:>16.2f} fps")
    lines += ["", "single image = Predictor.predict on the decoded frames, one after another; video = segment_video "
              "on the file (decode, predict, overlay, encode an mp4); ratio = video / single image; * = the default "
              "backend (auto)."]
    return "\n".join(lines)
