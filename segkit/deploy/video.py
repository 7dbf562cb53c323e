"""Video: a clip, an ordered frame sequence or a camera through a ``Predictor``, into an overlay video.

Decoding runs in a reader thread and overlay + encoding in a writer thread, each behind a small bounded queue, so
the predictor (on the calling thread) runs at its own rate while the next frame is decoded and the last one
encoded. The overlay is written to a temporary file beside its final name and renamed when the run ends -- also
when it is interrupted (Ctrl-C, SIGTERM: the frames done so far, playable); an error removes it.
"""
from __future__ import annotations

import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from segkit.data.cityscapes import read_image
from segkit.data.labels import to_label_ids
from segkit.deploy.labelmap import label_map
from segkit.deploy.predictor import Predictor, overlay
from segkit.errors import UserError, quiet_native_stderr
from segkit.fileio import write_png

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
CITYSCAPES_FPS = 17.0  # the frame rate of Cityscapes' demoVideo sequences, for frame sequences without one
QUEUE_SIZE = 4  # frames between the threads: enough to absorb jitter, little memory at 1024x2048
_END = object()


@dataclass
class Frame:
    index: int
    image: np.ndarray  # RGB uint8 (H, W, 3)
    name: str  # the stem of this frame's own outputs (--save-labels)


class FrameSource:
    """Frames of one input, in order; ``name`` names the outputs, ``fps`` and ``size`` (height, width) the video."""

    name: str
    fps: float
    size: tuple[int, int]
    count: int | None  # frames in the input, where known

    def __iter__(self):
        raise NotImplementedError

    def close(self) -> None:
        pass


class CaptureSource(FrameSource):
    """A video file or a camera, through OpenCV's VideoCapture (whatever its FFmpeg reads)."""

    def __init__(self, capture: cv2.VideoCapture, name: str, what: str):
        self.capture, self.name, self.what = capture, name, what
        ok, first = capture.read()
        if not ok:
            capture.release()
            raise UserError(f"{what} holds no frames; pass a clip with at least one frame.")
        self.first = first
        self.size = first.shape[:2]
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 30.0  # cameras and some containers report none
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.count = count if count > 0 else None

    def __iter__(self):
        frame, index = self.first, 0
        while frame is not None:
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            yield Frame(index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{self.name}_{index:06d}")
            ok, frame = self.capture.read()
            frame, index = (frame if ok else None), index + 1

    def close(self) -> None:
        self.capture.release()


def open_video(path) -> CaptureSource:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file does not exist")
    with quiet_native_stderr():
        capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"{path}: OpenCV cannot open it as a video (not a video, or a codec its FFmpeg lacks); "
                        "convert it, e.g. to H.264 .mp4.")
    return CaptureSource(capture, path.stem, str(path))


def open_camera(index: int) -> CaptureSource:
    with quiet_native_stderr():
        capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise UserError(f"camera {index} does not exist or cannot be opened; check --camera (0 is the first).")
    return CaptureSource(capture, f"camera{index}", f"camera {index}")


class StillsSource(FrameSource):
    """An ordered sequence of image files (e.g. a Cityscapes demoVideo folder); every frame must have one size."""

    def __init__(self, paths: list[Path], name: str, fps: float = CITYSCAPES_FPS):
        if not paths:
            raise UserError(f"the frame sequence {name} holds no images.")
        self.paths, self.name, self.fps, self.count = paths, name, fps, len(paths)
        self.size = read_image(paths[0]).shape[:2]

    def __iter__(self):
        for index, path in enumerate(self.paths):
            image = read_image(path)
            if image.shape[:2] != self.size:
                raise UserError(f"frame {path} is {image.shape[1]}x{image.shape[0]} but the sequence's first frame "
                                f"is {self.size[1]}x{self.size[0]}; a video's frames must share one size.")
            yield Frame(index, image, path.stem)


# ---- the run -----------------------------------------------------------------------------------------------------

@dataclass
class VideoReport:
    output: Path  # the overlay video
    frames: int  # written to it
    segmented: int  # frames the predictor ran on (every --every-th)
    seconds: float  # end to end
    predict_seconds: float  # in the predictor alone
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / max(self.seconds, 1e-9)

    @property
    def predict_fps(self) -> float:
        return self.segmented / max(self.predict_seconds, 1e-9)


class Smoother:
    """An exponential moving average of the low-resolution logits, ``strength`` of the past kept per frame."""

    def __init__(self, strength: float):
        if not 0 <= strength < 1:
            raise UserError(f"--smooth {strength} must lie in [0, 1): the share of the past kept per frame.")
        self.strength, self.average = strength, None

    def __call__(self, logits):
        if self.average is None or self.average.shape != logits.shape:
            self.average = logits.clone()
        else:
            self.average.mul_(self.strength).add_(logits, alpha=1 - self.strength)
        return self.average


def segment_video(source: FrameSource, predictor: Predictor, out_dir, resolution: str = "full", every: int = 1,
                  max_frames: int | None = None, alpha: float = 0.5, smooth: float = 0.0,
                  save_labels: bool = False, show: bool = False, progress: bool = True) -> VideoReport:
    """Segment ``source`` into ``out_dir/<name>_overlay.mp4`` (same frame rate and size), with ``save_labels`` one
    labelIds PNG per frame in ``out_dir/<name>_labelIds/``. The predictor runs on every ``every``-th frame (the
    frames between keep its labels); ``smooth`` > 0 averages the low-resolution logits over time. Ctrl-C (or
    SIGTERM, made a KeyboardInterrupt by the caller) ends the run early with a playable video of what was done."""
    if every < 1 or (max_frames is not None and max_frames < 1) or not 0 <= alpha <= 1:
        raise UserError(f"--every {every} and --max-frames {max_frames} must be at least 1 and --alpha {alpha} in "
                        "[0, 1].")
    smoother = Smoother(smooth) if smooth else None
    out_dir = Path(out_dir)
    output = out_dir / f"{source.name}_overlay.mp4"
    writer = VideoWriterThread(output, source.fps, source.size, alpha,
                               out_dir / f"{source.name}_labelIds" if save_labels else None)
    reader = ReaderThread(source, max_frames)
    window = show_window(show)
    bar = tqdm(total=min(filter(None, (source.count, max_frames)), default=None), unit="frame",
               disable=not progress, dynamic_ncols=True)
    start, predicting, segmented, labels, interrupted = time.perf_counter(), 0.0, 0, None, False
    try:
        for frame in reader:
            if frame.index % every == 0 or labels is None:
                began = time.perf_counter()
                if smoother is None:
                    labels = predictor.predict(frame.image, resolution)
                else:
                    logits, steps = predictor.logits(frame.image, resolution)
                    labels = label_map(smoother(logits), steps).numpy()
                predicting += time.perf_counter() - began
                segmented += 1
            writer.put(frame, labels)
            if window:
                cv2.imshow(window, cv2.cvtColor(overlay(frame.image, labels, alpha), cv2.COLOR_RGB2BGR))
                cv2.waitKey(1)
            bar.update(1)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        reader.stop()
        writer.abort()
        raise
    finally:
        bar.close()
        reader.stop()
        if window:
            cv2.destroyAllWindows()
    frames = writer.finish()
    return VideoReport(output, frames, segmented, time.perf_counter() - start, predicting, interrupted)


class ReaderThread:
    """Decodes ahead of the predictor; iterating yields the frames, and a decoding error is raised here."""

    def __init__(self, source: FrameSource, max_frames: int | None):
        self.source, self.max_frames = source, max_frames
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="segkit-video-reader", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for frame in self.source:
                if self.stopping.is_set() or (self.max_frames is not None and frame.index >= self.max_frames):
                    break
                self._put(frame)
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
        finally:
            self.source.close()

    def _put(self, item) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self):
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)


class VideoWriterThread:
    """Overlays and encodes behind the predictor into a temporary file, renamed to ``path`` by ``finish``."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int], alpha: float, labels_dir: Path | None):
        self.path, self.alpha, self.labels_dir = path, alpha, labels_dir
        self.partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # the container follows the suffix
        self.new_labels_dir = labels_dir is not None and not labels_dir.exists()  # removed again on an error
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if labels_dir is not None:
                labels_dir.mkdir(exist_ok=True)
            probe = path.parent / f".{path.stem}.probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UserError(f"cannot write to {path.parent} ({exc.strerror}); choose another --out.") from None
        self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
        if not self.writer.isOpened():
            raise UserError(f"OpenCV cannot write an mp4 video to {self.partial}; check the folder and disk space.")
        self.frames, self.error = 0, None
        self.queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self.thread = threading.Thread(target=self._run, name="segkit-video-writer", daemon=True)
        self.thread.start()

    def put(self, frame: Frame, labels: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((frame, labels))

    def _run(self) -> None:
        while (item := self.queue.get()) is not _END:
            if self.error is not None:
                continue  # drain: the producer learns of the error at its next put
            frame, labels = item
            try:
                self.writer.write(cv2.cvtColor(overlay(frame.image, labels, self.alpha), cv2.COLOR_RGB2BGR))
                if self.labels_dir is not None:
                    write_png(self.labels_dir / f"{frame.name}_labelIds.png", to_label_ids(labels))
                self.frames += 1
            except BaseException as exc:
                self.error = exc

    def finish(self) -> int:
        """Encode what is queued, close the file and give it its final name; the number of frames written."""
        self.queue.put(_END)
        self.thread.join()
        self.writer.release()
        if self.error is not None:
            self._remove_outputs()
            raise self.error
        os.replace(self.partial, self.path)
        return self.frames

    def abort(self) -> None:
        """An error elsewhere: stop, and leave no file behind."""
        self.error = self.error or UserError("aborted")
        self.queue.put(_END)
        self.thread.join()
        self.writer.release()
        self._remove_outputs()

    def _remove_outputs(self) -> None:
        self.partial.unlink(missing_ok=True)
        if self.new_labels_dir:
            shutil.rmtree(self.labels_dir, ignore_errors=True)


_display_said = False


def show_window(show: bool) -> str | None:
    """A window's name where ``show`` is asked and a display exists; otherwise None, said once per process."""
    global _display_said
    if not show:
        return None
    try:
        cv2.namedWindow("segkit", cv2.WINDOW_NORMAL)
        return "segkit"
    except cv2.error:
        if not _display_said:
            print("no display here (or OpenCV without a GUI): --show is ignored; the video is written as usual.")
            _display_said = True
        return None
