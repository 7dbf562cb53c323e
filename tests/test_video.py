"""segkit.video: a clip (a moving crop of the synthetic city) to an overlay video of its frame count, size and
rate, each frame's labels those of Predictor.predict on that frame; --every, --max-frames, frame sequences,
smoothing, and each bad input in one sentence with no file left behind."""
import cv2
import numpy as np
import pytest
import torch

from segkit.data.labels import to_label_ids
from segkit.predict import Predictor
from segkit.video import Smoother, StillsSource, VideoOptions, open_camera, open_video, segment_video
from segkit.errors import UserError

FRAMES, HEIGHT, WIDTH = 10, 96, 160


@pytest.fixture
def clip(clips, tmp_path):
    return clips.write(tmp_path / "clip.mp4", clips.frames(FRAMES))


@pytest.fixture
def predictor(small_checkpoint):
    return Predictor.from_model(small_checkpoint[1], backend="torch")


def saved_labels(folder, names):
    return [cv2.imread(str(folder / f"{name}_labelIds.png"), cv2.IMREAD_UNCHANGED) for name in names]


def test_overlay_video_keeps_count_size_and_rate_and_each_frames_labels(clip, clips, predictor, tmp_path):
    report = segment_video(open_video(clip), predictor, tmp_path / "out", VideoOptions(save_labels=True),
                           progress=False)
    assert report.output == tmp_path / "out" / "clip_overlay.mp4" and report.frames == report.segmented == FRAMES
    assert clips.facts(report.output) == (FRAMES, 10.0, HEIGHT, WIDTH)
    frames = clips.decoded(clip)
    labels = saved_labels(tmp_path / "out" / "clip_labelIds", [f"clip_{i:06d}" for i in range(FRAMES)])
    for frame, got in zip(frames, labels):
        assert np.array_equal(got, to_label_ids(predictor.predict(frame)))
    assert not list((tmp_path / "out").glob(".*"))  # the temporary file was renamed


def test_every_nth_frame_and_max_frames(clip, clips, predictor, tmp_path):
    report = segment_video(open_video(clip), predictor, tmp_path, VideoOptions(every=3, max_frames=7,
                                                                               save_labels=True), progress=False)
    assert (report.frames, report.segmented) == (7, 3)  # frames 0, 3 and 6 segmented
    assert clips.facts(report.output)[0] == 7
    frames = clips.decoded(clip)
    labels = saved_labels(tmp_path / "clip_labelIds", [f"clip_{i:06d}" for i in range(7)])
    for index, got in enumerate(labels):
        assert np.array_equal(got, to_label_ids(predictor.predict(frames[3 * (index // 3)]))), index


def test_frame_sequence_input(clips, predictor, tmp_path):
    folder = tmp_path / "stuttgart_00"
    folder.mkdir()
    frames = clips.frames(4)
    paths = []
    for index, frame in enumerate(frames):
        paths.append(folder / f"stuttgart_00_000000_{index:06d}_leftImg8bit.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    report = segment_video(StillsSource(paths, "stuttgart_00", fps=17.0), predictor, tmp_path / "out",
                           VideoOptions(save_labels=True), progress=False)
    assert report.output.name == "stuttgart_00_overlay.mp4"
    assert clips.facts(report.output) == (4, 17.0, HEIGHT, WIDTH)
    labels = saved_labels(tmp_path / "out" / "stuttgart_00_labelIds", [p.stem for p in paths])
    for frame, got in zip(frames, labels):  # lossless stills: exactly the photos' labels
        assert np.array_equal(got, to_label_ids(predictor.predict(frame)))


def test_smoothing_averages_logits_over_time(clips, predictor, tmp_path):
    smoother = Smoother(0.75)
    first, second = torch.zeros(1, 2, 3, 3), torch.ones(1, 2, 3, 3)
    assert torch.equal(smoother(first), first) and torch.allclose(smoother(second), 0.25 * second)
    with pytest.raises(UserError, match="smooth=1.0 must lie in"):
        Smoother(1.0)
    with pytest.raises(UserError, match="smooth=1.0 must lie in"):
        VideoOptions(smooth=1.0)
    still = clips.write(tmp_path / "still.avi", [clips.frames(1)[0]] * 4, fourcc="MJPG")
    plain = segment_video(open_video(still), predictor, tmp_path / "a", VideoOptions(save_labels=True),
                          progress=False)
    calm = segment_video(open_video(still), predictor, tmp_path / "b", VideoOptions(smooth=0.5, save_labels=True),
                         progress=False)
    assert plain.frames == calm.frames == 4
    names = [f"still_{i:06d}" for i in range(4)]
    for a, b in zip(saved_labels(tmp_path / "a" / "still_labelIds", names),
                    saved_labels(tmp_path / "b" / "still_labelIds", names)):
        assert (a == b).mean() > 0.999  # the same frame over and over: the average is that frame's logits
    # A scene cut: with most of the past kept, the frame after the cut still shows the scene before it.
    first, cut = clips.frames(1)[0], np.ascontiguousarray(clips.frames(1)[0][::-1, ::-1])
    clip = clips.write(tmp_path / "cut.avi", [first, first, cut], fourcc="MJPG")
    segment_video(open_video(clip), predictor, tmp_path / "c", VideoOptions(smooth=0.9, save_labels=True),
                  progress=False)
    smoothed_cut, = saved_labels(tmp_path / "c" / "cut_labelIds", ["cut_000002"])
    before, after = (to_label_ids(predictor.predict(frame)) for frame in clips.decoded(clip)[1:])
    assert (smoothed_cut == before).mean() > (smoothed_cut == after).mean()


def test_bad_inputs_are_one_sentence_and_leave_nothing(predictor, tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(UserError, match="OpenCV cannot open it as a video"):
        open_video(tmp_path / "notes.mp4")
    empty = cv2.VideoWriter(str(tmp_path / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    empty.release()
    with pytest.raises(UserError, match="holds no frames"):
        open_video(tmp_path / "empty.avi")
    with pytest.raises(UserError, match="file does not exist"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(UserError, match="camera 99 does not exist"):
        open_camera(99)
    paths = []
    for index, (height, width) in enumerate(((HEIGHT, WIDTH), (HEIGHT, WIDTH), (HEIGHT + 8, WIDTH))):
        paths.append(tmp_path / f"f{index}.png")
        cv2.imwrite(str(paths[-1]), np.zeros((height, width, 3), np.uint8))
    with pytest.raises(UserError, match="f2.png is 160x104 but .* first frame is 160x96"):
        segment_video(StillsSource(paths, "mixed"), predictor, tmp_path / "out", VideoOptions(save_labels=True),
                      progress=False)
    assert not list((tmp_path / "out").iterdir())  # no partial video under any name, no half-filled labels folder
    (tmp_path / "taken").write_text("a file where the folder should be")
    with pytest.raises(UserError, match="cannot write to out=.*taken"):
        segment_video(StillsSource(paths[:2], "two"), predictor, tmp_path / "taken", progress=False)
