"""segkit.benchmark.table7 -- Table 7 acceptance: our params and MAdds against the paper's, every row."""
from pathlib import Path

import pytest

from segkit.benchmark.table7 import table7_configs, table7_report
from segkit.complexity import count_madds, count_parameters
from segkit.models import build_model

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


def test_table7_configs_refuse_a_config_that_builds_another_row(tmp_path):
    for path in TABLE7_DIR.glob("row*.py"):
        (tmp_path / path.name).write_text(path.read_text())
    row8 = tmp_path / "row08_v3_rf2_lraspp128.py"
    row8.write_text(row8.read_text() + "config.model.head_channels = 256\n")
    with pytest.raises(ValueError, match="row08.*another network than Table 7 row 8.*model.head_channels=256"):
        table7_configs(tmp_path)


def test_table7_report_without_latency():
    records, text = table7_report(TABLE7_DIR, latency=False)
    assert [r["config"] for r in records][:2] == ["row01_v2_raspp256", "row02_v2_rf2_raspp256"] and len(records) == 11
    assert records[7]["params"] == 1507198 and "CPU(f)" not in text
