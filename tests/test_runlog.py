"""segkit.engine.runlog: windows of the training loss, the rate each step used, trimming on resume, curves."""
import json

from segkit.engine.runlog import RunLog, plot_curves, read_log, trim_log


def test_windows_average_the_loss_and_keep_the_steps_rate(tmp_path):
    log = RunLog(tmp_path, enabled=True, every=2)
    records = [log.step(i, loss, lr, last=i == 5) for i, (loss, lr) in enumerate(
        [(4.0, 0.1), (2.0, 0.09), (1.0, 0.08), (3.0, 0.07), (5.0, 0.06)], start=1)]
    assert records[0] is None and records[2] is None
    assert [(r["iteration"], r["loss"], r["lr"]) for r in records if r] == [(2, 3.0, 0.09), (4, 2.0, 0.07),
                                                                             (5, 5.0, 0.06)]
    log.write({"iteration": 4, "val_miou": 12.5})
    log.close()
    assert [r["iteration"] for r in read_log(tmp_path / "log.jsonl")] == [2, 4, 5, 4]


def test_only_rank_0_writes(tmp_path):
    log = RunLog(tmp_path, enabled=False, every=1)
    log.step(1, 1.0, 0.1, last=True)
    log.write({"iteration": 1, "val_miou": 1.0})
    assert not (tmp_path / "log.jsonl").exists()


def test_resume_trims_records_after_the_checkpoint_and_curves_are_drawn(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (
        {"iteration": 2, "loss": 1.0, "lr": 0.1}, {"iteration": 4, "val_miou": 5.0},
        {"iteration": 6, "loss": 0.5, "lr": 0.05})))
    trim_log(path, 4)
    assert [r["iteration"] for r in read_log(path)] == [2, 4]
    plot_curves(path, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
