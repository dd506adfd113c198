"""Benchmark rows: their columns, the files they are appended to, and the tables printed from them.

A row is a flat dict with every column of :data:`ROW_COLUMNS` (``None`` where a value does not apply), so a sweep
appends to one ``.csv`` or ``.jsonl`` file across runs and machines. :func:`best_of_repeats` keeps each
configuration's fastest repeat, :func:`precision_speedups` compares precisions, :func:`format_table` prints the
model-zoo table with the device, the measured matmul ceilings and the FLOP convention above it and the MFU
convention below it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from tabulate import tabulate

from crisscross.benchmarking.flops import FLOP_CONVENTION
from crisscross.training.precision import PRECISION_DTYPES

__all__ = [
    "MFU_CONVENTION",
    "ROW_COLUMNS",
    "append_rows",
    "best_of_repeats",
    "format_table",
    "one_line",
    "precision_speedups",
]

#: Columns of every row, in file order.
ROW_COLUMNS: tuple[str, ...] = (
    "model", "model_args", "mode", "batch_size", "input_frames", "output_frames", "precision", "compile", "repeat",
    "status", "message", "parameters", "gflops_per_sample", "peak_mem_mb", "samples_per_s", "latency_ms_median",
    "latency_ms_p10", "latency_ms_p90", "achieved_gflops_per_s", "mfu_pct", "ceiling_gflops_per_s", "ceiling_per_size",
    "first_iter_s", "warmup", "iters", "device", "device_name", "threads",
    "peak_mem_method", "flop_counter", "load_avg_1m", "torch", "cuda", "git_commit", "timestamp",
)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` with its whitespace collapsed to single spaces, cut to ``limit`` characters (ending ``...``)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _config_key(row: dict[str, Any]) -> tuple:
    return tuple(str(row.get(k)) for k in ("model", "mode", "batch_size", "input_frames", "output_frames",
                                           "precision", "compile", "device"))


def best_of_repeats(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: the successful repeat with the lowest median latency (else the first row).

    On a machine shared with other work, contention only ever adds time, so the fastest repeat is the best estimate
    of the uncontended speed (the same argument as timing the minimum in ``timeit``).
    """
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = _config_key(row)
        current = best.get(key)
        if current is None or (row["status"] == "ok" and (
                current["status"] != "ok" or float(row["latency_ms_median"]) < float(current["latency_ms_median"]))):
            best[key] = row
    return list(best.values())


def precision_speedups(rows: Sequence[dict[str, Any]], baseline: str = "fp32",
                       tablefmt: str = "github") -> str:
    """Table of the speed-up of every other precision over ``baseline`` (median-latency ratio) per configuration.

    Args:
        rows: benchmark rows (use :func:`best_of_repeats` first when there are repeats).
        baseline: the reference precision.
        tablefmt: tabulate format.

    Returns:
        The table, or an empty string when fewer than two precisions succeeded for any configuration.
    """
    ok = [r for r in rows if r["status"] == "ok"]
    others = [p for p in PRECISION_DTYPES if p != baseline and any(r["precision"] == p for r in ok)]
    base = {_config_key({**r, "precision": baseline}): r for r in ok if r["precision"] == baseline}
    lines = []
    for ref in base.values():
        cells = []
        for p in others:
            match = [r for r in ok if _config_key(r) == _config_key({**ref, "precision": p})]
            cells.append(f"{float(ref['latency_ms_median']) / float(match[0]['latency_ms_median']):.2f}x"
                         if match else "")
        if any(cells):
            lines.append([ref["model"], ref["mode"], ref["batch_size"], "on" if ref["compile"] in (True, "True") else
                          "off", f"{float(ref['latency_ms_median']):.2f}"] + cells)
    if not lines:
        return ""
    headers = ["model", "mode", "batch", "compile", f"{baseline} median ms"] + [f"{p} speed-up" for p in others]
    return tabulate(lines, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def append_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Append rows to a ``.csv`` (header written once; an existing header must match) or ``.jsonl`` file."""
    path = Path(path)
    rows = list(rows)
    if path.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"benchmark output {path} must end in .csv or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with open(path, "a") as fh:
            for row in rows:
                fh.write(json.dumps({c: row.get(c) for c in ROW_COLUMNS}) + "\n")
        return path
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if tuple(header) != ROW_COLUMNS:
            raise ValueError(f"{path} has other columns than this benchmark writes; use a new file")
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROW_COLUMNS))
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c) for c in ROW_COLUMNS})
    return path


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None or value == "" else format(float(value), spec)


def _peak(row: dict[str, Any]) -> str:
    text = _fmt(row.get("peak_mem_mb"), ".1f")
    return f">={text}" if text and "lower bound" in str(row.get("peak_mem_method")) else text


#: How the achieved GFLOP/s and MFU columns are computed (printed under the table, quoted in docs/performance.md).
MFU_CONVENTION = ("GFLOP/s = counted FLOPs of one step / median step time; a train step's FLOPs are forward + "
                  "backward as counted (not assumed 3x forward), and its time includes the loss and optimizer "
                  "(uncounted); MFU % = GFLOP/s / the matmul ceiling of the row's precision, measured in this run")


def _ceiling_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per (device, precision) whose rows carry a ceiling; ``not measured`` when none does."""
    seen: dict[tuple[str, str], str] = {}
    for r in rows:
        if r.get("ceiling_gflops_per_s") is not None:
            key = (str(r["device"]), str(r["precision"]))
            seen.setdefault(key, f"matmul ceiling {key[1]} on {key[0]}: {float(r['ceiling_gflops_per_s']):,.1f} "
                                 f"GFLOP/s (best square GEMM in {key[1]}, measured in this run: "
                                 f"{r.get('ceiling_per_size') or '?'})")
    return [seen[k] for k in sorted(seen)] or ["matmul ceiling: not measured (no MFU)"]


def format_table(rows: Sequence[dict[str, Any]], tablefmt: str = "github") -> str:
    """A model-zoo table (one line per row): above it the device, thread count, matmul ceilings and FLOP
    convention, below it how GFLOP/s and MFU are computed (:data:`MFU_CONVENTION`)."""
    headers = ["model", "mode", "batch", "prec", "compile", "params", "GFLOPs/sample", "peak MiB", "samples/s",
               "median ms", "p10-p90 ms", "GFLOP/s", "MFU %", "status"]
    lines = []
    for r in rows:
        spread = (f"{_fmt(r['latency_ms_p10'], '.2f')}-{_fmt(r['latency_ms_p90'], '.2f')}"
                  if r.get("latency_ms_p10") is not None else "")
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {one_line(r.get('message') or '', 60)}"
        lines.append([r["model"], r["mode"], r["batch_size"], r["precision"], "on" if r["compile"] else "off",
                      f"{r['parameters']:,}" if r.get("parameters") is not None else "",
                      _fmt(r.get("gflops_per_sample"), ".4f"), _peak(r),
                      _fmt(r.get("samples_per_s"), ",.0f"), _fmt(r.get("latency_ms_median"), ".2f"), spread,
                      _fmt(r.get("achieved_gflops_per_s"), ",.2f"), _fmt(r.get("mfu_pct"), ".2f"), status])
    devices = sorted({f"{r['device']} ({r['device_name']}, {r.get('threads')} threads)" for r in rows
                      if r.get("device_name")})
    header = "\n".join([
        f"device: {', '.join(devices) or 'unknown'}; torch {torch.__version__}",
        *_ceiling_lines(rows),
        f"{FLOP_CONVENTION}; train = full step (forward, loss, backward, optimizer), infer = forward; "
        "latency per batch after warm-up; peak MiB: CUDA max_memory_allocated, CPU resident-set growth "
        "(>= marks a lower bound from a shared process; use --isolate)",
    ])
    table = tabulate(lines, headers=headers, tablefmt=tablefmt, disable_numparse=True)
    return f"{header}\n{table}\n{MFU_CONVENTION}"
