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
otherwise. :func:`evaluate_tables` re-evaluates every row once per protocol and split (a weights file shared by the
22- and 32-joint tables is evaluated once); the figures of another split than the printed one (the test subject
S5 for Human3.6M) come from the same call with ``split``. ``crisscross results`` prints what it returns.
"""

from __future__ import annotations

import math
import re
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
    "evaluate_tables",
    "find_mismatches",
    "format_table",
    "measured_figures",
    "parse_results_tables",
    "read_results_tables",
    "resolve_weights",
]

#: the block kinds read here, with the attributes each must name
KINDS: dict[str, tuple[str, ...]] = {"results": ("dataset", "split", "protocol", "metric"),
                                     "lifting-results": ("dataset", "split", "protocol")}
#: lifting column -> the metric of the evaluation result it prints
LIFTING_COLUMNS = {"P1": "mpjpe_mm", "P2": "p_mpjpe_mm", "N-MPJPE": "n_mpjpe_mm", "MPJVE": "mpjve_mm"}
#: the tables print one decimal: a printed figure matches a measured one within half its last digit
TOLERANCE_MM = 0.05 + 1e-9

_OPEN = re.compile(r"^<!-- (?P<kind>[a-z-]+) (?P<attrs>[^>]*?) -->\s*$")


class ResultsTableError(ValueError):
    """A results table that cannot be read: the message names the file and line."""


@dataclass(frozen=True)
class ResultsRow:
    """One row: the model, its weights cell, its printed figures by column, its line, and its first two cells as
    printed (with their Markdown)."""

    model: str
    weights: str
    figures: dict[str, float]
    line: int
    printed_head: tuple[str, str] = ("", "")


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


def _figure(cell: str, where: str) -> float:
    text = cell.strip("* ")
    try:
        return float(text)
    except ValueError:
        raise ResultsTableError(f"{where}: expected a figure in mm, got {cell!r}") from None


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
            where = f"{source}:{number}"
            figures = {_column_key(kind, c): _figure(v, where) for c, v in zip(columns, cells[2:], strict=True)}
            raw = [c.strip() for c in line.strip().strip("|").split("|")]
            rows.append(ResultsRow(cells[0], cells[1], figures, number, (raw[0], raw[1])))
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

    def source(self, table: ResultsTable, row: ResultsRow) -> str | None:
        if row.weights == "none":
            return None
        if row.weights.startswith("peer:"):
            peer = row.weights.removeprefix("peer:")
            if peer not in self.imported:
                if self.workdir is None:
                    self.workdir = tempfile.TemporaryDirectory(prefix="crisscross-results-")
                self.imported[peer] = import_peer(peer, self.peers[peer], Path(self.workdir.name) / f"{peer}.pt")
            return str(self.imported[peer])
        return str(resolve_weights(row.weights, table))

    def __call__(self, table: ResultsTable, row: ResultsRow, split: str) -> dict[str, Any]:
        dataset, protocol = table.attrs["dataset"], table.attrs["protocol"]
        key = (row.weights, row.model if row.weights == "none" else "", dataset, split, protocol)
        if key not in self.results:
            source = self.source(table, row)
            self.progress(f"evaluating {row.weights if source else row.model} on {dataset} {split} ({protocol})")
            self.results[key] = evaluate_source(source, model_name=row.model if source is None else None,
                                                dataset=dataset, split=split, protocol=protocol,
                                                data_dir=self.data_dir, cache_dir=self.cache_dir, device=self.device)
        return self.results[key]


def measured_figures(table: ResultsTable, result: Mapping[str, Any]) -> dict[str, float]:
    """The figures of ``result`` for every column of ``table``."""
    if table.kind == "results":
        mean = result[table.attrs["metric"]]["mean"]
        return {key: float(mean[key]) for key in map(table.key, table.columns)}
    return {c: float(result[LIFTING_COLUMNS[c]]["mean"]) for c in table.columns}


def _peer_name(weights: str) -> str | None:
    return weights.removeprefix("peer:") if weights.startswith("peer:") else None


def evaluate_tables(tables: Iterable[ResultsTable], *, split: str | None = None, data_dir: str | None = None,
                    cache_dir: str | None = None, device: str = "auto", peers: Mapping[str, str | Path] | None = None,
                    progress: Callable[[str], None] = lambda message: None,
                    ) -> list[tuple[ResultsTable, list[dict[str, float] | None]]]:
    """Re-evaluate every row: ``(table, figures by column key per row)``, None for a peer row without its file.

    ``split`` replaces every table's own split (e.g. ``test``); the data and cache folders follow the usual rule
    (the arguments, then ``$CRISSCROSS_DATA`` / ``$CRISSCROSS_CACHE``, then the user config file).
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
                result = evaluator(table, row, split or table.attrs["split"])
                figures.append(measured_figures(table, result))
            measured.append((table, figures))
    finally:
        if evaluator.workdir is not None:
            evaluator.workdir.cleanup()
    return measured


def format_table(table: ResultsTable, figures: list[dict[str, float] | None], split: str | None = None) -> str:
    """The table as Markdown with the measured figures (one decimal), between its block markers."""
    attrs = {**table.attrs, **({"split": split} if split else {})}
    lines = [f"<!-- {table.kind} {' '.join(f'{k}={v}' for k, v in attrs.items())} -->",
             "| " + " | ".join(("model", "weights", *table.columns)) + " |",
             "|---|---|" + "---:|" * len(table.columns)]
    for row, measured in zip(table.rows, figures, strict=True):
        cells = ["n/a" if measured is None else _one_decimal(measured[table.key(c)]) for c in table.columns]
        lines.append("| " + " | ".join((*row.printed_head, *cells)) + " |")
    lines.append(f"<!-- /{table.kind} -->")
    return "\n".join(lines)


def _one_decimal(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.1f}"


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
    """The printed figures of ``table`` more than :data:`TOLERANCE_MM` from the measured ones (NaN matches NaN)."""
    found = []
    for row, measured in zip(table.rows, figures, strict=True):
        if measured is None:
            continue
        for column in table.columns:
            key = table.key(column)
            printed, value = row.figures[key], measured[key]
            same = (math.isnan(printed) and math.isnan(value)) or abs(printed - value) <= TOLERANCE_MM
            if not same:
                found.append(Mismatch(f"{table.source}:{row.line}", row.model, row.weights, column, printed, value))
    return found
