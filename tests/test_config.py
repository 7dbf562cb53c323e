import subprocess
import sys
from pathlib import Path

import pytest

from segkit.config import (ALIASES, Config, ModelConfig, OptimizerConfig, apply_override, load_config, table7_config,
                           validate)
from segkit.errors import UserError
from segkit.models.backbones import BACKBONES
from segkit.paper import TABLE7, TRAINING_CROP

ROOT = Path(__file__).resolve().parents[1]


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
    assert config.optimizer.lr == 0.005 and config.data.root == "/data/cityscapes"  # train.lr: an alias


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
    # every section checks its fields when one is set
    ("train.eval_resolutions=quarter", "eval.resolutions='quarter' is unknown"),
    ("eval.resolutions=full,hlaf", "did you mean 'half'"),
    ("train.log_every=0", "train.log_every=0 must be positive"),
    ("train.checkpoint_every=-5", "must be positive"),
    ("train.eval_every=-1", "train.eval_every=-1 must be zero or more"),
    ("train.iterations=0", "must be positive"),
    ("train.batch_size=0", "must be positive"),
    ("loss.class_weights=1,2,3", "has 3 values but model.num_classes is 19"),
    ("loss.name=dice", "loss.name='dice' is unknown"),
    ("optimizer.name=adam", "did you mean 'adamw'"),
    ("schedule.warmup_iterations=90000", "must be fewer than train.iterations=90000"),
    ("data.crop_size=0,769", "two positive numbers"),
    ("data.normalize=caffe", "data.normalize='caffe' is unknown"),
    ("eval.split=testing", "did you mean 'test'"),
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
    data = config.resolved().to_dict()
    assert data["data"]["crop_size"] == (256, 512) and data["model"]["pool_crop"] == (256, 512)
    assert Config.from_dict(data) == config
    # From JSON-like lists too (checkpoints store plain data).
    data["data"]["crop_size"] = [256, 512]
    assert Config.from_dict(data).data.crop_size == (256, 512)


def test_config_files_are_validated_when_loaded(tmp_path):
    bad = write(tmp_path, "from segkit.config import Config, TrainConfig\n"
                          "config = Config(train=TrainConfig(iterations=0))\n")
    with pytest.raises(UserError, match=f"config file {bad}: train.iterations=0 must be positive"):
        load_config(bad)
    weights = write(tmp_path, "from segkit.config import Config, LossConfig, ModelConfig\n"
                              "config = Config(model=ModelConfig(num_classes=3), "
                              "loss=LossConfig(class_weights=(1.0, 2.0)))\n", "w.py")
    changed = write(tmp_path, "from segkit.config import Config\nconfig = Config()\nconfig.train.batch_size = 0\n",
                    "changed.py")
    with pytest.raises(UserError, match="changed.py: train.batch_size=0 must be positive"):
        load_config(changed)  # a field a file changes after construction is checked too
    with pytest.raises(UserError, match="class_weights has 2 values but model.num_classes is 3"):
        load_config(weights)


def test_misspelt_keyword_in_a_config_file_names_the_field(tmp_path):
    path = write(tmp_path, "from segkit.config import Config, TrainConfig\n"
                           "config = Config(train=TrainConfig(iteratons=10))\n")
    with pytest.raises(UserError, match="TrainConfig has no field 'iteratons'; did you mean 'iterations'") as info:
        load_config(path)
    assert "\n" not in str(info.value)
    for section, misspelt, meant in (("LossConfig", "nme", "name"), ("OptimizerConfig", "momentom", "momentum"),
                                     ("ScheduleConfig", "poly_pwr", "poly_power")):
        path = write(tmp_path, f"from segkit.config import Config, {section}\n"
                               f"config = Config({section.removesuffix('Config').lower()}={section}({misspelt}=1))\n")
        with pytest.raises(UserError, match=f"{section} has no field '{misspelt}'; did you mean '{meant}'"):
            load_config(path)
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
    apply_override(config, "eval.resolutions=(full, half)")
    assert config.eval.resolutions == ("full", "half")


def test_moved_keys_keep_their_old_spelling():
    config = Config()
    for old, new in ALIASES.items():
        section, name = new.split(".")
        value = {"optimizer.name": "adamw", "loss.name": "ohem", "loss.class_weights": ",".join(["1"] * 19),
                 "eval.resolutions": "full", "schedule.warmup_iterations": "5",
                 "loss.ohem_min_kept": "7"}.get(new, "0.5")
        apply_override(config, f"{old}={value}")
        assert getattr(getattr(config, section), name) != getattr(getattr(Config(), section), name), old
    # a checkpoint's config written before the recipe sections
    old_layout = {"name": "x", "train": {"lr": 0.003, "optimizer": "adamw", "loss": "ohem", "class_weights": None,
                                         "eval_resolutions": ["full"], "iterations": 10, "batch_size": 2},
                  "model": {"pool_crop": [257, 513], "dropout": 0.1}}
    config = Config.from_dict(old_layout)  # model.dropout: retired, at the value segkit uses (no warning)
    assert (config.optimizer.lr, config.optimizer.name, config.loss.name, config.eval.resolutions) == \
        (0.003, "adamw", "ohem", ("full",))
    assert config.train.iterations == 10 and config.model.pool_crop == (257, 513)
    with pytest.warns(UserWarning, match="model.dropout=0.2, a setting of older versions that segkit ignores"):
        Config.from_dict({"model": {"dropout": 0.2}, "eval": {"batch_size": 1}})


def test_from_dict_refuses_keys_no_field_holds():
    data = Config().to_dict()
    data["model"]["backbon"] = data["model"].pop("backbone")
    with pytest.raises(UserError, match="unknown config key 'model.backbon' in the checkpoint's config. "
                                        "Did you mean model.backbone"):
        Config.from_dict(data)
    with pytest.raises(UserError, match="unknown config key 'augment.flip'"):
        Config.from_dict({"augment": {"flip": True}})
    with pytest.raises(UserError, match="model.backbone='resnet50' is unknown"):
        Config.from_dict({"model": {"backbone": "resnet50"}})  # and validates what it builds


def test_pool_crop_follows_the_training_crop_unless_set(tmp_path):
    path = write(tmp_path, "from segkit.config import Config\nconfig = Config()\n")
    assert load_config(path, ["data.crop_size=257,513"]).model.pool_crop == (257, 513)
    assert load_config(path, ["data.crop_size=257,513", "model.pool_crop=769,769"]).model.pool_crop == (769, 769)
    assert load_config(path).to_dict()["model"]["pool_crop"] == (769, 769)  # checkpoints record it


def test_validate_checks_fields_set_from_python():
    config = Config(optimizer=OptimizerConfig(name="adam"))  # building checks nothing: validate is the one step
    with pytest.raises(UserError, match="optimizer.name='adam' is unknown; did you mean 'adamw'"):
        validate(config)
    config = Config()
    config.model.backbone = "mobilenet_v3_larg"
    with pytest.raises(UserError, match="model.backbone='mobilenet_v3_larg' is unknown; did you mean "
                                        "'mobilenet_v3_large'"):
        validate(config)
    config.model.backbone = "resnet50"
    with pytest.raises(UserError, match="choose one of " + ", ".join(BACKBONES)):  # the models package's table
        validate(config)
    config = Config()
    config.data.crop_size = 769
    with pytest.raises(UserError, match="data.crop_size takes 2 comma-separated values, got 769"):
        validate(config)
    config.data.crop_size, config.model.rf2 = [257, 513], "yes"  # plain data becomes the declared type
    assert validate(config).data.crop_size == (257, 513) and config.model.rf2 is True


def test_table7_config_builds_each_row_with_the_default_recipe():
    for row in TABLE7:
        model = table7_config(row.n).model
        assert (model.backbone, model.width_mult, model.rf2, model.head, model.head_channels) == \
            (row.backbone, row.width_mult, row.rf2, row.head, row.head_channels)
        assert table7_config(row.n).data == Config().data
    with pytest.raises(UserError, match="n=12 is not a row of Table 7; its rows are 1 to 11"):
        table7_config(12)


def test_the_default_crop_is_the_authors():
    assert Config().data.crop_size == TRAINING_CROP
    assert ModelConfig().pool_crop is None  # follows the crop once resolved


def test_the_config_names_what_the_code_builds():
    # the config owns the names; the tables of the code built on it are keyed by exactly these
    from segkit.config import BACKBONE_NAMES, LAYOUTS, LOSS_NAMES
    from segkit.data.layouts import LAYOUTS as DATA_SETS
    from segkit.losses import LOSSES

    assert tuple(BACKBONES) == BACKBONE_NAMES and LOSSES == LOSS_NAMES and tuple(DATA_SETS) == LAYOUTS


def test_the_config_imports_no_layer_built_on_it():
    # segkit.config once imported segkit.models (and with it torch) to check backbone names
    code = "import sys, segkit.config; print(sorted(m for m in sys.modules if m.startswith(('segkit.', 'torch'))))"
    loaded = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "torch" not in loaded and "segkit.models" not in loaded and "segkit.losses" not in loaded, loaded


def test_overrides_are_validated_once_after_all_of_them():
    # each override was validated on its own: iterations=2 then warmup=0 was refused (warmup 20 >= 2), the other
    # order ran
    demo = ROOT / "configs" / "demo.py"
    for items in (["train.iterations=2", "schedule.warmup_iterations=0"],
                  ["schedule.warmup_iterations=0", "train.iterations=2"]):
        config = load_config(demo, items)
        assert (config.train.iterations, config.schedule.warmup_iterations) == (2, 0), items
    with pytest.raises(UserError, match="schedule.warmup_iterations=20 must be fewer than train.iterations=2"):
        load_config(demo, ["train.iterations=2"])
