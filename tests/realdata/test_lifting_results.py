"""Every figure of the lifting results tables in the docs is reproduced by evaluating its model on the real data.

A lifting results table sits between ``<!-- lifting-results dataset=D split=S protocol=P -->`` and
``<!-- /lifting-results -->`` in ``docs/lifting.md`` or ``docs/results/*.md``; its columns are the model, its
weights (a committed checkpoint, or "none" for a weight-free reference), P1, P2, N-MPJPE and MPJVE in mm. Each
printed figure must equal the re-evaluated one to 0.1 mm (the tables print one decimal).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crisscross.tasks.sources import evaluate_source

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = [REPO_ROOT / "docs" / "lifting.md", *sorted((REPO_ROOT / "docs" / "results").glob("*.md"))]
_BLOCK = re.compile(r"<!-- lifting-results (?P<attrs>[^>]*?) -->\n(?P<table>.*?)<!-- /lifting-results -->", re.S)
COLUMNS = {"P1": "mpjpe_mm", "P2": "p_mpjpe_mm", "N-MPJPE": "n_mpjpe_mm", "MPJVE": "mpjve_mm"}


def _cells(line: str) -> list[str]:
    return [c.replace("`", "").strip() for c in line.strip().strip("|").split("|")]


def lifting_tables() -> list[dict]:
    """Every lifting results table: its attributes and rows ``{"model", "weights", "figures": {key: mm}}``."""
    tables = []
    for page in PAGES:
        for match in _BLOCK.finditer(page.read_text() if page.exists() else ""):
            attrs = dict(kv.split("=", 1) for kv in match["attrs"].split())
            lines = [ln for ln in match["table"].splitlines() if ln.startswith("|")]
            header = _cells(lines[0])
            rows = [dict(zip(header, _cells(line), strict=True)) for line in lines[2:]]
            tables.append({**attrs, "page": page.name, "rows": [
                {"model": r["model"], "weights": r["weights"],
                 "figures": {COLUMNS[c]: float(r[c]) for c in COLUMNS if c in r}} for r in rows]})
    return tables


def test_the_lifting_page_has_a_results_table():
    tables = lifting_tables()
    assert tables and all({"dataset", "split", "protocol"} <= set(t) and t["rows"] for t in tables)


def _cases() -> list:
    return [pytest.param(t, row, id=f"{t['protocol']}-{row['model']}") for t in lifting_tables() for row in t["rows"]]


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _cases())
def test_lifting_figure_is_reproduced(table: dict, row: dict, data_root, cache_dir: Path):
    data_dir = data_root(table["dataset"])
    source = None if row["weights"] == "none" else str(REPO_ROOT / row["weights"])
    result = evaluate_source(source, model_name=row["model"] if source is None else None, dataset=table["dataset"],
                             split=table["split"], protocol=table["protocol"], data_dir=str(data_dir),
                             cache_dir=str(cache_dir), device="cpu")
    for key, printed in row["figures"].items():
        assert printed == pytest.approx(result[key]["mean"], abs=0.05 + 1e-9), (key, printed, result[key]["mean"])
