"""Comparison reports of run folders: tables (Markdown, CSV, HTML) and figures (PNG), side by side.

For every run the report gives its parameters, mean training time per epoch and throughput, peak memory (GPU
allocated memory when the run used CUDA, the process's peak resident set size on CPU; ``env.json`` says which),
the best validation metric over epochs, the final validation MPJPE per horizon (``eval.json``, best checkpoint),
and the test metrics when the folder holds a further evaluation file (``eval_<split>.json``, e.g. from
``crisscross eval RUN --split test --output RUN/eval_test.json``). Completed runs are ranked; running and crashed
runs (see :func:`crisscross.experiments.summaries.running_status`), failed, interrupted and pruned ones are
listed apart and never ranked or averaged. Runs whose configurations differ only in the seed are also summarised
as mean and standard deviation per configuration.

Figures read like a tracker's dashboard: axes name the quantity and its unit (millimetres for every positional
error), legends name each run by the settings that differ between the runs (``optim=adam lr=3e-4 seed=1``),
colours mark configurations, markers seeds, and line styles the status. Learning curves (training loss and
validation metric, against epochs and against wall-clock training time) overlay all runs; a further figure puts
each run's best validation metric against every setting that differs (a sweep's parameters).

Everything is written into a new folder; an existing folder is never written into.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from crisscross.analysis.plots import (
    axis_label,
    metric_label,
    new_figure,
    plot_by_setting,
    plot_curves,
    save_figure,
    short_value,
    status_kind,
)
from crisscross.evaluation.forecasting import FULL_JOINTS_KEY, PREDICTED_JOINTS_KEY
from crisscross.experiments.summaries import (
    RunSummary,
    best_value,
    config_diff,
    flatten_config,
    load_run_summaries,
)
from crisscross.runs.folders import find_runs, read_epoch_rows
from crisscross.tasks.registry import DEFAULT_TASK, get_task

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "CURVE_FILES",
    "PREDICTED_KEY",
    "SETTINGS_FILE",
    "Report",
    "build_report",
    "default_labels",
    "expand_run_paths",
    "report_figures",
    "short_names",
    "write_report",
]

PREDICTED_KEY = PREDICTED_JOINTS_KEY  # eval.json key of the predicted-joint averaging
FULL_KEY = FULL_JOINTS_KEY
_SEED_SUFFIX = re.compile(r"[\s,;_-]*\b(s|seed)[ =]?\d+$")
# Config keys that never make two runs different experiments.
_INCIDENTAL = ("track.*", "train.progress", "train.device", "train.num_threads", "data.data_dir", "data.cache_dir")
_MAX_LABEL_KEYS = 6  # legend labels name at most this many differing settings (the diff table lists all)
_MAX_SETTING_PANELS = 9
# file name -> (x column, "train" or "val"): the learning curves, all runs overlaid
CURVE_FILES = {
    "train_loss_vs_epoch.png": ("epoch", "train"),
    "train_loss_vs_time.png": ("time/wall_s", "train"),
    "val_vs_epoch.png": ("epoch", "val"),
    "val_vs_time.png": ("time/wall_s", "val"),
}
SETTINGS_FILE = "best_val_by_setting.png"  # written when settings differ between runs
_MM_PER_M = 1000.0


@dataclass
class Report:
    """A report's data before it is written.

    Attributes:
        runs: run summaries in report order.
        labels: one label per run (legends and tables).
        configurations: one per run: its label without the seed (runs of one configuration share a colour).
        table: wide rows, one per run (the CSV).
        groups: per-configuration rows (mean and standard deviation over the seeds of completed runs), when some
            configuration has more than one run.
        diff: config keys that differ between runs -> label -> value.
        settings: the differing config keys other than the seed -> their short names (the horizontal axes of
            :data:`SETTINGS_FILE`).
        curves: tidy per-epoch rows for the learning curves (``run``, ``configuration``, ``status``, ``epoch``,
            ``time/wall_s``, the logged metrics, and ``train_plot``/``train_axis``: the training loss as plotted
            and the axis it is plotted on).
        val_metric: the validation metric the curves and "best val" column use.
        eval_tags: the extra evaluation files found, e.g. ``["test"]``.
        horizons: horizon labels (ms) of the per-horizon columns.
    """

    runs: list[RunSummary]
    labels: list[str]
    configurations: list[str] = field(default_factory=list)
    table: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    curves: list[dict[str, Any]] = field(default_factory=list)
    val_metric: str = ""
    eval_tags: list[str] = field(default_factory=list)
    horizons: list[str] = field(default_factory=list)


def expand_run_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders from run folders or folders of runs (e.g. a sweep's ``runs/``), duplicates dropped.

    Raises:
        FileNotFoundError: a path does not exist or holds no run folder.
    """
    found: list[Path] = []
    for p in paths:
        runs = find_runs(p)
        if not runs:
            raise FileNotFoundError(f"{p} holds no run folders (no config.yaml with status.json/env.json)")
        found.extend(r for r in runs if r not in found)
    return found


def short_names(keys: Sequence[str]) -> dict[str, str]:
    """Short names of dotted config keys: the last component (the section for ``*.name``: ``optim.name`` ->
    ``optim``; ``args`` skipped), lengthened from the right while two keys would share a name."""

    def name(key: str, n: int) -> str:
        parts = [p for p in key.split(".") if p != "args"] or [key]
        if len(parts) > 1 and parts[-1] == "name":
            parts = parts[:-1]
        return ".".join(parts[-n:])

    length = dict.fromkeys(keys, 1)
    while True:
        names = {k: name(k, length[k]) for k in keys}
        clashes = [k for k in keys if sum(v == names[k] for v in names.values()) > 1]
        grown = [k for k in clashes if name(k, length[k] + 1) != names[k]]
        if not grown:
            return names if not clashes else {k: (k if k in clashes else v) for k, v in names.items()}
        for k in grown:
            length[k] += 1


def _ordered_keys(diff: Mapping[str, Any]) -> list[str]:
    """Differing keys in legend order: the model, then other choices by name (``optim.name``), the seed last."""
    return sorted(diff, key=lambda k: (k != "model.name", not k.endswith(".name"), k == "seed", k))


def _setting_labels(runs: Sequence[RunSummary]) -> tuple[list[str], list[str], dict[str, str]]:
    """Per run: the label naming its differing settings, the same without the seed; and the setting names."""
    diff = config_diff({str(i): r.config for i, r in enumerate(runs)}, ignore=_INCIDENTAL)
    keys = _ordered_keys(diff)
    names = short_names(keys)
    seed = ["seed"] if "seed" in diff else []
    shown = [k for k in keys if k != "seed"][:_MAX_LABEL_KEYS - len(seed)] + seed
    labels, configurations = [], []
    for i, r in enumerate(runs):
        parts = [(k, f"{names[k]}={short_value(diff[k][str(i)])}") for k in shown]
        fallback = r.model or "run"
        labels.append(" ".join(p for _, p in parts) or fallback)
        configurations.append(" ".join(p for k, p in parts if k != "seed") or fallback)
    return _unique(labels), configurations, {k: names[k] for k in keys if k != "seed"}


def _unique(labels: list[str]) -> list[str]:
    """Labels made distinct by a running number where two runs share one (never by a path or timestamp)."""
    counts: dict[str, int] = {}
    out = []
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
        out.append(f"{lab} #{counts[lab]}" if labels.count(lab) > 1 else lab)
    return out


def default_labels(runs: Sequence[RunSummary]) -> list[str]:
    """Short unique labels naming the config values that differ between runs, e.g. ``optim=adam lr=3e-4 seed=1``.

    Keys are shortened (:func:`short_names`); at most six are named (the model and other ``*.name`` choices
    first, the seed last). When nothing differs the label is the model name, numbered if needed; a run folder's
    name or timestamp is never used.
    """
    return _setting_labels(runs)[0]


def _eval_files(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for f in sorted(run_dir.glob("eval_*.json")):
        try:
            data = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict) and PREDICTED_KEY in data:
            out[f.stem[len("eval_"):]] = data
    return out


def _mean_table(result: Mapping[str, Any] | None, key: str) -> dict[str, float]:
    node = (result or {}).get(key) or {}
    mean = node.get("mean", node) if isinstance(node, dict) else {}
    return {str(k): float(v) for k, v in mean.items() if isinstance(v, (int, float))}


def _memory_kind(device: str | None) -> str:
    if device is None:
        return ""
    return "GPU allocated" if device.startswith("cuda") else "process RSS"


def _mean_of(rows: Sequence[Mapping[str, Any]], key: str) -> float | None:
    vals = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))]
    return statistics.fmean(vals) if vals else None


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _default_val_metric(runs: Sequence[RunSummary]) -> str:
    """The per-epoch validation metric of the runs' task (the most common task when they differ)."""
    tasks = [str(r.config.get("task") or DEFAULT_TASK) for r in runs] or [DEFAULT_TASK]
    name = max(dict.fromkeys(tasks), key=tasks.count)
    try:
        return get_task(name).validation_metric
    except ValueError:
        return get_task(DEFAULT_TASK).validation_metric


# Axis labels of the training-loss panels, by what is plotted.
_LOSS_MM = "training loss: MPJPE [mm] (logged in m, \N{MULTIPLICATION SIGN}1000)"
_TERM_MM = "training MPJPE, position term of the loss [mm]"
_MIXED_MM = "training MPJPE [mm] (loss \N{MULTIPLICATION SIGN}1000, or its position term)"


def _training_loss(config: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[Any]]:
    """The training loss of one run as plotted, per epoch row: ``(axis label, values)``.

    A loss that is a positional error (MPJPE, logged in metres) is shown in millimetres: the loss times 1000
    when it is MPJPE alone (the logged ``train/epoch_mpjpe_mm`` equals it), else the position term the engine
    logs in millimetres (the loss adds a velocity term or a model's own terms, e.g. STCFormer's flag loss, which
    have other units). Any other loss keeps its logged value and is labelled with its name and unit.
    """
    task = str(config.get("task") or DEFAULT_TASK)
    loss = "mpjpe" if task == "lifting" else str((config.get("train") or {}).get("loss") or "mpjpe")
    logged = [r.get("train/epoch_loss") for r in rows]
    if not config:
        return "training loss, epoch mean (unit unknown: no config.yaml)", logged
    if loss != "mpjpe":
        unit = "m²" if loss == "mse" else "as logged"
        return f"training loss: {loss.upper()} of positions [{unit}]", logged
    term = [r.get("train/epoch_mpjpe_mm") for r in rows]
    pairs = [(a, b) for a, b in zip(logged, term) if _finite(a) and _finite(b)]
    if pairs and not all(math.isclose(a * _MM_PER_M, b, rel_tol=1e-4, abs_tol=1e-6) for a, b in pairs):
        return _TERM_MM, term
    return _LOSS_MM, [a * _MM_PER_M if _finite(a) else None for a in logged]


def build_report(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None,
                 val_metric: str | None = None) -> Report:
    """Collect the tables and curve data of a report.

    Args:
        run_dirs: run folders.
        labels: one label per run (default: :func:`default_labels`).
        val_metric: the per-epoch validation metric for the curves and the "best val" column (default: the
            runs' task's, e.g. ``val/mpjpe22_avg_mm`` for forecasting).

    Returns:
        The report data.

    Raises:
        ValueError: ``labels`` does not match ``run_dirs`` or repeats a label.
    """
    if labels is not None and len(labels) != len(run_dirs):
        raise ValueError(f"need {len(run_dirs)} distinct labels, got {list(labels)}")
    runs = load_run_summaries(run_dirs)  # a folder deleted since it was found is left out, with its label
    if labels is not None:
        kept = {r.path for r in runs}
        labels = [lab for lab, d in zip(labels, run_dirs) if Path(d) in kept]
    if not runs:
        raise FileNotFoundError(f"none of the {len(run_dirs)} run folders exists any more")
    auto_labels, auto_configurations, settings = _setting_labels(runs)
    if labels is None:
        labels, configurations = auto_labels, auto_configurations
    else:
        labels = list(labels)
        configurations = [_SEED_SUFFIX.sub("", lab) or lab for lab in labels]
    if len(labels) != len(runs) or len(set(labels)) != len(labels):
        raise ValueError(f"need {len(runs)} distinct labels, got {labels}")
    val_metric = val_metric or _default_val_metric(runs)
    rep = Report(runs=runs, labels=labels, configurations=configurations, settings=settings, val_metric=val_metric)
    extra = {label: _eval_files(r.path) for label, r in zip(labels, runs)}
    rep.eval_tags = sorted({tag for e in extra.values() for tag in e})
    horizons: list[str] = []
    for r in runs:
        for h in (r.eval or {}).get("horizons_ms", []):
            if str(h) not in horizons:
                horizons.append(str(h))
    rep.horizons = horizons
    for label, configuration, r in zip(labels, configurations, runs):
        rows = read_epoch_rows(r.path)
        rep.table.append(_table_row(rep, label, r, rows, extra[label]))
        train_axis, train_values = _training_loss(r.config, rows)
        for x, train_value in zip(rows, train_values):
            rep.curves.append({"run": label, "configuration": configuration, "status": r.status,
                               **{k: v for k, v in x.items() if k.startswith("train/epoch_")},  # task's terms
                               **{k: x.get(k) for k in ("epoch", "time/wall_s", "train/epoch_loss", val_metric)},
                               "train_plot": train_value, "train_axis": train_axis})
    _rank(rep.table)
    rep.diff = config_diff({label: r.config for label, r in zip(labels, runs)}, ignore=_INCIDENTAL)
    rep.groups = _seed_groups(rep, auto_configurations)
    return rep


def _table_row(rep: Report, label: str, r: RunSummary, rows: Sequence[Mapping[str, Any]],
               extra: Mapping[str, Any]) -> dict[str, Any]:
    """The wide row of one run (the CSV's columns)."""
    best, best_epoch = best_value(rows, rep.val_metric)
    row: dict[str, Any] = {
        "run": label, "path": str(r.path), "status": r.status, "status_detail": r.status_detail,
        "rank": None, "model": r.model, "dataset": r.dataset,
        "device": r.device, "precision": (r.config.get("train") or {}).get("precision"),
        "params": r.parameters, "epochs": r.epochs, "epochs_total": r.epochs_total, "s_per_epoch": r.epoch_time_s,
        "samples_per_s": _mean_of(rows, "time/samples_per_s"), "peak_memory_mb": r.peak_memory_mb,
        "memory_kind": _memory_kind(r.device), "train_time_s": r.train_time_s,
        "best_val": best, "best_epoch": best_epoch,
    }
    for key, value in flatten_config(r.config).items():
        if key in rep.settings:
            row[f"setting:{key}"] = value
    val = _mean_table(r.eval, PREDICTED_KEY)
    row["val_avg"] = val.get("avg")
    row["val32_avg"] = _mean_table(r.eval, FULL_KEY).get("avg")
    for h in rep.horizons:
        row[f"val_{h}ms"] = val.get(h)
    for tag in rep.eval_tags:
        res = extra.get(tag)
        t = _mean_table(res, PREDICTED_KEY)
        row[f"{tag}_avg"] = t.get("avg")
        row[f"{tag}32_avg"] = _mean_table(res, FULL_KEY).get("avg")
        for h in rep.horizons:
            row[f"{tag}_{h}ms"] = t.get(h)
    row["error"] = r.error
    return row


def _rank_value(row: Mapping[str, Any]) -> float | None:
    """What ranks a completed run: its final validation average (``eval.json``), else its best per-epoch value."""
    for key in ("val_avg", "best_val"):
        if _finite(row.get(key)):
            return float(row[key])
    return None


def _rank(table: list[dict[str, Any]]) -> None:
    """Rank completed runs (1 = lowest validation error); runs of any other status get no rank."""
    ranked = sorted((v, i) for i, row in enumerate(table)
                    if status_kind(row["status"]) == "finished" and (v := _rank_value(row)) is not None)
    for place, (_, i) in enumerate(ranked, start=1):
        table[i]["rank"] = place


def _seed_groups(rep: Report, auto_configurations: Sequence[str]) -> list[dict[str, Any]]:
    """Runs grouped by configuration (config without seed); statistics over the completed runs only."""
    groups: dict[str, dict[str, Any]] = {}
    for r, row, conf, auto in zip(rep.runs, rep.table, rep.configurations, auto_configurations):
        flat = {k: v for k, v in flatten_config(r.config).items()
                if k != "seed" and not any(k.startswith(p.rstrip("*")) if p.endswith("*") else k == p
                                           for p in _INCIDENTAL)}
        key = json.dumps(flat, sort_keys=True, default=str)
        g = groups.setdefault(key, {"names": [], "auto": auto, "rows": []})
        g["names"].append(conf)
        g["rows"].append(row)
    if all(len(g["rows"]) < 2 for g in groups.values()):
        return []
    out = []
    metrics = ["best_val", "val_avg", *(f"{t}_avg" for t in rep.eval_tags), "s_per_epoch"]
    for g in groups.values():
        finished = [x for x in g["rows"] if status_kind(x["status"]) == "finished"]
        name = g["names"][0] if len(set(g["names"])) == 1 else g["auto"]
        entry: dict[str, Any] = {"configuration": name, "runs": len(finished),
                                 "unfinished": len(g["rows"]) - len(finished)}
        for m in metrics:
            vals = [float(x[m]) for x in finished if _finite(x.get(m))]
            entry[f"{m}_mean"] = statistics.fmean(vals) if vals else None
            entry[f"{m}_std"] = statistics.stdev(vals) if len(vals) > 1 else None
        out.append(entry)
    return out


def _fmt(v: Any, digits: int = 1) -> Any:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return v


def _short_metric(key: str) -> str:
    """A compact column name for a metric: ``val MPJPE (mm)``."""
    name, unit = metric_label(key)
    name = name.replace("validation ", "val ").split(" (")[0]
    return f"{name} ({unit})" if unit else name


def _finished_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    headers = ["rank", "run", "model", "dataset", "device", "precision", "params", "epochs", "s/epoch",
               "samples/s", "peak memory (MB)", "memory", "train time (s)", f"best {_short_metric(rep.val_metric)}",
               "best epoch", "val avg (mm)", *(f"{t} avg (mm)" for t in rep.eval_tags)]
    rows = [[_fmt(r["rank"]), r["run"], r["model"], r["dataset"], r["device"], r["precision"],
             f"{r['params']:,}" if isinstance(r["params"], int) else "-", r["epochs"], _fmt(r["s_per_epoch"], 2),
             _fmt(r["samples_per_s"], 0), _fmt(r["peak_memory_mb"], 0), r["memory_kind"] or "-",
             _fmt(r["train_time_s"], 0), _fmt(r["best_val"]), _fmt(r["best_epoch"]), _fmt(r["val_avg"]),
             *(_fmt(r[f"{t}_avg"]) for t in rep.eval_tags)]
            for r in rep.table if status_kind(r["status"]) == "finished"]
    return headers, rows


def _unfinished_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    headers = ["run", "status", "why", "model", "device", "epochs", "train time (s)",
               f"best so far: {_short_metric(rep.val_metric)}", "at epoch"]
    rows = [[r["run"], r["status"], (r["status_detail"] or r["error"] or "-")[:100], r["model"], r["device"],
             f"{r['epochs'] or 0}/{r['epochs_total'] or '?'}", _fmt(r["train_time_s"], 0), _fmt(r["best_val"]),
             _fmt(r["best_epoch"])] for r in rep.table if status_kind(r["status"]) != "finished"]
    return headers, rows


def _marked(row: Mapping[str, Any]) -> str:
    """The run's label, with its status when it did not complete."""
    return row["run"] if status_kind(row["status"]) == "finished" else f"{row['run']} ({row['status']})"


def _horizon_table(rep: Report, tag: str) -> tuple[list[str], list[list[Any]]]:
    headers = ["run", *(f"{h} ms" for h in rep.horizons), "avg"]
    rows = [[_marked(r), *(_fmt(r.get(f"{tag}_{h}ms")) for h in rep.horizons), _fmt(r.get(f"{tag}_avg"))]
            for r in rep.table]
    return headers, rows


def _group_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    metrics = ["best_val", "val_avg", *(f"{t}_avg" for t in rep.eval_tags), "s_per_epoch"]
    names = {"best_val": f"best {_short_metric(rep.val_metric)}", "val_avg": "val avg (mm)", "s_per_epoch": "s/epoch"}
    headers = ["configuration", "completed runs", "unfinished (left out)",
               *(names.get(m, m.replace("_avg", " avg (mm)")) for m in metrics)]
    rows = []
    for g in rep.groups:
        cells = []
        for m in metrics:
            mean, std = g[f"{m}_mean"], g[f"{m}_std"]
            digits = 2 if m == "s_per_epoch" else 1
            cells.append("-" if mean is None else f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std else ""))
        rows.append([g["configuration"], g["runs"], g["unfinished"], *cells])
    return headers, rows


def _diff_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    headers = ["config key", *rep.labels]
    rows = [[k, *(json.dumps(v[label]) if isinstance(v[label], (list, dict)) else short_value(v[label])
                  for label in rep.labels)] for k, v in rep.diff.items()]
    return headers, rows


def _time_axis(rows: Sequence[Mapping[str, Any]]) -> tuple[float, str]:
    """``(divisor, unit)`` for wall-clock time: seconds up to 10 minutes, minutes up to 5 hours, then hours."""
    longest = max((float(r["time/wall_s"]) for r in rows if _finite(r.get("time/wall_s"))), default=0.0)
    if longest <= 600:
        return 1.0, "s"
    return (60.0, "min") if longest <= 5 * 3600 else (3600.0, "h")


def _x_column(rep: Report, x: str) -> tuple[list[dict[str, Any]], str, str]:
    """The curve rows with the horizontal column to plot, its name and its axis label."""
    if x != "time/wall_s":
        return rep.curves, x, axis_label(x)
    divisor, unit = _time_axis(rep.curves)
    rows = [{**r, "wall": float(r[x]) / divisor if _finite(r.get(x)) else None} for r in rep.curves]
    return rows, "wall", axis_label(x, unit)


def _palette(rep: Report) -> dict[str, str]:
    """One colour per configuration, the same in every figure."""
    return {c: f"C{i % 10}" for i, c in enumerate(dict.fromkeys(rep.configurations))}


def _train_figure(rep: Report, x: str) -> Figure:
    """The training loss against ``x``: one panel per unit (runs with different losses cannot share an axis)."""
    rows, column, xlabel = _x_column(rep, x)
    panels: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        panels.setdefault("mm" if r["train_axis"] in (_LOSS_MM, _TERM_MM) else r["train_axis"], []).append(r)
    if not panels:
        panels["mm"] = []
    longest = max((len(str(r["run"])) for r in rows), default=0) + 26  # + ", position term (crashed)"
    fig = new_figure(max(8.0, 5.4 + 0.075 * longest), 4.2 * len(panels))
    against = "per epoch" if x == "epoch" else "against wall-clock training time"
    for ax, (unit, panel) in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels.items()):
        kinds = {r["train_axis"] for r in panel}
        ylabel = unit
        if unit == "mm":
            ylabel = next(iter(kinds)) if len(kinds) == 1 else _MIXED_MM
            if len(kinds) > 1:  # say which runs show the position term rather than the whole loss
                panel = [{**r, "run": f"{r['run']}, position term"} if r["train_axis"] == _TERM_MM else r
                         for r in panel]
        plot_curves(panel, column, "train_plot", color="configuration", palette=_palette(rep), status="status",
                    ax=ax, xlabel=xlabel, ylabel=ylabel, logy=None, title=f"training loss (epoch mean) {against}")
    return fig


def _val_figure(rep: Report, x: str) -> Figure:
    rows, column, xlabel = _x_column(rep, x)
    name = metric_label(rep.val_metric)[0]
    against = "per epoch" if x == "epoch" else "against wall-clock training time"
    return plot_curves(rows, column, rep.val_metric, color="configuration", palette=_palette(rep), status="status",
                       xlabel=xlabel, logy=None, title=f"{name} {against}")


def _settings_figure(rep: Report) -> Figure:
    """Each run's best validation value against every differing setting (the sweep parameters)."""
    keys = list(rep.settings)[:_MAX_SETTING_PANELS]
    rows = [{**{k: row.get(f"setting:{k}") for k in keys}, "best_val": row["best_val"], "status": row["status"]}
            for row in rep.table]
    labels = {k: (f"{name} ({k})" if name != k else k) for k, name in rep.settings.items()}
    name, unit = metric_label(rep.val_metric)
    return plot_by_setting(rows, keys, "best_val", setting_labels=labels, status="status",
                           ylabel=f"best {name} [{unit}]" if unit else f"best {name}",
                           title=f"best {name.split(' (')[0]} per setting, one point per run")


def report_figures(rep: Report) -> dict[str, Figure]:
    """The report's figures by file name: the learning curves, and the best value per setting when any differs."""
    figures = {name: (_train_figure if kind == "train" else _val_figure)(rep, x)
               for name, (x, kind) in CURVE_FILES.items()}
    if rep.settings and rep.table:
        figures[SETTINGS_FILE] = _settings_figure(rep)
    return figures


_Section = tuple[str, str, tuple[list[str], list[list[Any]]]]  # heading, note, (headers, rows)


def _sections(rep: Report) -> list[_Section]:
    """The report's tables in order, each with its heading and an optional note."""
    best_note = (f"best {_short_metric(rep.val_metric)}: the lowest per-epoch {metric_label(rep.val_metric)[0]} "
                 f"(`{rep.val_metric}`).")
    sections: list[_Section] = []
    finished = _finished_table(rep)
    if finished[1]:
        sections.append(("Completed runs", "rank: 1 = lowest validation MPJPE (eval.json average, else the best "
                         "per-epoch value). Memory: peak GPU memory allocated on CUDA, peak process resident set "
                         "size on CPU. s/epoch: mean training time per epoch (without validation). " + best_note,
                         finished))
    unfinished = _unfinished_table(rep)
    if unfinished[1]:
        sections.append(("Running and unfinished runs (not ranked, not averaged)", "A run still marked running is "
                         "crashed when its recorded process is gone (same machine) or when its folder saw no write "
                         "for an hour (another machine). Their best value is the best so far.", unfinished))
    if rep.horizons:
        sections.append(("Validation MPJPE per horizon (mm, predicted joints, best checkpoint)", "",
                         _horizon_table(rep, "val")))
        for tag in rep.eval_tags:
            sections.append((f"{tag.capitalize()} MPJPE per horizon (mm, predicted joints, from eval_{tag}.json)",
                             "", _horizon_table(rep, tag)))
    if rep.groups:
        sections.append(("Per configuration (mean ± standard deviation over seeds of completed runs)", "",
                         _group_table(rep)))
    if rep.diff:
        sections.append(("Configuration differences", "", _diff_table(rep)))
    return sections


_FIGURE_NOTE = ("Colours: one per configuration; markers tell its seeds apart. Lines: solid = completed, dashed = "
                "running, dotted with a cross at the last point = ended early (crashed, failed, interrupted, pruned). "
                "Positional errors are in millimetres; a training loss logged in metres is shown times 1000.")


def _write_csvs(rep: Report, out: Path) -> None:
    cols = list(dict.fromkeys(k for row in rep.table for k in row)) if rep.table else ["run"]
    with (out / "report.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        w.writerows(rep.table)
    if rep.groups:
        with (out / "configurations.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rep.groups[0].keys()))
            w.writeheader()
            w.writerows(rep.groups)


def _write_html(out: Path, title: str, generated: str, sections: list[_Section], pngs: list[Path]) -> None:
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{generated}.</p>"]
    for heading, note, (headers, rows) in sections:
        body += [f"<h2>{html.escape(heading)}</h2>"] + ([f"<p>{html.escape(note)}</p>"] if note else [])
        body.append(tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True))
    body += ["<h2>Figures</h2>", f"<p>{html.escape(_FIGURE_NOTE)}</p>"]
    body += [f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}" width="720">'
             f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>" for p in pngs]
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:0.5em}")
    (out / "report.html").write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                                     f"<title>{html.escape(title)}</title><style>{style}</style></head>"
                                     "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, labels: Sequence[str] | None = None,
                 val_metric: str | None = None, title: str | None = None,
                 command: str | None = None) -> Path:
    """Write ``report.md``, ``report.csv``, ``report.html`` and the figures (PNG) into a new folder.

    Args:
        run_dirs: run folders to compare.
        out_dir: the report folder; must not exist yet.
        labels: one label per run (default: the config values that differ).
        val_metric: per-epoch validation metric for the curves and the "best val" column (default: the task's).
        title: report title.
        command: the command that made the report, recorded in it.

    Returns:
        The report folder.

    Raises:
        FileExistsError: ``out_dir`` exists (reports are never overwritten).
    """
    out = Path(out_dir)
    if out.exists():
        raise FileExistsError(f"{out} exists; reports are never overwritten, choose a new --out folder")
    rep = build_report(run_dirs, labels, val_metric)
    out.mkdir(parents=True)
    pngs = [save_figure(fig, out / name) for name, fig in report_figures(rep).items()]
    _write_csvs(rep, out)
    title = title or f"Comparison of {len(rep.runs)} runs"
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    sections = _sections(rep)

    md = [f"# {title}", "", f"Generated {stamp}" + (f" by `{command}`" if command else "") + ".", ""]
    for heading, note, (headers, rows) in sections:
        md += [f"## {heading}", ""] + ([note, ""] if note else []) + [tabulate(rows, headers=headers,
                                                                               tablefmt="github",
                                                                               disable_numparse=True), ""]
    md += ["## Figures", "", _FIGURE_NOTE, ""] + [f"![{p.stem}]({p.name})" for p in pngs] + [""]
    md += ["## Run folders", ""] + [f"- {label}: `{r.path}`" for label, r in zip(rep.labels, rep.runs)] + [""]
    (out / "report.md").write_text("\n".join(md))
    _write_html(out, title, f"Generated {stamp}" + (f" by <code>{html.escape(command)}</code>" if command else ""),
                sections, pngs)
    return out
