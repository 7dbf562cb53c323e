"""Fine-tuning a 19-class checkpoint into another class table (segkit.engine.trainer.build_training with
model.pretrained): every backbone and head tensor is kept but the classifiers, which start at initialisation --
or, with model.map_classes_by_name, keep the rows of the classes both tables name."""
import json

import pytest
import torch

from segkit.config import Config, DataConfig, ModelConfig
from segkit.data.classes import ClassTable
from segkit.engine.distributed import Runtime
from segkit.engine.trainer import build_data, build_training
from segkit.errors import UserError

SEVEN = ClassTable.from_dict({"ignore": [0, 255], "classes": [
    {"name": name, "color": [10 * i, 20, 30], "values": [i + 1]}
    for i, name in enumerate(("road", "sidewalk", "building", "vegetation", "sky", "vehicle", "person"))]}, "seven")


def fine_tune_config(checkpoint, by_name: bool) -> Config:
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small", num_classes=7, pretrained=str(checkpoint),
                                      map_classes_by_name=by_name))
    return config.resolved()


@pytest.mark.parametrize("by_name", [False, True])
def test_fine_tuning_into_seven_classes_keeps_all_but_the_classifiers(small_checkpoint, capsys, by_name):
    path, source_model, _ = small_checkpoint
    source = source_model.state_dict()
    model = build_training(fine_tune_config(path, by_name), Runtime(), SEVEN).model
    report = capsys.readouterr().out
    assert "kept at initialisation (shape differs): 4" in report  # two classifiers, weight and bias each
    state = model.state_dict()
    classifiers = [key for key in state if "classifier" in key]
    assert len(classifiers) == 4
    for key, value in state.items():
        if key not in classifiers:
            assert torch.equal(value, source[key]), key  # backbone, head, BatchNorm statistics
    names = ClassTable.cityscapes().names
    shared = {j: names.index(name) for j, name in enumerate(SEVEN.names) if name in names}
    assert sorted(shared) == [0, 1, 2, 3, 4, 6]  # all but "vehicle"
    for key in classifiers:
        assert state[key].shape[0] == 7
        for j, i in shared.items():
            kept = torch.equal(state[key][j], source[key][i])
            assert kept if by_name else (not kept or key.endswith("bias")), (key, j)  # both biases start at 0
        if key.endswith("weight"):
            assert not torch.equal(state[key][5], source[key][names.index("car")])  # vehicle: at initialisation
    if by_name:
        assert "classifier rows of 6 of 7 classes kept" in report and "road, sidewalk" in report


def test_a_table_larger_than_the_head_is_one_line(tmp_path):
    path = tmp_path / "seven.json"
    path.write_text(json.dumps(SEVEN.to_dict()))
    config = Config(model=ModelConfig(num_classes=5), data=DataConfig(root=str(tmp_path), classes=str(path)))
    with pytest.raises(UserError) as error:
        build_data(config.resolved(), None, Runtime())
    message = str(error.value)
    assert "has 7 classes but model.num_classes is 5" in message and "\n" not in message


def test_num_classes_follows_the_table(tmp_path):
    path = tmp_path / "seven.json"
    path.write_text(json.dumps(SEVEN.to_dict()))
    assert Config(data=DataConfig(classes=str(path))).resolved().model.num_classes == 7
    assert Config().resolved().model.num_classes == 19
    explicit = Config(model=ModelConfig(num_classes=9), data=DataConfig(classes=str(path)))
    assert explicit.resolved().model.num_classes == 9


# ---- issue 24: classifiers follow the classes, not their count ----------------------------------------------------

def seven_checkpoint(tmp_path, table, head_channels=128, skip=True):
    """A random-weight 7-class checkpoint of ``table`` (other weights than a fine-tuning run's initialisation)."""
    from segkit.checkpoint import save_checkpoint
    from segkit.models import build_model

    torch.manual_seed(123)
    config = Config(model=ModelConfig(backbone="mobilenet_v3_small", num_classes=7, head_channels=head_channels,
                                      skip=skip))
    model = build_model(config.model)
    path = tmp_path / f"seven_{head_channels}_{skip}.pt"
    save_checkpoint(path, {"model": model.state_dict(), "config": config.resolved().to_dict(), "iteration": 0,
                           "classes": table.to_dict()})
    return path, model.state_dict()


OTHER_SEVEN = ClassTable.from_dict({"ignore": [0, 255], "classes": [
    {"name": name, "color": [10 * i, 40, 30], "values": [i + 1]}
    for i, name in enumerate(("sky", "road", "tree", "wall", "boat", "bike", "dog"))]}, "other seven")


@pytest.mark.parametrize("by_name", [False, True])
def test_an_equal_class_count_with_other_classes_is_not_copied_by_index(tmp_path, capsys, by_name):
    # seven classes into seven other classes: the classifiers were copied row by row, sky's weights for road
    path, source = seven_checkpoint(tmp_path, SEVEN)
    model = build_training(fine_tune_config(path, by_name), Runtime(), OTHER_SEVEN).model
    state, report = model.state_dict(), capsys.readouterr().out
    for key in (k for k in state if "classifier" in k and k.endswith("weight")):
        for j, name in enumerate(OTHER_SEVEN.names):
            copied = torch.equal(state[key][j], source[key][SEVEN.names.index(name)]) if name in SEVEN.names else False
            assert copied == (by_name and name in SEVEN.names), (key, name)
            assert not torch.equal(state[key][j], source[key][j]) or (by_name and name in SEVEN.names)
    assert "another class table" in report
    # the same table: everything is copied, classifiers included
    model = build_training(fine_tune_config(path, by_name), Runtime(), SEVEN).model
    assert all(torch.equal(value, source[key]) for key, value in model.state_dict().items())


def test_rows_are_not_said_kept_when_no_classifier_fits(tmp_path, capsys):
    path, _ = seven_checkpoint(tmp_path, SEVEN, head_channels=256, skip=False)  # no classifier of this model's shape
    build_training(fine_tune_config(path, True), Runtime(), OTHER_SEVEN)
    report = capsys.readouterr().out
    assert "kept from" not in report or "0 of 7" in report, report
    assert "no classifier" in report, report
