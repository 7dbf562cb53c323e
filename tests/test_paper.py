"""segkit.paper: Table 7 as the code holds it equals the table in docs/paper.md (two transcriptions of the paper)."""
import re
from pathlib import Path

from segkit.paper import TABLE7

DOC = Path(__file__).resolve().parents[1] / "docs" / "paper.md"


def test_table7_rows_equal_the_documented_table():
    text = DOC.read_text().split("## Table 7", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split("|") for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(TABLE7) == 11
    for row, cells in zip(TABLE7, rows):
        n, backbone, rf2, head, channels, miou, params, madds, cpu_full, cpu_half = (c.strip() for c in cells)
        width = float(backbone.split()[1]) if " " in backbone and backbone.split()[1][0].isdigit() else 1.0
        seconds = [float(v[:-2]) / 1000 if v.endswith("ms") else float(v[:-1]) for v in (cpu_full, cpu_half)]
        assert (int(n), width, rf2 == "✓", head.lower().replace("-", ""), int(channels)) == \
            (row.n, row.width_mult, row.rf2, row.head, row.head_channels)
        assert (float(miou), float(params[:-1]), float(madds[:-1])) == (row.miou, row.params, row.madds)
        assert seconds == [row.cpu_full, row.cpu_half]
        assert ("Small" in backbone) == row.backbone.endswith("small") and backbone.startswith("V2") == \
            (row.backbone == "mobilenet_v2")
