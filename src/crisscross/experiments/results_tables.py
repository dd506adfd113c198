"""Results tables in Markdown: read them, re-evaluate every row on any split, print or check the figures.

A results table is a Markdown table between two HTML comments that say what its figures are::

    <!-- results dataset=h36m split=val protocol=h36m-10-25-256 metric=mpjpe22_mm -->
    | model | weights | 80 ms | ... | 1000 ms | avg |
    |---|---|---:| ... |---:|---:|
    | `stcformer` | `pretrained/h36m-stcformer-seed0.pt` | 11.7 | ... | 106.3 | 64.0 |
    <!-- /results -->

Two kinds are read:

- ``results`` (forecasting): one column per horizon in milliseconds and ``avg``, each the mean over actions of the
  metric named by ``metric`` (``mpjpe22_mm`` or ``mpjpe32_mm``);
- ``lifting-results`` (lifting): columns ``P1``, ``P2``, ``N-MPJPE`` and ``MPJVE`` (the mean of each).

A row's weights are a checkpoint (a path relative to the working directory or to a folder above the Markdown
file, e.g. the repository root), ``none`` for a weight-free model named in the model column, or ``peer:NAME`` for
a peer's released file, which is imported (:func:`crisscross.runs.peers.import_peer`) when it is given and skipped
otherwise. A row over several checkpoints (the seeds of one recipe, their paths separated by spaces) prints every
figure as ``mean ± sd``: the mean over the checkpoints and their sample standard deviation. A printed figure
matches a measured one within half its last printed digit (plus :data:`FLOAT_SLACK_MM`), so a table printed to
three decimals is checked to about three. :func:`evaluate_tables` re-evaluates every row once per protocol and
split (a weights file shared by the 22- and 32-joint tables is evaluated once); the figures of another split than
the printed one (the test subject S5 for Human3.6M) come from the same call with ``split``. ``crisscross
results`` prints what it returns.
"""

from __future__ import annotations

import math
import re
import statistics
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crisscross.runs.peers import PEER_FORMATS, import_peer
from crisscross.tasks.sources import evaluate_source

__all__ = [
    "KINDS",
    "LIFTING_COLUMNS",
    "TOLERANCE_MM",
    "Mismatch",
    "ResultsRow",
    "ResultsTable",
    "ResultsTableError",
    "combine_figures",
    "evaluate_tables",
    "find_mismatches",
    "format_table",
    "measured_figures",
    "parse_results_tables",
    "read_results_tables",
    "resolve_weights",
    "spread_key",
    "tolerance_mm",
]

#: the block kinds read here, with the attributes each must name
KINDS: dict[str, tuple[str, ...]] = {"results": ("dataset", "split", "protocol", "metric"),
                                     "lifting-results": ("dataset", "split", "protocol")}
#: lifting column -> the metric of the evaluation result it prints
LIFTING_COLUMNS = {"P1": "mpjpe_mm", "P2": "p_mpjpe_mm", "N-MPJPE": "n_mpjpe_mm", "MPJVE": "mpjve_mm"}
#: allowed on top of half the last printed digit, for the float rounding by which two machines' evaluations differ
FLOAT_SLACK_MM = 5e-4


def tolerance_mm(decimals: int) -> float:
    """How far a figure printed with ``decimals`` decimals may be from the measured one: half its last digit."""
    return 0.5 * 10.0 ** -decimals + FLOAT_SLACK_MM


#: the tolerance of a figure printed with one decimal, as most tables print them
TOLERANCE_MM = tolerance_mm(1)


def spread_key(key: str) -> str:
    """The key of a column's spread (sample standard deviation over checkpoints) in a row's figures."""
    return f"{key} sd"

_OPEN = re.compile(r"^<!-- (?P<kind>[a-z-]+) (?P<attrs>[^>]*?) -->\s*$")


class ResultsTableError(ValueError):
    """A results table that cannot be read: the message names the file and line."""


@dataclass(frozen=True)
class ResultsRow:
    """One row: the model, its weights cell, its printed figures by column, its line, its first two cells as
    printed (with their Markdown), and the decimals each figure was printed with (one when not given).

    A row over several checkpoints holds each column's mean under the column's key and its spread under
    :func:`spread_key` of it.
    """

    model: str
    weights: str
    figures: dict[str, float]
    line: int
    printed_head: tuple[str, str] = ("", "")
    decimals: dict[str, int] = field(default_factory=dict)

    @property
    def checkpoints(self) -> tuple[str, ...]:
        """The weights cell's entries: one checkpoint, ``none`` or ``peer:NAME``, or the checkpoints of a seeds row."""
        return _weights_entries(self.weights)

    def printed_decimals(self, key: str) -> int:
        return self.decimals.get(key, 1)


@dataclass(frozen=True)
class ResultsTable:
    """One table: its kind and attributes, figure columns as printed, rows, and where it is."""

    kind: str
    attrs: dict[str, str]
    columns: tuple[str, ...]  # the header's figure cells, e.g. "80 ms", "avg", "P1"
    rows: tuple[ResultsRow, ...]
    source: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def key(self, column: str) -> str:
        """The column's key in a row's figures: the horizon ("80" of "80 ms"), "avg", or the lifting name."""
        return _column_key(self.kind, column)


def _column_key(kind: str, column: str) -> str:
    return column.split()[0] if kind == "results" else column


def _cells(line: str) -> list[str]:
    return [c.replace("`", "").strip() for c in line.strip().strip("|").split("|")]


def _number(text: str, cell: str, where: str) -> tuple[float, int]:
    """A printed figure and its number of decimals."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise ResultsTableError(f"{where}: expected a figure in mm, got {cell!r}") from None
    return value, len(text.partition(".")[2]) if text.replace(".", "").isdigit() else 1


def _figure(cell: str, where: str) -> tuple[float, int, float | None, int]:
    """``(value, decimals, spread or None, its decimals)`` of a cell: ``12.3`` or ``12.34 ± 0.05`` (bold ignored)."""
    text = cell.replace("*", "").strip()
    mean, sep, spread = text.partition("±")
    value, decimals = _number(mean, cell, where)
    if not sep:
        return value, decimals, None, 0
    sd, sd_decimals = _number(spread, cell, where)
    return value, decimals, sd, sd_decimals


def _weights_entries(weights: str) -> tuple[str, ...]:
    return tuple(weights.split())


def _row(kind: str, columns: tuple[str, ...], cells: list[str], where: str) -> tuple[dict[str, float], dict[str, int]]:
    """The figures of a row's cells (means and spreads by key) and their printed decimals."""
    checkpoints = _weights_entries(cells[1])
    several = len(checkpoints) > 1
    if several and any(c == "none" or c.startswith("peer:") for c in checkpoints):
        raise ResultsTableError(f"{where}: a row over several weights takes checkpoints only, got {cells[1]!r}")
    figures: dict[str, float] = {}
    decimals: dict[str, int] = {}
    for column, cell in zip(columns, cells[2:], strict=True):
        key = _column_key(kind, column)
        figures[key], decimals[key], spread, spread_decimals = _figure(cell, where)
        if several and spread is None:
            raise ResultsTableError(f"{where}: a row over {len(checkpoints)} checkpoints prints 'mean ± sd' in "
                                    f"every column, got {cell!r} in {column}")
        if not several and spread is not None:
            raise ResultsTableError(f"{where}: {cell!r} in {column} is a spread, which needs several checkpoints in "
                                    "the weights cell (separated by spaces)")
        if spread is not None:
            figures[spread_key(key)], decimals[spread_key(key)] = spread, spread_decimals
    return figures, decimals


def parse_results_tables(text: str, source: str | Path = "<text>") -> list[ResultsTable]:
    """Every ``results`` and ``lifting-results`` table of a Markdown text, in order."""
    lines = text.splitlines()
    tables: list[ResultsTable] = []
    i = 0
    while i < len(lines):
        match = _OPEN.match(lines[i])
        if not match or match["kind"] not in KINDS:
            i += 1
            continue
        kind, start = match["kind"], i + 1
        attrs = {}
        for item in match["attrs"].split():
            name, sep, value = item.partition("=")
            if not sep or not value:
                raise ResultsTableError(f"{source}:{start}: expected name=value attributes, got {item!r}")
            attrs[name] = value
        missing = [k for k in KINDS[kind] if k not in attrs]
        if missing:
            raise ResultsTableError(f"{source}:{start}: the {kind} block lacks {', '.join(missing)} "
                                    f"(expected {' '.join(f'{k}=...' for k in KINDS[kind])})")
        close = f"<!-- /{kind} -->"
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and lines[i].strip() != close:
            if lines[i].startswith("|"):
                body.append((i + 1, lines[i]))
            i += 1
        if i == len(lines):
            raise ResultsTableError(f"{source}:{start}: the {kind} block is not closed by {close}")
        if len(body) < 3:
            raise ResultsTableError(f"{source}:{start}: the {kind} block holds no table rows")
        header = _cells(body[0][1])
        columns = tuple(header[2:])
        if header[:2] != ["model", "weights"] or not columns:
            raise ResultsTableError(f"{source}:{body[0][0]}: expected the columns model | weights | figures..., "
                                    f"got {' | '.join(header)}")
        if kind == "lifting-results" and (unknown := [c for c in columns if c not in LIFTING_COLUMNS]):
            raise ResultsTableError(f"{source}:{body[0][0]}: unknown lifting column {unknown[0]!r} "
                                    f"(expected some of {', '.join(LIFTING_COLUMNS)})")
        rows = []
        for number, line in body[2:]:
            cells = _cells(line)
            if len(cells) != len(header):
                raise ResultsTableError(f"{source}:{number}: expected {len(header)} cells, got {len(cells)}")
            figures, decimals = _row(kind, columns, cells, f"{source}:{number}")
            raw = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append(ResultsRow(cells[0], cells[1], figures, number, (raw[0], raw[1]), decimals))
        tables.append(ResultsTable(kind, attrs, columns, tuple(rows), Path(source), start))
        i += 1
    return tables


def read_results_tables(path: str | Path) -> list[ResultsTable]:
    """The results tables of a Markdown file; a file without any is an error."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    tables = parse_results_tables(path.read_text(encoding="utf-8"), path)
    if not tables:
        raise ResultsTableError(f"{path}: no results tables (expected <!-- results ... --> or "
                                "<!-- lifting-results ... --> blocks)")
    return tables


def resolve_weights(weights: str, table: ResultsTable) -> Path:
    """The checkpoint a weights cell names: relative to the working directory, else to a folder above the file."""
    candidates = [Path(weights), *(parent / weights for parent in table.source.resolve().parents)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{table.where}: weights {weights} not found in the working directory or a folder "
                            f"above {table.source}")


@dataclass
class _Evaluator:
    """One evaluation per (weights, model, dataset, split, protocol), peers imported once."""

    data_dir: str | None
    cache_dir: str | None
    device: str
    peers: Mapping[str, Path]
    progress: Callable[[str], None]
    results: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    imported: dict[str, Path] = field(default_factory=dict)
    workdir: tempfile.TemporaryDirectory | None = None

    def source(self, table: ResultsTable, weights: str) -> str | None:
        if weights == "none":
            return None
        if weights.startswith("peer:"):
            peer = weights.removeprefix("peer:")
            if peer not in self.imported:
                if self.workdir is None:
                    self.workdir = tempfile.TemporaryDirectory(prefix="crisscross-results-")
                self.imported[peer] = import_peer(peer, self.peers[peer], Path(self.workdir.name) / f"{peer}.pt")
            return str(self.imported[peer])
        return str(resolve_weights(weights, table))

    def __call__(self, table: ResultsTable, weights: str, model: str, split: str) -> dict[str, Any]:
        """The evaluation result of one entry of a weights cell (a checkpoint, ``none`` or ``peer:NAME``)."""
        dataset, protocol = table.attrs["dataset"], table.attrs["protocol"]
        key = (weights, model if weights == "none" else "", dataset, split, protocol)
        if key not in self.results:
            source = self.source(table, weights)
            self.progress(f"evaluating {weights if source else model} on {dataset} {split} ({protocol})")
            self.results[key] = evaluate_source(source, model_name=model if source is None else None,
                                                dataset=dataset, split=split, protocol=protocol,
                                                data_dir=self.data_dir, cache_dir=self.cache_dir, device=self.device)
        return self.results[key]


def measured_figures(table: ResultsTable, result: Mapping[str, Any]) -> dict[str, float]:
    """The figures of ``result`` for every column of ``table``."""
    if table.kind == "results":
        mean = result[table.attrs["metric"]]["mean"]
        return {key: float(mean[key]) for key in map(table.key, table.columns)}
    return {c: float(result[LIFTING_COLUMNS[c]]["mean"]) for c in table.columns}


def combine_figures(per_checkpoint: list[dict[str, float]]) -> dict[str, float]:
    """One checkpoint's figures as they are; several checkpoints' mean by key and sample standard deviation under
    :func:`spread_key` (the figures a seeds row prints as ``mean ± sd``)."""
    if len(per_checkpoint) == 1:
        return dict(per_checkpoint[0])
    combined = {}
    for key in per_checkpoint[0]:
        values = [figures[key] for figures in per_checkpoint]
        combined[key] = statistics.fmean(values)
        combined[spread_key(key)] = statistics.stdev(values)
    return combined


def _peer_name(weights: str) -> str | None:
    return weights.removeprefix("peer:") if weights.startswith("peer:") else None


def evaluate_tables(tables: Iterable[ResultsTable], *, split: str | None = None, data_dir: str | None = None,
                    cache_dir: str | None = None, device: str = "auto", peers: Mapping[str, str | Path] | None = None,
                    progress: Callable[[str], None] = lambda message: None,
                    ) -> list[tuple[ResultsTable, list[dict[str, float] | None]]]:
    """Re-evaluate every row: ``(table, figures by column key per row)``, None for a peer row without its file.

    ``split`` replaces every table's own split (e.g. ``test``); the data and cache folders follow the usual rule
    (the arguments, then ``$CRISSCROSS_DATA`` / ``$CRISSCROSS_CACHE``, then the user config file). A row over
    several checkpoints gets their mean and spread (:func:`combine_figures`).
    """
    peer_files = {name: Path(path) for name, path in (peers or {}).items()}
    for name, path in peer_files.items():
        if name not in PEER_FORMATS:
            raise ValueError(f"unknown peer {name!r} (known: {', '.join(PEER_FORMATS)})")
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (the released weights of peer {name})")
    evaluator = _Evaluator(data_dir, cache_dir, device, peer_files, progress)
    measured = []
    try:
        for table in tables:
            figures: list[dict[str, float] | None] = []
            for row in table.rows:
                peer = _peer_name(row.weights)
                if peer is not None and peer not in peer_files:
                    if peer not in PEER_FORMATS:
                        raise ResultsTableError(f"{table.source}:{row.line}: unknown peer {peer!r} "
                                                f"(known: {', '.join(PEER_FORMATS)})")
                    figures.append(None)
                    continue
                results = [evaluator(table, weights, row.model, split or table.attrs["split"])
                           for weights in row.checkpoints]
                figures.append(combine_figures([measured_figures(table, result) for result in results]))
            measured.append((table, figures))
    finally:
        if evaluator.workdir is not None:
            evaluator.workdir.cleanup()
    return measured


def format_table(table: ResultsTable, figures: list[dict[str, float] | None], split: str | None = None) -> str:
    """The table as Markdown with the measured figures (each to the decimals the table printed), between its block
    markers."""
    attrs = {**table.attrs, **({"split": split} if split else {})}
    lines = [f"<!-- {table.kind} {' '.join(f'{k}={v}' for k, v in attrs.items())} -->",
             "| " + " | ".join(("model", "weights", *table.columns)) + " |",
             "|---|---|" + "---:|" * len(table.columns)]
    for row, measured in zip(table.rows, figures, strict=True):
        cells = ["n/a" if measured is None else _cell(row, measured, table.key(c)) for c in table.columns]
        lines.append("| " + " | ".join((*row.printed_head, *cells)) + " |")
    lines.append(f"<!-- /{table.kind} -->")
    return "\n".join(lines)


def _cell(row: ResultsRow, measured: dict[str, float], key: str) -> str:
    text = _decimal(measured[key], row.printed_decimals(key))
    spread = spread_key(key)
    return text if spread not in measured else f"{text} ± {_decimal(measured[spread], row.printed_decimals(spread))}"


def _decimal(value: float, decimals: int) -> str:
    return "nan" if math.isnan(value) else f"{value:.{decimals}f}"


@dataclass(frozen=True)
class Mismatch:
    """A printed figure that the re-evaluation does not reproduce."""

    where: str
    model: str
    weights: str
    column: str
    printed: float
    measured: float

    def __str__(self) -> str:
        return (f"{self.where}: {self.model} ({self.weights}), {self.column}: printed {self.printed}, "
                f"measured {self.measured:.3f}")


def find_mismatches(table: ResultsTable, figures: list[dict[str, float] | None]) -> list[Mismatch]:
    """The printed figures of ``table`` (means and spreads) further from the measured ones than half their last
    printed digit (:func:`tolerance_mm`; NaN matches NaN)."""
    found = []
    for row, measured in zip(table.rows, figures, strict=True):
        if measured is None:
            continue
        for column in table.columns:
            key = table.key(column)
            for figure_key, label in ((key, column), (spread_key(key), f"{column} sd")):
                if figure_key not in row.figures:
                    continue
                printed, value = row.figures[figure_key], measured.get(figure_key, math.nan)
                same = ((math.isnan(printed) and math.isnan(value))
                        or abs(printed - value) <= tolerance_mm(row.printed_decimals(figure_key)))
                if not same:
                    found.append(Mismatch(f"{table.source}:{row.line}", row.model, row.weights, label, printed, value))
    return found
