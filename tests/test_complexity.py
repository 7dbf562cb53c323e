"""Table 7 acceptance: our params and MAdds against the paper's, every row."""
from pathlib import Path

import pytest
import torch

from segkit.complexity import count_madds, count_parameters
from segkit.config import ModelConfig
from segkit.models import build_model
from segkit.benchmark import table7_configs

TABLE7_DIR = Path(__file__).resolve().parents[1] / "configs" / "table7"
ROWS = table7_configs(TABLE7_DIR)


@pytest.mark.parametrize("row, config", ROWS, ids=[f"row{r.n:02d}" for r, _ in ROWS])
def test_table7_params_within_2_percent_and_madds_within_7_percent(row, config):
    model = build_model(config.model)
    params = count_parameters(model) / 1e6
    madds = count_madds(model, (1024, 2048)) / 1e9
    assert abs(params / row.params - 1) < 0.02, (params, row.params)
    assert abs(madds / row.madds - 1) < 0.07, (madds, row.madds)
    assert madds < row.madds  # conv-only counting sits under the paper's figure


def test_madds_of_a_single_conv_and_meta_copy_leaves_model_intact():
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1, bias=False))
    weight = conv[0].weight.clone()
    assert count_madds(conv, (10, 12)) == 10 * 12 * 16 * 3 * 9
    assert conv[0].weight.device.type == "cpu" and torch.equal(conv[0].weight, weight)


def test_madds_scale_with_resolution():
    model = build_model(ModelConfig())
    full, half = count_madds(model, (1024, 2048)), count_madds(model, (512, 1024))
    assert 3.9 < full / half < 4.1
