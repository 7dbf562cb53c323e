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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from tqdm import tqdm

from segkit.data.classes import ClassTable
from segkit.data.images import read_image
from segkit.deploy.photos import overlay
from segkit.errors import UserError, quiet_native_stderr
from segkit.fileio import write_png
from segkit.resolutions import resolution as check_resolution

if TYPE_CHECKING:  # the Predictor (PyTorch) is the caller's: this module's options and sources import no torch
    from segkit.predict import Predictor

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
            yield Frame(index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"{Path(self.name).name}_{index:06d}")
            ok, frame = self.capture.read()
            frame, index = (frame if ok else None), index + 1

    def close(self) -> None:
        self.capture.release()


def open_video(path, name: str | None = None) -> CaptureSource:
    """A video file as frames; ``name``: the stem of its outputs (default the file's; ``output_names`` keeps the
    outputs of files that share a stem apart, e.g. "day/clip")."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file does not exist")
    with quiet_native_stderr():
        capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise UserError(f"{path}: OpenCV cannot open it as a video (not a video, or a codec its FFmpeg lacks); "
                        "convert it, e.g. to H.264 .mp4.")
    return CaptureSource(capture, name or path.stem, str(path))


def open_camera(index: int) -> CaptureSource:
    with quiet_native_stderr():
        capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        raise UserError(f"camera {index} does not exist or cannot be opened; check camera={index} (0 is the first).",
                        "camera")
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

@dataclass(frozen=True)
class VideoOptions:
    """How a video is segmented: ``resolution`` of the network; the predictor runs on every ``every``-th frame
    (the frames between keep its labels); at most ``max_frames``; the mask blended with ``alpha``; ``smooth`` > 0
    averages the low-resolution logits over time (that share of the past kept per frame); ``save_labels`` writes
    one labelIds PNG per frame; ``show`` opens a window where a display exists."""

    resolution: str = "full"
    every: int = 1
    max_frames: int | None = None
    alpha: float = 0.5
    smooth: float = 0.0
    save_labels: bool = False
    show: bool = False

    def __post_init__(self):
        check_resolution(self.resolution)
        if self.every < 1:
            raise UserError(f"every={self.every} must be at least 1.", "every")
        if self.max_frames is not None and self.max_frames < 1:
            raise UserError(f"max_frames={self.max_frames} must be at least 1.", "max_frames")
        if not 0 <= self.alpha <= 1:
            raise UserError(f"alpha={self.alpha} must lie in [0, 1].", "alpha")
        if not 0 <= self.smooth < 1:
            raise UserError(f"smooth={self.smooth} must lie in [0, 1): the share of the past kept per frame.",
                            "smooth")


@dataclass
class VideoReport:
    output: Path  # the overlay video
    frames: int  # written to it
    segmented: int  # frames the predictor ran on (every ``every``-th)
    seconds: float  # end to end
    predict_seconds: float  # in the predictor alone
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)  # what the caller may want to tell the user (no display, ...)

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
            raise UserError(f"smooth={strength} must lie in [0, 1): the share of the past kept per frame.", "smooth")
        self.strength, self.average = strength, None

    def __call__(self, logits):
        if self.average is None or self.average.shape != logits.shape:
            self.average = logits.clone()
        else:
            self.average.mul_(self.strength).add_(logits, alpha=1 - self.strength)
        return self.average


def segment_video(source: FrameSource, predictor: Predictor, out_dir, options: VideoOptions = VideoOptions(),
                  progress: bool = True) -> VideoReport:
    """Segment ``source`` into ``out_dir/<name>_overlay.mp4`` (same frame rate and size), with
    ``options.save_labels`` one labelIds PNG per frame in ``out_dir/<name>_labelIds/``. Ctrl-C (or SIGTERM, made
    a KeyboardInterrupt by the caller) ends the run early with a playable video of what was done."""
    out_dir = Path(out_dir)
    writer = VideoWriterThread(out_dir / f"{source.name}_overlay.mp4", source.fps, source.size, options.alpha,
                               out_dir / f"{source.name}_labelIds" if options.save_labels else None, predictor.table)
    reader = ReaderThread(source, options.max_frames)
    window, notes = show_window(options.show)
    bar = tqdm(total=min(filter(None, (source.count, options.max_frames)), default=None), unit="frame",
               disable=not progress, dynamic_ncols=True)
    start, interrupted, tally = time.perf_counter(), False, Tally()
    try:
        _run(reader, writer, predictor, options, window, bar, tally)
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
    return VideoReport(writer.path, frames, tally.segmented, time.perf_counter() - start, tally.predict_seconds,
                       interrupted, notes)


@dataclass
class Tally:
    """What the predictor did so far (kept when the run is interrupted)."""

    segmented: int = 0
    predict_seconds: float = 0.0


def _run(reader, writer, predictor: Predictor, options: VideoOptions, window, bar, tally: Tally) -> None:
    """The frames through the predictor into the writer, counted in ``tally``."""
    smoother = Smoother(options.smooth) if options.smooth else None
    labels = None
    for frame in reader:
        if frame.index % options.every == 0 or labels is None:
            began = time.perf_counter()
            if smoother is None:
                labels = predictor.predict(frame.image, options.resolution)
            else:
                logits, plan = predictor.logits(frame.image, options.resolution)
                from segkit.deploy.labelmap import label_map

                labels = label_map(smoother(logits), plan).numpy()
            tally.predict_seconds += time.perf_counter() - began
            tally.segmented += 1
        writer.put(frame, labels)
        if window:
            cv2.imshow(window, cv2.cvtColor(overlay(frame.image, labels, options.alpha, predictor.table),
                                            cv2.COLOR_RGB2BGR))
            cv2.waitKey(1)
        bar.update(1)


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

    def __init__(self, path: Path, fps: float, size: tuple[int, int], alpha: float, labels_dir: Path | None,
                 table: ClassTable | None = None):
        self.path, self.alpha, self.labels_dir = path, alpha, labels_dir
        self.table = table or ClassTable.cityscapes()  # the model's classes: colours and mask values
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
            raise UserError(f"cannot write to out={str(path.parent)!r} ({exc.strerror}); choose another folder.",
                            "out") from None
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
                self.writer.write(cv2.cvtColor(overlay(frame.image, labels, self.alpha, self.table),
                                               cv2.COLOR_RGB2BGR))
                if self.labels_dir is not None:
                    write_png(self.labels_dir / f"{frame.name}_labelIds.png", self.table.to_values(labels))
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


def show_window(show: bool) -> tuple[str | None, list[str]]:
    """(a window's name, notes): a window where ``show`` is asked and a display exists; otherwise None, and with
    ``show`` a note saying so."""
    if not show:
        return None, []
    try:
        cv2.namedWindow("segkit", cv2.WINDOW_NORMAL)
        return "segkit", []
    except cv2.error:
        return None, ["no display here (or OpenCV without a GUI): the window is not shown; the video is written "
                      "as usual."]
