"""segkit.engine.runlog: windows of the training loss, the rate each step used, trimming on resume, curves, and
TensorBoard's event files (tags, steps, a resumed stream, a missing tensorboard)."""
import json
import sys

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from segkit.data.classes import ClassTable
from segkit.engine.runlog import (RunLog, plot_curves, read_log, remove_events, side_by_side, trim_log,
                                  validation_scalars)
from segkit.metrics import Scores


def events(work_dir) -> EventAccumulator:
    accumulator = EventAccumulator(str(work_dir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def steps(accumulator, tag):
    return [(event.step, event.value) for event in accumulator.Scalars(tag)]


def test_windows_average_the_loss_and_keep_the_steps_rate(tmp_path):
    log = RunLog(tmp_path, enabled=True, every=2)
    records = [log.step(i, loss, lr, last=i == 5, data_time=0.1 * i) for i, (loss, lr) in enumerate(
        [(4.0, 0.1), (2.0, 0.09), (1.0, 0.08), (3.0, 0.07), (5.0, 0.06)], start=1)]
    assert records[0] is None and records[2] is None
    assert [(r["iteration"], r["loss"], r["lr"]) for r in records if r] == [(2, 3.0, 0.09), (4, 2.0, 0.07),
                                                                             (5, 5.0, 0.06)]
    assert [r["data_time"] for r in records if r] == pytest.approx([0.15, 0.35, 0.5])
    log.write({"iteration": 4, "val_miou": 12.5})
    log.close()
    assert [r["iteration"] for r in read_log(tmp_path / "log.jsonl")] == [2, 4, 5, 4]
    written = events(tmp_path)
    assert set(written.Tags()["scalars"]) == {"train/loss", "train/lr", "train/it_per_s", "train/data_time"}
    assert steps(written, "train/loss") == [(2, 3.0), (4, 2.0), (5, 5.0)]
    assert [s for s, _ in steps(written, "train/data_time")] == [2, 4, 5]


def test_only_rank_0_writes(tmp_path):
    log = RunLog(tmp_path, enabled=False, every=1)
    log.step(1, 1.0, 0.1, last=True)
    log.write({"iteration": 1, "val_miou": 1.0})
    log.scalars(1, {"val/miou": 1.0})
    assert not (tmp_path / "log.jsonl").exists() and not (tmp_path / "tensorboard").exists()


def test_a_resumed_run_continues_the_event_stream_without_the_interrupted_steps(tmp_path):
    # The first process got to iteration 4 (a validation there too) but its last checkpoint is at 2.
    first = RunLog(tmp_path, enabled=True, every=1)
    for i in range(1, 5):
        first.step(i, 10.0 + i, 0.1, last=False)
    first.scalars(2, {"val/miou": 1.0})
    first.scalars(4, {"val/miou": 4.0})
    first.close()
    resumed = RunLog(tmp_path, enabled=True, every=1, start=2)
    for i in range(3, 7):
        resumed.step(i, 20.0 + i, 0.1, last=False)
    resumed.scalars(6, {"val/miou": 6.0})
    resumed.close()
    written = events(tmp_path)
    assert steps(written, "train/loss") == [(1, 11.0), (2, 12.0), (3, 23.0), (4, 24.0), (5, 25.0), (6, 26.0)]
    # Validation's tag is written again only at 6: purge_step, not the reader's per-tag guess, drops step 4.
    assert steps(written, "val/miou") == [(2, 1.0), (6, 6.0)]
    remove_events(tmp_path)  # a new run in the same folder starts a new stream
    assert not list((tmp_path / "tensorboard").iterdir())


def test_without_tensorboard_training_logs_on_and_says_so_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    log = RunLog(tmp_path, enabled=True, every=1)
    for i in range(1, 4):
        log.step(i, 1.0, 0.1, last=i == 3)
    log.scalars(3, {"val/miou": 1.0})
    log.pictures(3, {"val/overlay_full/0": np.zeros((4, 8, 3), np.uint8)})
    log.close()
    err = capsys.readouterr().err
    assert err.count("pip install tensorboard") == 1 and len(err.strip().splitlines()) == 1
    assert len(read_log(tmp_path / "log.jsonl")) == 3 and not (tmp_path / "tensorboard").exists()


def test_validation_tags_and_pictures():
    class Result:
        def __init__(self, iou):
            self.scores = Scores(iou=iou, miou=float(np.nanmean(iou)), category_iou={}, category_miou=float("nan"),
                                 pixel_acc=0.5)

    values = validation_scalars({"full": Result([0.5, float("nan"), 0.25]), "half": Result([0.25, 0.25, 0.25])},
                                ["road", "traffic light", "a/b"])
    assert values["val/miou"] == pytest.approx((37.5 + 25.0) / 2)
    assert values["val/miou_full"] == pytest.approx(37.5) and values["val/miou_half"] == pytest.approx(25.0)
    assert values["val/iou_full/road"] == 50.0 and values["val/iou_half/a_b"] == 25.0
    assert set(values) >= {"val/iou_full/traffic_light", "val/iou_half/traffic_light"}

    table = ClassTable.cityscapes()
    photo = np.full((10, 30, 3), 100, np.uint8)
    prediction, truth = np.zeros((10, 30), np.uint8), np.full((10, 30), 10, np.uint8)  # road | sky
    pair = side_by_side(photo, prediction, truth, table)
    assert pair.shape == (10, 60, 3)
    assert table.colors[0] == (128, 64, 128) and table.colors[10] == (70, 130, 180)
    assert tuple(pair[0, 0]) == (114, 82, 114) and tuple(pair[0, 30]) == (85, 115, 140)  # half colour, half photo
    assert side_by_side(np.zeros((600, 1600, 3), np.uint8), np.zeros((600, 1600), np.uint8),
                        np.zeros((600, 1600), np.uint8), table).shape == (192, 1024, 3)


def test_resume_trims_records_after_the_checkpoint_and_curves_are_drawn(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (
        {"iteration": 2, "loss": 1.0, "lr": 0.1}, {"iteration": 4, "val_miou": 5.0},
        {"iteration": 6, "loss": 0.5, "lr": 0.05})))
    trim_log(path, 4)
    assert [r["iteration"] for r in read_log(path)] == [2, 4]
    plot_curves(path, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
