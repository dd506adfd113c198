"""The stochastic results page's check table is reproduced by re-evaluating its committed checkpoints.

Scoring every S11 window with K = 50 draws takes about 13 minutes of CPU for the CVAE, too long for every CI run;
``docs/results/stochastic.md`` therefore prints, next to the full table, the same figures on one action, between
``<!-- stochastic-results dataset=D split=S protocol=P actions=A seed=N -->`` and ``<!-- /stochastic-results -->``.
Its columns are the model, the checkpoint, K, then APD, ADE, FDE, MMADE, MMFDE and the MPJPE averages of the mean
and of the first sample (mm). Each printed figure must equal the re-evaluated one to 0.1 mm (one decimal printed).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crisscross.tasks.sources import evaluate_source

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = REPO_ROOT / "docs" / "results" / "stochastic.md"
_BLOCK = re.compile(r"<!-- stochastic-results (?P<attrs>[^>]*?) -->\n(?P<table>.*?)<!-- /stochastic-results -->",
                    re.S)
# column -> where the figure sits in the evaluation result
_FIGURES = {"APD": ("apd_mm",), "ADE": ("ade_mm",), "FDE": ("fde_mm",), "MMADE": ("mmade_mm",),
            "MMFDE": ("mmfde_mm",), "MPJPE of the mean sample": ("mpjpe_sample_mean_by_horizon_mm", "avg"),
            "MPJPE of the first sample": ("mpjpe_first_sample_by_horizon_mm", "avg")}


def _cells(line: str) -> list[str]:
    return [c.replace("`", "").replace("*", "").strip() for c in line.strip().strip("|").split("|")]


def check_tables() -> list[dict]:
    """The check tables of the page: attributes and rows ``{"model", "checkpoint", "k", "figures"}``."""
    tables = []
    for match in _BLOCK.finditer(PAGE.read_text()):
        attrs = dict(kv.split("=", 1) for kv in match["attrs"].split())
        lines = [ln for ln in match["table"].splitlines() if ln.startswith("|")]
        header = _cells(lines[0])
        rows = []
        for line in lines[2:]:
            cells = dict(zip(header, _cells(line), strict=True))
            rows.append({"model": cells["model"], "checkpoint": cells["checkpoint"], "k": int(cells["K"]),
                         "figures": {c: float(cells[c]) for c in _FIGURES}})
        tables.append({**attrs, "rows": rows})
    return tables


def test_the_page_has_a_check_table() -> None:
    tables = check_tables()
    assert tables and all(t["rows"] for t in tables)
    for table in tables:
        assert {"dataset", "split", "protocol", "actions", "seed"} <= set(table)
        for row in table["rows"]:
            assert (REPO_ROOT / row["checkpoint"]).is_file(), row["checkpoint"]


def _cases() -> list:
    return [pytest.param(t, r, id=f"{t['protocol']}-{t['actions']}-{r['model']}") for t in check_tables()
            for r in t["rows"]]


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _cases())
def test_stochastic_figures_are_reproduced(table: dict, row: dict, data_root, cache_dir: Path) -> None:
    data_dir = data_root(table["dataset"])
    result = evaluate_source(str(REPO_ROOT / row["checkpoint"]), dataset=table["dataset"], split=table["split"],
                             protocol=table["protocol"], actions=tuple(table["actions"].split(",")),
                             data_dir=str(data_dir), cache_dir=str(cache_dir), device="cpu",
                             options={"samples": row["k"], "seed": int(table["seed"])})
    assert result["model"] == row["model"] and result["k"] == row["k"]
    for column, printed in row["figures"].items():
        measured = result
        for key in _FIGURES[column]:
            measured = measured[key]
        assert printed == pytest.approx(measured, abs=0.05 + 1e-9), (column, printed, measured)
