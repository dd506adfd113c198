"""Comparison reports of run folders: tables (Markdown, CSV, HTML) and learning curves (PNG), side by side.

For every run the report gives its parameters, mean training time per epoch and throughput, peak memory (GPU
allocated memory when the run used CUDA, the process's peak resident set size on CPU; ``env.json`` says which),
the best validation metric over epochs, the final validation MPJPE per horizon (``eval.json``, best checkpoint),
and the test metrics when the folder holds a further evaluation file (``eval_<split>.json``, e.g. from
``crisscross eval RUN --split test --output RUN/eval_test.json``). Runs whose configurations differ only in
the seed are also summarised as mean and standard deviation per configuration. Learning curves (train loss
and validation metric, against epochs and against wall-clock training time) overlay all runs.

Everything is written into a new folder; an existing folder is never written into.
"""

from __future__ import annotations

import csv
import html
import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tabulate import tabulate

from crisscross.analysis.plots import plot_curves, save_figure
from crisscross.evaluation.forecasting import FULL_JOINTS_KEY, PREDICTED_JOINTS_KEY
from crisscross.experiments.summaries import RunSummary, best_value, config_diff, flatten_config, load_run_summary
from crisscross.runs.folders import find_runs, read_epoch_rows
from crisscross.tasks.forecasting import VALIDATION_METRIC

__all__ = [
    "CURVE_FILES",
    "PREDICTED_KEY",
    "Report",
    "build_report",
    "default_labels",
    "expand_run_paths",
    "write_report",
]

PREDICTED_KEY = PREDICTED_JOINTS_KEY  # eval.json key of the predicted-joint averaging
FULL_KEY = FULL_JOINTS_KEY
_SEED_SUFFIX = re.compile(r"[\s,;_-]*\b(s|seed)[ =]?\d+$")
# Config keys that never make two runs different experiments.
_INCIDENTAL = ("track.*", "train.progress", "train.device", "train.num_threads", "data.data_dir", "data.cache_dir")
# file name -> (x column, y column key in the curve rows, x label, title)
CURVE_FILES = {
    "train_loss_vs_epoch.png": ("epoch", "train/epoch_loss", "epoch", "training loss (epoch mean) per epoch"),
    "train_loss_vs_time.png": ("time/wall_s", "train/epoch_loss", "wall-clock training time (s)",
                               "training loss (epoch mean) against wall-clock time"),
    "val_vs_epoch.png": ("epoch", "@val", "epoch", "validation metric per epoch"),
    "val_vs_time.png": ("time/wall_s", "@val", "wall-clock training time (s)",
                        "validation metric against wall-clock time"),
}


@dataclass
class Report:
    """A report's data before it is written.

    Attributes:
        runs: run summaries in report order.
        labels: one label per run.
        table: wide rows, one per run (the CSV).
        groups: per-configuration rows (mean and standard deviation over seeds), when some configuration has
            more than one run.
        diff: config keys that differ between runs -> label -> value.
        curves: tidy per-epoch rows for the learning curves (``run``, ``epoch``, ``time/wall_s``, metrics).
        val_metric: the validation metric the curves and "best val" column use.
        eval_tags: the extra evaluation files found, e.g. ``["test"]``.
        horizons: horizon labels (ms) of the per-horizon columns.
    """

    runs: list[RunSummary]
    labels: list[str]
    table: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: list[dict[str, Any]] = field(default_factory=list)
    val_metric: str = VALIDATION_METRIC
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


def _strip(key: str) -> str:
    return key[len("model.args."):] if key.startswith("model.args.") else key


def default_labels(runs: Sequence[RunSummary]) -> list[str]:
    """Short unique labels: the config values that differ between runs (up to four keys), else folder names."""
    diff = config_diff({str(i): r.config for i, r in enumerate(runs)}, ignore=_INCIDENTAL + ("seed",))
    labels = []
    for i, r in enumerate(runs):
        if 0 < len(diff) <= 4:
            label = ", ".join(f"{_strip(k)}={_short(v[str(i)])}" for k, v in diff.items())
        else:
            label = r.name
        if len({x.config.get("seed") for x in runs}) > 1:
            label += f" s{r.config.get('seed')}"
        labels.append(label)
    if len(set(labels)) < len(labels):
        labels = [f"{lab} ({r.path.name})" for lab, r in zip(labels, runs)]
    return labels


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


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


def build_report(run_dirs: Sequence[str | Path], labels: Sequence[str] | None = None,
                 val_metric: str = VALIDATION_METRIC) -> Report:
    """Collect the tables and curve data of a report.

    Args:
        run_dirs: run folders.
        labels: one label per run (default: :func:`default_labels`).
        val_metric: the per-epoch validation metric for the curves and the "best val" column.

    Returns:
        The report data.

    Raises:
        ValueError: ``labels`` does not match ``run_dirs`` or repeats a label.
    """
    runs = [load_run_summary(d) for d in run_dirs]
    labels = list(labels) if labels is not None else default_labels(runs)
    if len(labels) != len(runs) or len(set(labels)) != len(labels):
        raise ValueError(f"need {len(runs)} distinct labels, got {labels}")
    rep = Report(runs=runs, labels=labels, val_metric=val_metric)
    extra = {label: _eval_files(r.path) for label, r in zip(labels, runs)}
    rep.eval_tags = sorted({tag for e in extra.values() for tag in e})
    horizons: list[str] = []
    for r in runs:
        for h in (r.eval or {}).get("horizons_ms", []):
            if str(h) not in horizons:
                horizons.append(str(h))
    rep.horizons = horizons
    for label, r in zip(labels, runs):
        rows = read_epoch_rows(r.path)
        best, best_epoch = best_value(rows, val_metric)
        row: dict[str, Any] = {
            "run": label, "path": str(r.path), "status": r.status, "model": r.model, "dataset": r.dataset,
            "device": r.device, "precision": (r.config.get("train") or {}).get("precision"),
            "params": r.parameters, "epochs": r.epochs, "s_per_epoch": r.epoch_time_s,
            "samples_per_s": _mean_of(rows, "time/samples_per_s"), "peak_memory_mb": r.peak_memory_mb,
            "memory_kind": _memory_kind(r.device), "train_time_s": r.train_time_s,
            "best_val": best, "best_epoch": best_epoch,
        }
        val = _mean_table(r.eval, PREDICTED_KEY)
        row["val_avg"] = val.get("avg")
        row["val32_avg"] = _mean_table(r.eval, FULL_KEY).get("avg")
        for h in horizons:
            row[f"val_{h}ms"] = val.get(h)
        for tag in rep.eval_tags:
            res = extra[label].get(tag)
            t = _mean_table(res, PREDICTED_KEY)
            row[f"{tag}_avg"] = t.get("avg")
            row[f"{tag}32_avg"] = _mean_table(res, FULL_KEY).get("avg")
            for h in horizons:
                row[f"{tag}_{h}ms"] = t.get(h)
        row["error"] = r.error
        rep.table.append(row)
        for x in rows:
            rep.curves.append({"run": label, "configuration": _SEED_SUFFIX.sub("", label) or label,
                               **{k: v for k, v in x.items() if k.startswith("train/epoch_")},  # task's terms
                               **{k: x.get(k) for k in ("epoch", "time/wall_s", "train/epoch_loss", val_metric)}})
    rep.diff = config_diff({label: r.config for label, r in zip(labels, runs)}, ignore=_INCIDENTAL)
    rep.groups = _seed_groups(rep)
    return rep


def _seed_groups(rep: Report) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    diff_keys = [k for k in config_diff({lab: r.config for lab, r in zip(rep.labels, rep.runs)},
                                        ignore=_INCIDENTAL + ("seed",))]
    for r, row in zip(rep.runs, rep.table):
        flat = {k: v for k, v in flatten_config(r.config).items()
                if k != "seed" and not any(k.startswith(p.rstrip("*")) if p.endswith("*") else k == p
                                           for p in _INCIDENTAL)}
        key = json.dumps(flat, sort_keys=True, default=str)
        label = ", ".join(f"{_strip(k)}={_short(flat.get(k))}" for k in diff_keys) or (r.model or "runs")
        g = groups.setdefault(key, {"configuration": label, "rows": []})
        g["rows"].append(row)
    if all(len(g["rows"]) < 2 for g in groups.values()):
        return []
    for g in groups.values():  # user labels like "adam s0", "adam s1" name their configuration "adam"
        stripped = {_SEED_SUFFIX.sub("", r["run"]) for r in g["rows"]}
        if len(stripped) == 1 and next(iter(stripped)):
            g["configuration"] = next(iter(stripped))
    out = []
    metrics = ["best_val", "val_avg", *(f"{t}_avg" for t in rep.eval_tags), "s_per_epoch"]
    for g in groups.values():
        entry: dict[str, Any] = {"configuration": g["configuration"], "runs": len(g["rows"])}
        for m in metrics:
            vals = [float(x[m]) for x in g["rows"] if isinstance(x.get(m), (int, float))]
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


def _summary_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    headers = ["run", "status", "model", "dataset", "device", "precision", "params", "epochs", "s/epoch",
               "samples/s", "peak memory (MB)", "memory", "train time (s)", f"best {rep.val_metric}", "best epoch",
               "val avg (mm)", *(f"{t} avg (mm)" for t in rep.eval_tags)]
    rows = [[r["run"], r["status"], r["model"], r["dataset"], r["device"], r["precision"],
             f"{r['params']:,}" if isinstance(r["params"], int) else "-", r["epochs"], _fmt(r["s_per_epoch"], 2),
             _fmt(r["samples_per_s"], 0), _fmt(r["peak_memory_mb"], 0), r["memory_kind"] or "-",
             _fmt(r["train_time_s"], 0), _fmt(r["best_val"]), _fmt(r["best_epoch"]), _fmt(r["val_avg"]),
             *(_fmt(r[f"{t}_avg"]) for t in rep.eval_tags)] for r in rep.table]
    return headers, rows


def _horizon_table(rep: Report, tag: str) -> tuple[list[str], list[list[Any]]]:
    headers = ["run", *(f"{h} ms" for h in rep.horizons), "avg"]
    rows = [[r["run"], *(_fmt(r.get(f"{tag}_{h}ms")) for h in rep.horizons), _fmt(r.get(f"{tag}_avg"))]
            for r in rep.table]
    return headers, rows


def _group_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    metrics = ["best_val", "val_avg", *(f"{t}_avg" for t in rep.eval_tags), "s_per_epoch"]
    names = {"best_val": f"best {rep.val_metric}", "val_avg": "val avg (mm)", "s_per_epoch": "s/epoch"}
    headers = ["configuration", "runs", *(names.get(m, m.replace("_avg", " avg (mm)")) for m in metrics)]
    rows = []
    for g in rep.groups:
        cells = []
        for m in metrics:
            mean, std = g[f"{m}_mean"], g[f"{m}_std"]
            digits = 2 if m == "s_per_epoch" else 1
            cells.append("-" if mean is None else f"{mean:.{digits}f}" + (f" ± {std:.{digits}f}" if std else ""))
        rows.append([g["configuration"], g["runs"], *cells])
    return headers, rows


def _diff_table(rep: Report) -> tuple[list[str], list[list[Any]]]:
    headers = ["config key", *rep.labels]
    rows = [[k, *(json.dumps(v[label]) if isinstance(v[label], (list, dict)) else _short(v[label])
                  for label in rep.labels)] for k, v in rep.diff.items()]
    return headers, rows


def _write_curves(rep: Report, out: Path) -> list[Path]:
    paths = []
    for name, (x, y, xlabel, title) in CURVE_FILES.items():
        col = rep.val_metric if y == "@val" else y
        fig = plot_curves(rep.curves, x, col, color="configuration", xlabel=xlabel, ylabel=col, title=title,
                          logy=None)
        paths.append(save_figure(fig, out / name))
    return paths


_Section = tuple[str, str, tuple[list[str], list[list[Any]]]]  # heading, note, (headers, rows)


def _sections(rep: Report) -> list[_Section]:
    """The report's tables in order, each with its heading and an optional note."""
    sections: list[_Section] = [
        ("Runs", "Memory: peak GPU memory allocated on CUDA, peak process resident set size on CPU. s/epoch: mean "
         "training time per epoch (without validation).", _summary_table(rep)),
        ("Validation MPJPE per horizon (mm, predicted joints, best checkpoint)", "", _horizon_table(rep, "val")),
    ]
    for tag in rep.eval_tags:
        sections.append((f"{tag.capitalize()} MPJPE per horizon (mm, predicted joints, from eval_{tag}.json)", "",
                         _horizon_table(rep, tag)))
    if rep.groups:
        sections.append(("Per configuration (mean ± standard deviation over seeds)", "", _group_table(rep)))
    if rep.diff:
        sections.append(("Configuration differences", "", _diff_table(rep)))
    return sections


def _write_csvs(rep: Report, out: Path) -> None:
    cols = list(rep.table[0].keys()) if rep.table else ["run"]
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
    body.append("<h2>Learning curves</h2>")
    body += [f'<figure><img src="{html.escape(p.name)}" alt="{html.escape(p.stem)}" width="640">'
             f"<figcaption>{html.escape(p.stem.replace('_', ' '))}</figcaption></figure>" for p in pngs]
    style = ("body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:0.5em}")
    (out / "report.html").write_text("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                                     f"<title>{html.escape(title)}</title><style>{style}</style></head>"
                                     "<body>\n" + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dirs: Sequence[str | Path], out_dir: str | Path, *, labels: Sequence[str] | None = None,
                 val_metric: str = VALIDATION_METRIC, title: str | None = None,
                 command: str | None = None) -> Path:
    """Write ``report.md``, ``report.csv``, ``report.html`` and the learning-curve PNGs into a new folder.

    Args:
        run_dirs: run folders to compare.
        out_dir: the report folder; must not exist yet.
        labels: one label per run (default: the config values that differ).
        val_metric: per-epoch validation metric for the curves and the "best val" column.
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
    pngs = _write_curves(rep, out)
    _write_csvs(rep, out)
    title = title or f"Comparison of {len(rep.runs)} runs"
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M")
    sections = _sections(rep)

    md = [f"# {title}", "", f"Generated {stamp}" + (f" by `{command}`" if command else "") + ".", ""]
    for heading, note, (headers, rows) in sections:
        md += [f"## {heading}", ""] + ([note, ""] if note else []) + [tabulate(rows, headers=headers,
                                                                               tablefmt="github",
                                                                               disable_numparse=True), ""]
    md += ["## Learning curves", ""] + [f"![{p.stem}]({p.name})" for p in pngs] + [""]
    md += ["## Run folders", ""] + [f"- {label}: `{r.path}`" for label, r in zip(rep.labels, rep.runs)] + [""]
    (out / "report.md").write_text("\n".join(md))
    _write_html(out, title, f"Generated {stamp}" + (f" by <code>{html.escape(command)}</code>" if command else ""),
                sections, pngs)
    return out
