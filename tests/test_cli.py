"""segkit.cli: what the tools share -- one-line user errors, the default-checkpoint rule, a checkpoint's model."""
import os

import pytest

from segkit.cli import checkpoint_model, main_guard, resolve_checkpoint, user_message
from segkit.config import Config, DataConfig, ModelConfig
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


def save(path, config=None):
    config = config or Config(model=ModelConfig(backbone="mobilenet_v3_small"))
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


def test_a_checkpoint_brings_its_model_and_class_table(tmp_path):
    save(tmp_path / "best.pt")
    model, config, table = checkpoint_model(tmp_path / "best.pt")
    assert config.model.backbone == "mobilenet_v3_small" and model.head.low_classifier.in_channels == 88
    assert table.is_cityscapes  # a checkpoint without a class table: Cityscapes' 19 classes
    other = tmp_path / "large.py"
    other.write_text("from segkit.config import Config\nconfig = Config()\n")
    with pytest.raises(UserError, match="sets model.backbone='mobilenet_v3_large'.*trained with "
                                        "model.backbone='mobilenet_v3_small'"):
        checkpoint_model(tmp_path / "best.pt", str(other))


def test_what_the_weights_were_trained_with_comes_from_the_checkpoint(tmp_path):
    # a config file once replaced the checkpoint's config: data.normalize=imagenet weights evaluated (and exported
    # for phones) with "tf" normalisation, without a word
    save(tmp_path / "best.pt", Config(model=ModelConfig(backbone="mobilenet_v3_small"),
                                      data=DataConfig(normalize="imagenet")))
    agrees = tmp_path / "agrees.py"
    agrees.write_text("from segkit.config import Config, DataConfig, ModelConfig\n"
                      "config = Config(model=ModelConfig(backbone='mobilenet_v3_small'),\n"
                      "                data=DataConfig(normalize='imagenet', root='/data/mine', workers=0))\n")
    _, config, _ = checkpoint_model(tmp_path / "best.pt", str(agrees))
    assert config.data.normalize == "imagenet" and config.data.root == "/data/mine" and config.data.workers == 0
    for name, body, field in (
            ("tf.py", "Config(model=ModelConfig(backbone='mobilenet_v3_small'))", "data.normalize"),
            ("large.py", "Config(data=DataConfig(normalize='imagenet'))", "model.backbone"),
            ("f256.py", "Config(model=ModelConfig(backbone='mobilenet_v3_small', head_channels=256), "
                        "data=DataConfig(normalize='imagenet'))", "model.head_channels")):
        path = tmp_path / name
        path.write_text(f"from segkit.config import Config, DataConfig, ModelConfig\nconfig = {body}\n")
        with pytest.raises(UserError) as error:
            checkpoint_model(tmp_path / "best.pt", str(path))
        message = str(error.value)
        assert "\n" not in message and field in message and str(path) in message, message


def test_a_config_with_another_class_table_is_refused(tmp_path):
    table = tmp_path / "two.yaml"
    table.write_text("classes:\n  - {name: road, color: [1, 2, 3], values: [1]}\n"
                     "  - {name: sky, color: [4, 5, 6], values: [2]}\n")
    save(tmp_path / "best.pt", Config(model=ModelConfig(backbone="mobilenet_v3_small")))  # Cityscapes' table
    path = tmp_path / "mine.py"
    path.write_text("from segkit.config import Config, DataConfig, ModelConfig\n"
                    f"config = Config(model=ModelConfig(backbone='mobilenet_v3_small', num_classes=19),\n"
                    f"                data=DataConfig(classes={str(table)!r}))\n")
    with pytest.raises(UserError) as error:
        checkpoint_model(tmp_path / "best.pt", str(path))
    assert "\n" not in str(error.value) and "data.classes" in str(error.value)
