"""segkit.cli: what the tools share -- one-line user errors, the default-checkpoint rule, a checkpoint's model."""
import os

import pytest

from segkit.cli import checkpoint_model, main_guard, resolve_checkpoint, user_message
from segkit.config import Config, ModelConfig
from segkit.checkpoint import save_checkpoint
from segkit.errors import UserError
from segkit.models import build_model


def test_user_errors_exit_2_with_one_line(capsys):
    @main_guard
    def main():
        raise UserError("data root /x does not exist; pass --data-root.")

    with pytest.raises(SystemExit) as exit:
        main()
    assert exit.value.code == 2 and capsys.readouterr().err == "error: data root /x does not exist; pass --data-root.\n"

    @main_guard
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit:
        interrupted()
    assert exit.value.code == 130


def test_library_parameters_read_as_the_tools_flags(capsys):
    @main_guard
    def main():
        raise UserError("device='cuda:3' asked for CUDA, but torch sees no GPU here; use device='cpu'.", "device")

    with pytest.raises(SystemExit):
        main()
    assert capsys.readouterr().err == "error: --device 'cuda:3' asked for CUDA, but torch sees no GPU here; use " \
                                      "--device 'cpu'.\n"
    # only the parameter the error names, and only as a whole name
    message = user_message(UserError("max_frames=0 and data.workers=2: every=0 must be at least 1", "every"))
    assert message == "max_frames=0 and data.workers=2: --every 0 must be at least 1"


def test_user_message_from_a_data_loader_worker():
    # torch re-raises a worker's exception with its traceback in the message: keep the user's sentence
    wrapped = UserError("Caught UserError in DataLoader worker process 0.\n"
                        "Original Traceback (most recent call last):\n"
                        '  File "x.py", line 1\nsegkit.errors.UserError: label a.png is truncated; re-download it.\n')
    assert user_message(wrapped) == "label a.png is truncated; re-download it."


def save(path, model_config=ModelConfig(backbone="mobilenet_v3_small")):
    config = Config(model=model_config)
    save_checkpoint(path, {"model": build_model(config.model).state_dict(), "config": config.to_dict(),
                           "iteration": 0})


def test_the_default_checkpoint_is_the_newest_best(tmp_path, capsys):
    with pytest.raises(UserError, match="none found as .*best.pt.*tools/train.py"):
        resolve_checkpoint(None, tmp_path / "runs")
    for name, when in (("old", 1_000_000), ("new", 2_000_000)):
        save(tmp_path / "runs" / name / "best.pt")
        os.utime(tmp_path / "runs" / name / "best.pt", (when, when))
    assert resolve_checkpoint(None, tmp_path / "runs") == tmp_path / "runs" / "new" / "best.pt"
    assert "using the newest checkpoint" in capsys.readouterr().out
    assert resolve_checkpoint("given.pt", tmp_path / "runs").name == "given.pt"


def test_a_config_file_replaces_the_model_section_checked_against_the_weights(tmp_path):
    save(tmp_path / "best.pt")
    model, config, table = checkpoint_model(tmp_path / "best.pt")
    assert config.model.backbone == "mobilenet_v3_small" and model.head.low_classifier.in_channels == 88
    assert table.is_cityscapes  # a checkpoint without a class table: Cityscapes' 19 classes
    other = tmp_path / "large.py"
    other.write_text("from segkit.config import Config\nconfig = Config()\n")
    with pytest.raises(UserError, match="does not fit the mobilenet_v3_large/lraspp model"):
        checkpoint_model(tmp_path / "best.pt", str(other))
