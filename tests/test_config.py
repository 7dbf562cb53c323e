import pytest

from segkit.config import Config, apply_override, load_config
from segkit.errors import UserError


def write(tmp_path, text, name="exp.py"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_config_runs_the_file_and_names_it(tmp_path):
    path = write(tmp_path, "from segkit.config import Config, ModelConfig\n"
                           "config = Config(model=ModelConfig(head='raspp', head_channels=256))\n")
    config = load_config(path)
    assert config.name == "exp" and config.model.head == "raspp" and config.model.head_channels == 256


def test_overrides_are_parsed_by_field_type(tmp_path):
    config = load_config(write(tmp_path, "from segkit.config import Config\nconfig = Config()\n"), [
        "model.rf2=false", "model.width_mult=0.5", "train.iterations=2e3", "data.crop_size=512,1024",
        "model.skip=none", "train.lr=0.005", "data.root=/data/cityscapes",
    ])
    assert config.model.rf2 is False and config.model.width_mult == 0.5 and config.train.iterations == 2000
    assert config.data.crop_size == (512, 1024) and config.model.skip is None
    assert config.train.lr == 0.005 and config.data.root == "/data/cityscapes"


def test_unknown_key_suggests_the_closest():
    with pytest.raises(UserError, match="Did you mean train.iterations"):
        apply_override(Config(), "train.iteration=5")


@pytest.mark.parametrize("item, message", [
    ("train.iterations=many", "not a valid int"),
    ("model.rf2=maybe", "not a valid bool"),
    ("data.crop_size=512", "2 comma-separated values"),
    ("model.backbone=resnet50", "model.backbone='resnet50' is unknown"),
    ("model.output_stride=4", "not supported"),
    ("train.lr", "must look like key=value"),
])
def test_bad_override_values_are_user_errors(item, message):
    with pytest.raises(UserError, match=message):
        apply_override(Config(), item)


def test_missing_or_malformed_config_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "none.py")
    with pytest.raises(UserError, match="must define `config = Config"):
        load_config(write(tmp_path, "x = 1\n"))


def test_plain_data_round_trip():
    config = Config()
    apply_override(config, "data.crop_size=256,512")
    data = config.to_dict()
    assert data["data"]["crop_size"] == (256, 512)
    assert Config.from_dict(data) == config
    # From JSON-like lists too (checkpoints store plain data).
    data["data"]["crop_size"] = [256, 512]
    assert Config.from_dict(data).data.crop_size == (256, 512)


@pytest.mark.parametrize("item, message", [
    ("train.eval_resolutions=quarter", "train.eval_resolutions='quarter' is unknown"),
    ("eval.resolutions=full,hlaf", "did you mean 'half'"),
    ("train.log_every=0", "train.log_every=0 must be positive"),
    ("train.checkpoint_every=-5", "must be positive"),
    ("train.eval_every=-1", "train.eval_every=-1 must be zero or more"),
    ("train.iterations=0", "must be positive"),
    ("train.batch_size=0", "must be positive"),
    ("train.class_weights=1,2,3", "has 3 values but model.num_classes is 19"),
    ("train.loss=dice", "train.loss='dice' is unknown"),
    ("train.optimizer=adam", "did you mean 'adamw'"),
    ("data.crop_size=0,769", "two positive numbers"),
    ("data.normalize=caffe", "data.normalize='caffe' is unknown"),
    ("eval.split=testing", "did you mean 'test'"),
])
def test_every_section_is_validated_when_set(item, message):
    with pytest.raises(UserError, match=message):
        apply_override(Config(), item)


def test_config_files_are_validated_when_loaded(tmp_path):
    bad = write(tmp_path, "from segkit.config import Config, TrainConfig\n"
                          "config = Config(train=TrainConfig(iterations=0))\n")
    with pytest.raises(UserError, match=f"config file {bad}: train.iterations=0 must be positive"):
        load_config(bad)
    weights = write(tmp_path, "from segkit.config import Config, ModelConfig, TrainConfig\n"
                              "config = Config(model=ModelConfig(num_classes=3), "
                              "train=TrainConfig(class_weights=(1.0, 2.0)))\n", "w.py")
    with pytest.raises(UserError, match="class_weights has 2 values but model.num_classes is 3"):
        load_config(weights)


def test_misspelt_keyword_in_a_config_file_names_the_field(tmp_path):
    path = write(tmp_path, "from segkit.config import Config, TrainConfig\n"
                           "config = Config(train=TrainConfig(iteratons=10))\n")
    with pytest.raises(UserError, match="TrainConfig has no field 'iteratons'; did you mean 'iterations'") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    broken = write(tmp_path, "from segkit.config import Config\nconfig = Config(\n", "broken.py")
    with pytest.raises(UserError, match="broken.py line 2: SyntaxError"):
        load_config(broken)
    undefined = write(tmp_path, "from segkit.config import Config\n\nconfig = Config(name=NAME)\n", "undefined.py")
    with pytest.raises(UserError, match="undefined.py line 3: NameError: name 'NAME' is not defined"):
        load_config(undefined)


@pytest.mark.parametrize("text", ["129,257", "129x257", "(129, 257)", "[129, 257]", " 129 x 257 "])
def test_tuple_overrides_in_the_forms_users_type(text):
    config = Config()
    apply_override(config, f"data.crop_size={text}")
    assert config.data.crop_size == (129, 257)
    apply_override(config, "train.eval_resolutions=(full, half)")
    assert config.train.eval_resolutions == ("full", "half")
