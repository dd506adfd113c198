"""Every figure of the lifting results tables in the docs is reproduced by evaluating its model on the real data.

A lifting results table sits between ``<!-- lifting-results dataset=D split=S protocol=P -->`` and
``<!-- /lifting-results -->`` in the README, ``docs/lifting.md`` or ``docs/results/*.md``; its columns are the
model, its weights (a committed checkpoint, or "none" for a weight-free reference), P1, P2, N-MPJPE and MPJVE in
mm. Each printed figure must equal the re-evaluated one to 0.1 mm (the tables print one decimal).

A per-subject table (HumanEva-I is reported per subject and action) sits between ``<!-- lifting-per-subject
dataset=D split=S protocol=P metric=M -->`` and ``<!-- /lifting-per-subject -->``: columns model, weights, then one
per action and subject (``Walk S1``: the action group starting with "Walk", the subject ending in "S1"), with the
metric ``M`` (``p_mpjpe_mm`` for P2). A per-action table (Human3.6M is reported per action, over both test
subjects) sits between ``<!-- lifting-per-action dataset=D split=S protocol=P metric=M -->`` and
``<!-- /lifting-per-action -->``: columns model, weights, then one per action group by its name (``walking``).
Rows whose weights are "published" are other projects' figures, not re-evaluated. Each model is evaluated once per
protocol for every kind of table.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from crisscross.experiments.results_tables import LIFTING_COLUMNS, parse_results_tables
from crisscross.tasks.sources import evaluate_source

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGES = [REPO_ROOT / "README.md", REPO_ROOT / "docs" / "lifting.md",
         *sorted((REPO_ROOT / "docs" / "results").glob("*.md"))]
_SUBJECT_BLOCK = re.compile(
    r"<!-- lifting-per-subject (?P<attrs>[^>]*?) -->\n(?P<table>.*?)<!-- /lifting-per-subject -->", re.S)
_ACTION_BLOCK = re.compile(
    r"<!-- lifting-per-action (?P<attrs>[^>]*?) -->\n(?P<table>.*?)<!-- /lifting-per-action -->", re.S)


def _cells(line: str) -> list[str]:
    return [c.replace("`", "").strip() for c in line.strip().strip("|").split("|")]


def _blocks(block: re.Pattern) -> list[tuple[str, dict, list[str], list[dict]]]:
    """``(page, attributes, header, rows as {column: cell})`` of every table between ``block``'s markers."""
    found = []
    for page in PAGES:
        for match in block.finditer(page.read_text() if page.exists() else ""):
            attrs = dict(kv.split("=", 1) for kv in match["attrs"].split())
            lines = [ln for ln in match["table"].splitlines() if ln.startswith("|")]
            header = _cells(lines[0])
            found.append((page.name, attrs, header, [dict(zip(header, _cells(ln), strict=True)) for ln in lines[2:]]))
    return found


def lifting_tables() -> list[dict]:
    """Every lifting results table (read as ``crisscross results`` reads it): its attributes and rows
    ``{"model", "weights", "figures": {metric key: mm}}``."""
    return [{**t.attrs, "page": page.name, "rows": [
        {"model": r.model, "weights": r.weights, "figures": {LIFTING_COLUMNS[c]: v for c, v in r.figures.items()}}
        for r in t.rows]}
        for page in PAGES if page.exists()
        for t in parse_results_tables(page.read_text(), page.name) if t.kind == "lifting-results"]


def _figure_tables(block: re.Pattern, column_key) -> list[dict]:
    """Attributes and re-evaluated rows ``{"model", "weights", "figures": {column_key(header): mm}}`` of every table
    between ``block``'s markers ("published" rows are other projects' figures and are left out)."""
    return [{**attrs, "page": page, "rows": [
        {"model": r["model"], "weights": r["weights"], "figures": {column_key(h): float(r[h]) for h in header[2:]}}
        for r in rows if r["weights"] != "published"]} for page, attrs, header, rows in _blocks(block)]


def per_subject_tables() -> list[dict]:
    """Every per-subject table, figures keyed by ``(action, subject)``."""
    return _figure_tables(_SUBJECT_BLOCK, lambda h: tuple(h.split()))


def per_action_tables() -> list[dict]:
    """Every per-action table, figures keyed by action group."""
    return _figure_tables(_ACTION_BLOCK, lambda h: h)


@functools.cache
def _evaluate(weights: str, model: str, dataset: str, split: str, protocol: str, data_dir: str, cache_dir: str):
    source = None if weights == "none" else str(REPO_ROOT / weights)
    return evaluate_source(source, model_name=model if source is None else None, dataset=dataset, split=split,
                           protocol=protocol, data_dir=data_dir, cache_dir=cache_dir, device="cpu")


def _evaluate_row(table: dict, row: dict, data_root, cache_dir: Path) -> dict:
    return _evaluate(row["weights"], row["model"], table["dataset"], table["split"], table["protocol"],
                     str(data_root(table["dataset"])), str(cache_dir))


def _params(tables: list[dict], *keys: str) -> list:
    """One case per row, its id the page, the table's ``keys``, the model and the weights' file name."""
    return [pytest.param(t, row, id="-".join([t["page"], *(t[k] for k in keys), row["model"],
                                              row["weights"].rsplit("/", 1)[-1]]))
            for t in tables for row in t["rows"]]


def test_the_lifting_page_has_a_results_table():
    tables = lifting_tables()
    assert tables and all({"dataset", "split", "protocol"} <= set(t) and t["rows"] for t in tables)


def _cases() -> list:
    return _params(lifting_tables(), "dataset", "protocol")


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _cases())
def test_lifting_figure_is_reproduced(table: dict, row: dict, data_root, cache_dir: Path):
    result = _evaluate_row(table, row, data_root, cache_dir)
    for key, printed in row["figures"].items():
        assert printed == pytest.approx(result[key]["mean"], abs=0.05 + 1e-9), (key, printed, result[key]["mean"])


def _subject_cases() -> list:
    return _params(per_subject_tables(), "protocol", "metric")


def _lookup(result: dict, metric: str, action_prefix: str, subject_suffix: str) -> float:
    subjects = [s for s in result["per_subject"] if s == subject_suffix or s.endswith("/" + subject_suffix)]
    actions = [a for a in result["actions"] if a.startswith(action_prefix)]
    assert len(subjects) == 1 and len(actions) == 1, (action_prefix, subject_suffix, subjects, actions)
    return result["per_subject"][subjects[0]][metric]["per_action"][actions[0]]


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _subject_cases())
def test_per_subject_figure_is_reproduced(table: dict, row: dict, data_root, cache_dir: Path):
    result = _evaluate_row(table, row, data_root, cache_dir)
    for (action, subject), printed in row["figures"].items():
        value = _lookup(result, table["metric"], action, subject)
        assert printed == pytest.approx(value, abs=0.05 + 1e-9), (action, subject, printed, value)


def _action_cases() -> list:
    return _params(per_action_tables(), "dataset", "protocol", "metric")


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _action_cases())
def test_per_action_figure_is_reproduced(table: dict, row: dict, data_root, cache_dir: Path):
    result = _evaluate_row(table, row, data_root, cache_dir)
    assert set(row["figures"]) == set(result["actions"]), (sorted(row["figures"]), result["actions"])
    for action, printed in row["figures"].items():
        value = result[table["metric"]]["per_action"][action]
        assert printed == pytest.approx(value, abs=0.05 + 1e-9), (action, printed, value)
