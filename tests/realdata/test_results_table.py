"""Every figure of the committed results tables is reproduced by re-evaluating its weights on the real data.

Results tables live in ``README.md`` (the headline tables) and in ``docs/results/*.md`` (every table). A results
table sits between ``<!-- results dataset=D split=S protocol=P metric=M -->`` and ``<!-- /results -->``. Its
columns are the model, its weights (a committed checkpoint, "none" for a model without weights, or
``peer:NAME`` for a peer's released file, imported at test time and skipped where it is absent), one column
per horizon in milliseconds and the 25-frame average ("avg"). Each printed figure must equal the re-evaluated one
to 0.1 mm (the tables print one decimal). A row printed in several files is evaluated once, and must print the
same figures everywhere; weights that appear in several tables of one protocol (22 and 32 joints) are evaluated
once and their result is checked against each table.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
from test_peers_real import released_file

from crisscross.experiments.results_tables import ResultsRow, ResultsTable, measured_figures, parse_results_tables
from crisscross.runs.peers import PEER_FORMATS, import_peer
from crisscross.tasks.sources import evaluate_source

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
RESULTS_DOCS = REPO_ROOT / "docs" / "results"
_TABLE_KEYS = ("dataset", "split", "protocol", "metric")


def results_files() -> list[Path]:
    """The files that hold results tables: the README, then every page of ``docs/results/``."""
    return [README, *sorted(RESULTS_DOCS.glob("*.md"))]


def collect_results_tables() -> list[ResultsTable]:
    """Every forecasting results table of every results file (``crisscross results`` reads the same)."""
    return [table for path in results_files()
            for table in parse_results_tables(path.read_text(), path.relative_to(REPO_ROOT).as_posix())
            if table.kind == "results"]


def _row_key(table: ResultsTable, row: ResultsRow) -> tuple[str, ...]:
    return (*(table.attrs[k] for k in _TABLE_KEYS), row.model, row.weights)


def _unique_rows() -> list[tuple[ResultsTable, ResultsRow]]:
    """(table, row) pairs over all files, a row printed in several files kept once (its first occurrence)."""
    seen: dict[tuple[str, ...], tuple[ResultsTable, ResultsRow]] = {}
    for table in collect_results_tables():
        for row in table.rows:
            seen.setdefault(_row_key(table, row), (table, row))
    return list(seen.values())


def test_the_readme_has_results_tables():
    tables = [t for t in parse_results_tables(README.read_text(), "README.md") if t.kind == "results"]
    assert tables, "no <!-- results ... --> block in README.md"


def test_the_results_pages_have_results_tables():
    pages = sorted(RESULTS_DOCS.glob("*.md"))
    assert pages, "no docs/results/*.md"
    assert any(parse_results_tables(page.read_text(), page) for page in pages), "no results block in docs/results"


def test_every_results_table_is_well_formed():
    for table in collect_results_tables():
        assert set(_TABLE_KEYS) <= set(table.attrs), table.where
        assert table.rows, table.where
        for row in table.rows:
            weights = row.weights
            peer = weights.startswith("peer:") and weights.removeprefix("peer:") in PEER_FORMATS
            known = weights == "none" or peer or (REPO_ROOT / weights).is_file()
            assert known, (table.where, weights)


def test_a_row_printed_twice_prints_the_same_figures():
    seen: dict[tuple[str, ...], tuple[str, dict]] = {}
    for table in collect_results_tables():
        for row in table.rows:
            key = _row_key(table, row)
            if key in seen:
                first_file, first_figures = seen[key]
                assert row.figures == first_figures, (key, first_file, table.where)
            else:
                seen[key] = (table.where, row.figures)


def _cases() -> list:
    cases = []
    for table, row in _unique_rows():
        label = f"{table.attrs['protocol']}-{table.attrs['split']}-{table.attrs['metric']}-{row.model}"
        cases.append(pytest.param(table, row, id=label))
    return cases


@functools.cache
def _evaluate(weights: str, model: str, dataset: str, split: str, protocol: str, data_dir: str,
              cache_dir: str) -> dict:
    """One evaluation per (weights, data, protocol): every metric of the result serves every table that needs it."""
    source = None if weights == "none" else str(REPO_ROOT / weights)
    if weights.startswith("peer:"):  # a peer's released weights, converted as a user would
        peer = weights.removeprefix("peer:")
        source = str(import_peer(peer, released_file(peer), Path(tempfile.mkdtemp()) / f"{peer}-released.pt"))
    return evaluate_source(source, model_name=model if source is None else None, dataset=dataset, split=split,
                           protocol=protocol, data_dir=data_dir, cache_dir=cache_dir, device="cpu")


@pytest.mark.realdata
@pytest.mark.parametrize(("table", "row"), _cases())
def test_readme_figure_is_reproduced(table: ResultsTable, row: ResultsRow, request: pytest.FixtureRequest,
                                     cache_dir: Path):
    attrs = table.attrs
    data_dir = request.getfixturevalue(f"{attrs['dataset']}_root")
    result = _evaluate(row.weights, row.model, attrs["dataset"], attrs["split"], attrs["protocol"], str(data_dir),
                       str(cache_dir))
    measured = measured_figures(table, result)
    for column, printed in row.figures.items():
        assert printed == pytest.approx(measured[column], abs=0.05 + 1e-9), (column, printed, measured[column])
