"""Every figure of the README's results tables is reproduced by re-evaluating its weights on the real data.

A results table in the README sits between ``<!-- results dataset=D split=S protocol=P metric=M -->`` and
``<!-- /results -->``. Its columns are the model, its weights (a committed checkpoint, or "none" for a model
without weights), one column per horizon in milliseconds and the 25-frame average ("avg"). Each printed figure
must equal the re-evaluated one to 0.1 mm (the table prints one decimal).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crisscross.evaluation.runner import evaluate_source

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
_BLOCK = re.compile(r"<!-- results (?P<attrs>[^>]*?) -->\n(?P<table>.*?)<!-- /results -->", re.S)


def _cells(line: str) -> list[str]:
    return [c.strip().strip("`") for c in line.strip().strip("|").split("|")]


def parse_results_tables(text: str) -> list[dict]:
    """The README's results tables: attributes and rows ``{"model", "weights", "figures": {column: mm}}``."""
    tables = []
    for match in _BLOCK.finditer(text):
        attrs = dict(kv.split("=", 1) for kv in match["attrs"].split())
        lines = [ln for ln in match["table"].splitlines() if ln.startswith("|")]
        header = _cells(lines[0])
        columns = [h.split()[0] for h in header[2:]]  # "80 ms" -> "80", "avg" -> "avg"
        rows = []
        for line in lines[2:]:
            cells = _cells(line)
            figures = {c: float(v.strip("*")) for c, v in zip(columns, cells[2:], strict=True)}
            rows.append({"model": cells[0], "weights": cells[1], "figures": figures})
        tables.append({**attrs, "rows": rows})
    return tables


def test_the_readme_has_results_tables():
    tables = parse_results_tables(README.read_text())
    assert tables, "no <!-- results ... --> block in README.md"
    for table in tables:
        assert {"dataset", "split", "protocol", "metric"} <= set(table), table
        assert table["rows"]
        for row in table["rows"]:
            assert row["weights"] == "none" or (REPO_ROOT / row["weights"]).is_file(), row["weights"]


def _cases() -> list:
    cases = []
    for table in parse_results_tables(README.read_text()):
        for row in table["rows"]:
            label = f"{table['protocol']}-{table['split']}-{table['metric']}-{row['model']}"
            cases.append(pytest.param(table, row, id=label))
    return cases


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _cases())
def test_readme_figure_is_reproduced(table: dict, row: dict, request: pytest.FixtureRequest, cache_dir: Path):
    data_dir = request.getfixturevalue(f"{table['dataset']}_root")
    source = None if row["weights"] == "none" else str(REPO_ROOT / row["weights"])
    result = evaluate_source(source, model_name=row["model"] if source is None else None,
                             dataset=table["dataset"], split=table["split"], protocol=table["protocol"],
                             data_dir=str(data_dir), cache_dir=str(cache_dir), device="cpu")
    measured = result[table["metric"]]["mean"]
    for column, printed in row["figures"].items():
        assert printed == pytest.approx(measured[column], abs=0.05 + 1e-9), (column, printed, measured[column])
