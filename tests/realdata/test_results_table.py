"""Every figure of the committed results tables is reproduced by re-evaluating its weights on the real data.

Results tables live in ``README.md`` (the headline tables) and in ``docs/results/*.md`` (every table). A results
table sits between ``<!-- results dataset=D split=S protocol=P metric=M -->`` and ``<!-- /results -->``. Its
columns are the model, its weights (a committed checkpoint, "none" for a model without weights, or
``peer:NAME`` for a peer's released file, imported at test time and skipped where it is absent), one column
per horizon in milliseconds and the 25-frame average ("avg"). A row over several checkpoints (the seeds of one
recipe) prints ``mean ± sd``. Each printed figure must equal the re-evaluated one to half its last printed digit
(0.05 mm at one decimal, about 0.001 mm at three). A row printed in several files is evaluated once, and must print the
same figures everywhere; weights that appear in several tables of one protocol (22 and 32 joints) are evaluated
once and their result is checked against each table.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import pytest
from test_peers_real import released_file

from crisscross.experiments.results_tables import (
    ResultsRow,
    ResultsTable,
    combine_figures,
    measured_figures,
    parse_results_tables,
    tolerance_mm,
)
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
    """(table, row) pairs over all files, a row printed in several files to the same decimals kept once (its first
    occurrence); a row printed to more decimals elsewhere is checked to those too (evaluated once all the same)."""
    seen: dict[tuple, tuple[ResultsTable, ResultsRow]] = {}
    for table in collect_results_tables():
        for row in table.rows:
            seen.setdefault((*_row_key(table, row), tuple(sorted(row.decimals.items()))), (table, row))
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
            for weights in row.checkpoints:
                peer = weights.startswith("peer:") and weights.removeprefix("peer:") in PEER_FORMATS
                known = weights == "none" or peer or (REPO_ROOT / weights).is_file()
                assert known, (table.where, weights)


def test_a_row_printed_twice_prints_the_same_figures():
    """The same figures wherever a row is printed, to the fewer decimals of the two printings."""
    seen: dict[tuple[str, ...], tuple[str, ResultsRow]] = {}
    for table in collect_results_tables():
        for row in table.rows:
            key = _row_key(table, row)
            if key not in seen:
                seen[key] = (table.where, row)
                continue
            first_where, first = seen[key]
            assert set(row.figures) == set(first.figures), (key, first_where, table.where)
            for figure, value in row.figures.items():
                decimals = min(row.printed_decimals(figure), first.printed_decimals(figure))
                assert abs(value - first.figures[figure]) <= tolerance_mm(decimals), (key, figure, first_where,
                                                                                     table.where)


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
    results = [_evaluate(weights, row.model, attrs["dataset"], attrs["split"], attrs["protocol"], str(data_dir),
                         str(cache_dir)) for weights in row.checkpoints]
    measured = combine_figures([measured_figures(table, result) for result in results])
    assert set(measured) == set(row.figures), (set(measured), set(row.figures))
    for key, printed in row.figures.items():
        tolerance = tolerance_mm(row.printed_decimals(key))
        assert printed == pytest.approx(measured[key], abs=tolerance), (key, printed, measured[key])
