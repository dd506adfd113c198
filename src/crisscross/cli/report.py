"""``crisscross report``: compare runs in a new folder of tables (Markdown, CSV, HTML) and figures (PNG)."""

from __future__ import annotations

import argparse
import shlex
from datetime import datetime
from pathlib import Path

from crisscross.experiments.report import expand_run_paths, write_report

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("report", help="write a comparison report of runs (tables + learning curves)",
                       description="Compare run folders (or folders of runs, e.g. a sweep's runs/): parameters, time "
                       "per epoch, peak memory, best validation metrics per horizon, test metrics when an "
                       "eval_<split>.json is in the run folder, learning curves against epochs and wall-clock "
                       "time, and the best validation metric per differing setting (a sweep's parameters). "
                       "Completed runs are ranked; running and crashed runs are listed and drawn apart. Legends "
                       "name runs by the settings that differ. Writes report.md, report.csv, report.html and PNGs "
                       "into a new folder.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders or folders holding run folders")
    p.add_argument("--out", metavar="DIR", help="new report folder (default: runs/reports/<timestamp>); never "
                   "overwritten")
    p.add_argument("--labels", help="comma-separated labels, one per run (default: the config values that differ, "
                   "e.g. 'optim=adam lr=3e-4 seed=1')")
    p.add_argument("--metric", help="per-epoch validation metric for the curves and the best-val column (default: "
                   "the runs' task's, val/mpjpe22_avg_mm for forecasting, val/mpjpe_mm for lifting)")
    p.add_argument("--title", help="report title")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Write the report and print where it is."""
    try:
        import matplotlib  # noqa: F401  # lazy: optional dependency, checked only when a report is written
    except ImportError:
        raise ValueError("crisscross report needs matplotlib: pip install 'crisscross[plot]'") from None
    out = Path(args.out) if args.out else Path("runs") / "reports" / datetime.now().strftime("%Y%m%d-%H%M%S")
    if out.exists():
        raise ValueError(f"{out} exists; reports are never overwritten, choose a new --out folder")
    run_dirs = expand_run_paths(args.runs)
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    command = ["crisscross", "report", *args.runs, "--out", str(out)]
    for flag, value in (("--labels", args.labels), ("--title", args.title)):
        if value:
            command += [flag, value]
    if args.metric:
        command += ["--metric", args.metric]
    write_report(run_dirs, out, labels=labels, val_metric=args.metric, title=args.title,
                 command=" ".join(shlex.quote(c) for c in command))
    print(f"report of {len(run_dirs)} runs: {out / 'report.md'} (also report.html, report.csv, PNG figures)")
    return 0
