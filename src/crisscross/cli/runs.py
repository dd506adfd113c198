"""``crisscross runs``: list run folders (finished, failed, interrupted or crashed) and compare runs side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from crisscross.evaluation.forecasting import PREDICTED_JOINTS_KEY
from crisscross.experiments.summaries import (
    config_diff,
    filter_runs,
    load_run_summaries,
    load_run_summary,
    sort_runs,
)
from crisscross.runs.folders import find_runs
from crisscross.tasks.forecasting import VALIDATION_METRIC

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("runs", help="list and compare run folders",
                       description="List the run folders under ROOT (default runs/) with model, dataset, parameters, "
                       "epochs, best validation metric and training time; runs marked running whose process is gone "
                       "show as crashed. --compare shows the config keys that differ and the metrics side by side.")
    p.add_argument("root", nargs="?", default="runs", metavar="ROOT", help="folder of run folders (default: runs)")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="keep runs whose field or dotted config key matches, e.g. optim.name=adam, model=stc* "
                   "(repeatable)")
    p.add_argument("--status", help="keep runs with this status: completed, running, failed, interrupted, pruned, "
                   "crashed, unknown")
    p.add_argument("--sort", metavar="KEY", help="sort by a field (best, train_time_s, params...), a logged metric "
                   f"({VALIDATION_METRIC}: best value), an eval.json path or a config key; prefix - for descending")
    p.add_argument("--compare", nargs="+", metavar="RUN", help="compare these run folders (paths, or relative to ROOT)")
    p.set_defaults(run=run)


def _fmt(v: object, digits: int = 1) -> object:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return v


def _resolve(root: Path, text: str) -> Path:
    path = Path(text)
    if path.is_dir():
        return path
    if (root / text).is_dir():
        return root / text
    raise FileNotFoundError(f"run folder {text} not found (also looked in {root})")


def run(args: argparse.Namespace) -> int:
    """Print the run table, or the comparison of ``--compare`` runs."""
    root = Path(args.root)
    if args.compare:
        runs = [load_run_summary(_resolve(root, r)) for r in args.compare]
        labels = [r.name for r in runs]
        if len(set(labels)) < len(labels):
            labels = [str(r.path) for r in runs]
        diff = config_diff({lab: r.config for lab, r in zip(labels, runs)})
        print("Configuration differences:" if diff else "The configurations are identical.")
        if diff:
            print(tabulate([[k, *(_fmt(v[lab], 4) for lab in labels)] for k, v in diff.items()],
                           headers=["key", *labels], tablefmt="github"))
        horizons = [str(h) for h in next((r.eval.get("horizons_ms", []) for r in runs if r.eval), [])]
        rows = [["status", *(r.status for r in runs)], ["parameters", *(_fmt(r.parameters) for r in runs)],
                ["epochs", *(_fmt(r.epochs) for r in runs)], ["steps", *(_fmt(r.steps) for r in runs)],
                ["best val (metric)", *(f"{_fmt(r.best)} ({r.metric})" for r in runs)],
                ["best epoch", *(_fmt(r.best_epoch) for r in runs)],
                ["train time (s)", *(_fmt(r.train_time_s, 0) for r in runs)],
                ["s/epoch", *(_fmt(r.epoch_time_s, 2) for r in runs)],
                ["peak memory (MB)", *(_fmt(r.peak_memory_mb, 0) for r in runs)]]
        for h in [*horizons, "avg"]:
            means = [((r.eval or {}).get(PREDICTED_JOINTS_KEY) or {}).get("mean", {}) for r in runs]
            rows.append([f"val MPJPE {h}{' ms' if h != 'avg' else ''}", *(_fmt(m.get(h)) for m in means)])
        print("\nMetrics:")
        print(tabulate(rows, headers=["", *labels], tablefmt="github"))
        return 0
    runs = load_run_summaries(find_runs(root))  # a folder deleted meanwhile is left out
    runs = filter_runs(runs, args.filter, args.status)
    runs = sort_runs(runs, args.sort) if args.sort else sorted(runs, key=lambda r: r.started_at or "")
    if not runs:
        print(f"no runs under {root}" + (" match" if args.filter or args.status else ""))
        return 0
    table = []
    for r in runs:
        rel = r.path.relative_to(root) if r.path.is_relative_to(root) else r.path
        table.append([str(rel), r.status, r.model, r.dataset, _fmt(r.parameters),
                      f"{_fmt(r.epochs)}/{_fmt(r.epochs_total)}", _fmt(r.best), r.metric or "-",
                      _fmt(r.train_time_s, 0), (r.started_at or "-")[:19].replace("T", " ")])
    print(tabulate(table, headers=["run", "status", "model", "dataset", "params", "epochs", "best val", "metric",
                                   "train time (s)", "started (UTC)"], tablefmt="github"))
    return 0
