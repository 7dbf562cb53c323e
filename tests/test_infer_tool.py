"""tools/infer.py end to end, in a scratch working directory (the default-checkpoint rule looks at ./runs)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from segkit.config import Config, ModelConfig
from segkit.deploy.backends import cpu_has_bf16
from segkit.checkpoint import save_checkpoint
from segkit.models import build_model

ROOT = Path(__file__).resolve().parents[1]


def infer(cwd, *args):
    return subprocess.run([sys.executable, str(ROOT / "tools" / "infer.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def make_checkpoint(path, mtime=None):
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small"))
    save_checkpoint(path, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                           "iteration": 0})
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def write_photo(path, height=48, width=80):
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.fixture
def workdir(tmp_path):
    make_checkpoint(tmp_path / "runs" / "old" / "best.pt", mtime=1_000_000)
    make_checkpoint(tmp_path / "runs" / "new" / "best.pt", mtime=2_000_000)
    write_photo(tmp_path / "good.png")
    return tmp_path


def test_newest_checkpoint_and_failing_files(workdir):
    (workdir / "notimage.png").write_text("this is text")
    png = (workdir / "good.png").read_bytes()
    (workdir / "truncated.png").write_bytes(png[: len(png) // 2])
    result = infer(workdir, "good.png", "missing.png", "notimage.png", "truncated.png", "--backend", "torch")
    assert result.returncode == 1
    assert f"newest checkpoint {Path('runs/new/best.pt')}" in result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3 and "libpng" not in result.stderr and "Traceback" not in result.stderr
    assert "missing.png" in errors[0] and "does not exist" in errors[0]
    assert "notimage.png" in errors[1] and "truncated.png" in errors[2]
    out = workdir / "runs" / "new" / "infer"
    assert sorted(p.name for p in out.iterdir()) == ["good_color.png", "good_labelIds.png", "good_overlay.png"]
    label_ids = cv2.imread(str(out / "good_labelIds.png"), cv2.IMREAD_UNCHANGED)
    assert label_ids.shape == (48, 80) and label_ids.dtype == np.uint8
    assert cv2.imread(str(out / "good_overlay.png")).shape == (48, 80, 3)
    assert "1 of 4 inputs segmented" in result.stdout and " ms" in result.stdout


def test_folder_and_glob_to_out_with_onnxruntime(workdir):
    (workdir / "shots" / "a").mkdir(parents=True)
    write_photo(workdir / "shots" / "a" / "x.png")
    write_photo(workdir / "shots" / "y.jpg", 64, 96)
    result = infer(workdir, "shots", "*.png", "--checkpoint", "runs/old/best.pt", "--out", "o",
                   "--resolution", "half", "--backend", "onnxruntime")
    assert result.returncode == 0, result.stderr
    assert "newest" not in result.stdout and "backend onnxruntime" in result.stdout
    names = sorted(p.name for p in (workdir / "o").iterdir())
    assert len(names) == 9 and {"x_color.png", "y_overlay.png", "good_labelIds.png"} <= set(names)


def test_no_checkpoint_takes_the_authors_model_and_offline_says_how_to_get_it(tmp_path, monkeypatch):
    # no --checkpoint and no runs here: the authors' model, fetched by name -- here from an empty mirror folder,
    # as on a machine without network (tests/test_weights.py serves the real thing)
    (tmp_path / "mirror").mkdir()
    monkeypatch.setenv("SEGKIT_WEIGHTS_MIRROR", str(tmp_path / "mirror"))
    write_photo(tmp_path / "good.png")
    result = infer(tmp_path, "good.png")
    assert "using the authors' mnv3-large-cityscapes" in result.stdout
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "SEGKIT_WEIGHTS_MIRROR" in result.stderr and "tools/weights.py import" in result.stderr


def test_inputs_sharing_a_name_all_get_outputs(workdir):
    for name, size in (("a.png", (48, 80)), ("a.jpg", (56, 80)), ("a_1.png", (64, 80))):
        write_photo(workdir / name, *size)
    result = infer(workdir, "a.png", "a.jpg", "a_1.png", "a.png", "--backend", "torch", "--out", "o")
    assert result.returncode == 0, result.stderr
    out = workdir / "o"
    sizes = {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED).shape for p in out.glob("*_labelIds.png")}
    assert sizes == {"a_png_labelIds.png": (48, 80), "a_jpg_labelIds.png": (56, 80), "a_1_labelIds.png": (64, 80)}
    assert "3 of 3 inputs segmented" in result.stdout  # a.png named twice is segmented once


def test_infer_writes_labels_the_shape_a_viewer_shows(workdir):
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # stored 80 wide and 48 high, shown turned a quarter clockwise: 48 wide, 80 high
    Image.fromarray(np.zeros((48, 80, 3), np.uint8)).save(workdir / "phone.jpg", exif=exif)
    result = infer(workdir, "phone.jpg", "--backend", "torch", "--out", "o")
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(workdir / "o" / "phone_labelIds.png"), cv2.IMREAD_UNCHANGED).shape == (80, 48)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"]
                         + (["openvino-bf16"] if cpu_has_bf16() else []))
def test_odd_photo_sizes_at_half_resolution_on_every_backend(workdir, backend):
    for name, size in (("p375.png", (375, 500)), ("p1023.png", (1023, 2047)), ("p99.png", (99, 99))):
        write_photo(workdir / name, *size)
    result = infer(workdir, "p375.png", "p1023.png", "p99.png", "--resolution", "half", "--backend", backend,
                   "--out", "o")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    for name, size in (("p375", (375, 500)), ("p1023", (1023, 2047)), ("p99", (99, 99))):
        assert cv2.imread(str(workdir / "o" / f"{name}_labelIds.png"), cv2.IMREAD_UNCHANGED).shape == size


# ---- video ---------------------------------------------------------------------------------------------------------

def test_clip_and_frame_sequence_to_overlay_videos(workdir, clips):
    clips.write(workdir / "clip.mp4", clips.frames(8))
    result = infer(workdir, "clip.mp4", "--backend", "torch", "--out", "o", "--save-labels", "--every", "2")
    assert result.returncode == 0, result.stderr
    assert clips.facts(workdir / "o" / "clip_overlay.mp4") == (8, 10.0, 96, 160)
    assert len(list((workdir / "o" / "clip_labelIds").glob("clip_*_labelIds.png"))) == 8
    assert "8 frames -> " in result.stdout and "frames/s end to end" in result.stdout
    assert "(4 frames segmented)" in result.stdout
    (workdir / "seq").mkdir()
    for index, frame in enumerate(clips.frames(5)):
        cv2.imwrite(str(workdir / "seq" / f"f{index:03d}.png"), frame[:, :, ::-1])
    result = infer(workdir, "seq/*.png", "--video", "--fps", "5", "--max-frames", "3", "--backend", "torch",
                   "--out", "o", "--show")
    assert result.returncode == 0, result.stderr
    assert clips.facts(workdir / "o" / "seq_overlay.mp4") == (3, 5.0, 96, 160)
    assert not list((workdir / "o").glob("seq_labelIds"))  # labels only with --save-labels
    if not os.environ.get("DISPLAY"):
        assert result.stdout.count("no display here") == 1


def test_videos_sharing_a_name_all_get_outputs(workdir, clips):
    # day/clip.mp4 and night/clip.mp4 both wrote clip_overlay.mp4 (and their labels into one folder)
    for folder, count in (("day", 3), ("night", 4)):
        (workdir / folder).mkdir()
        clips.write(workdir / folder / "clip.mp4", clips.frames(count))
    result = infer(workdir, "day/clip.mp4", "night/clip.mp4", "--backend", "torch", "--out", "o", "--save-labels")
    assert result.returncode == 0, result.stderr
    for folder, count in (("day", 3), ("night", 4)):
        assert clips.facts(workdir / "o" / folder / "clip_overlay.mp4")[0] == count
        assert len(list((workdir / "o" / folder / "clip_labelIds").glob("clip_*_labelIds.png"))) == count


def test_bad_video_inputs_fail_in_one_line(workdir, clips, tool, capfd):
    (workdir / "notes.mp4").write_text("not a video")
    (workdir / "mixed").mkdir()
    for index, height in enumerate((96, 96, 104)):
        cv2.imwrite(str(workdir / "mixed" / f"f{index}.png"), np.zeros((height, 160, 3), np.uint8))
    clips.write(workdir / "clip.mp4", clips.frames(3))
    (workdir / "taken").write_text("a file where the output folder should be")
    main = tool("infer").main
    cases = [(("notes.mp4",), 1, "OpenCV cannot open it as a video"),
             (("--camera", "99"), 1, "camera 99 does not exist"),
             (("mixed", "--video"), 2, "first frame is 160x96"),
             (("clip.mp4", "--every", "0"), 2, "--every 0"),
             (("clip.mp4", "--out", "taken/sub"), 2, "taken")]
    for args, status, message in cases:
        out = () if "--out" in args else ("--out", str(workdir / "o"))
        argv = [str(workdir / a) if a.endswith((".mp4", "mixed", "sub")) else a for a in args]
        try:
            code = main([*argv, *out, "--backend", "torch", "--checkpoint", str(workdir / "runs/new/best.pt")])
        except SystemExit as exit_:
            code = exit_.code
        stderr = capfd.readouterr().err  # the process's stderr, where FFmpeg and OpenCV would print
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        assert code == status and len(errors) == 1 and message in errors[0], (args, stderr)
        assert not any(noise in stderr for noise in ("moov atom", "WARN", "Traceback")), stderr
    assert not [p for p in (workdir / "o").rglob("*") if "overlay" in p.name]  # no video, partial or whole


def test_interrupted_video_is_playable(workdir, clips):
    """SIGTERM mid-run: exit 130, the frames done so far under the final name, playable; no temporary file."""
    total = 2000
    frames = clips.frames(25)
    clips.write(workdir / "long.avi", [frames[i % 25] for i in range(total)], fourcc="MJPG")
    process = subprocess.Popen([sys.executable, str(ROOT / "tools" / "infer.py"), "long.avi", "--backend", "torch",
                                "--out", "o"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    partial = workdir / "o" / ".long_overlay.partial.mp4"
    deadline = time.monotonic() + 240
    while not (partial.exists() and partial.stat().st_size > 50_000) and process.poll() is None:
        assert time.monotonic() < deadline, "the video run never started writing"
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted:" in stdout and "Traceback" not in stderr
    assert not partial.exists()
    count, fps, height, width = clips.facts(workdir / "o" / "long_overlay.mp4")
    assert 0 < count < total and (fps, height, width) == (10.0, 96, 160)
    assert len(clips.decoded(workdir / "o" / "long_overlay.mp4")) == count  # every frame decodes
    assert f"interrupted: {count} frames" in stdout
