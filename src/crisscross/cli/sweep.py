"""``crisscross sweep``: run, resume or join a hyper-parameter sweep (an Optuna study, one process per trial)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex

from tabulate import tabulate

from crisscross.experiments.sweep import (
    COUNTED_FAILURES,
    SweepOutcome,
    SweepSpec,
    load_outcome,
    load_sweep,
    quiet_optuna,
    run_sweep,
    write_sweep_summary,
)

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser("sweep", help="run a hyper-parameter sweep from a sweep file",
                       description="Run the trials of SWEEP.yaml as separate processes, --workers at a time, in an "
                       "Optuna study stored in a database (default: SQLite in the output folder). A killed sweep "
                       "resumes with --resume; sweeps on other machines join the same study with --storage URL "
                       "--resume. KEY=VALUE overrides after SWEEP.yaml apply to every trial, e.g. "
                       "crisscross sweep SWEEP.yaml data.dataset=h36m data.data_dir=DIR --workers 2.")
    p.add_argument("sweep", metavar="SWEEP.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides for every trial, written "
                   "right after SWEEP.yaml (before the options)")
    p.add_argument("--workers", type=int, default=1, help="trial processes at a time on this machine (default 1)")
    p.add_argument("--trials", type=int, help="trial budget of the study (default: the sweep file's)")
    p.add_argument("--storage", metavar="URL", help="study database, e.g. postgresql://user:pw@host/db "
                   "(default: sqlite:///OUT/study.db)")
    p.add_argument("--resume", action="store_true", help="continue an existing study (or join it from another "
                   "machine): finished trials are kept, stale ones are retried")
    p.add_argument("--out", metavar="DIR", help="output folder (default: runs/sweeps/<name>)")
    p.add_argument("--name", help="study name (default: the sweep file's name)")
    p.add_argument("--seeds", metavar="S,S", help="seeds every trial trains with, replacing the sweep file's seeds")
    p.add_argument("--devices", metavar="DEV,DEV", help="devices handed round-robin to workers, e.g. cuda:0,cuda:1")
    p.add_argument("--summary", action="store_true", help="print the study's current results, refresh summary.md "
                   "and the CSV files, and exit")
    p.set_defaults(run=run)


def _print_outcome(outcome: SweepOutcome, spec: SweepSpec) -> None:
    names = [p.name for p in spec.space]
    done = sum(1 for r in outcome.trials if r["state"] in ("COMPLETE", "PRUNED")
               or (r["state"] == "FAIL" and r["outcome"] in COUNTED_FAILURES))
    print(f"\nstudy {outcome.study_name}: {done}/{outcome.budget} trials finished "
          f"({sum(r['state'] == 'COMPLETE' for r in outcome.trials)} complete, "
          f"{sum(r['state'] == 'PRUNED' for r in outcome.trials)} pruned, "
          f"{sum(r['state'] == 'FAIL' for r in outcome.trials)} failed incl. retried); storage {outcome.storage}")
    rows = [[*(c[n] for n in names), c["runs"], c["mean"], c["std"], c["min"], c["max"], c["pruned"], c["failed"]]
            for c in outcome.configurations]
    if rows:
        print(f"\n{spec.metric} ({spec.direction}), per configuration over seeds {list(spec.seeds)}:")
        print(tabulate(rows, headers=[*names, "runs", "mean", "std", "min", "max", "pruned", "failed"],
                       tablefmt="github", floatfmt=["g"] * len(names) + [".2f"] * 7, missingval="-"))
    print(f"\nsummary: {outcome.out_dir / 'summary.md'}; run folders: {outcome.out_dir / 'runs'}")


def run(args: argparse.Namespace) -> int:
    """Run the sweep (or print its summary); exit code 130 when interrupted."""
    try:
        import optuna  # noqa: F401  # lazy: optional dependency, checked only when a sweep runs
    except ImportError:
        raise ValueError("crisscross sweep needs optuna: pip install 'crisscross[sweep]'") from None
    quiet_optuna()
    spec = load_sweep(args.sweep, args.overrides)
    if args.seeds:
        try:
            seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        except ValueError:
            raise ValueError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"--seeds {args.seeds!r}: expected distinct integers")
        spec = dataclasses.replace(spec, seeds=seeds)
    if args.summary:
        outcome = load_outcome(spec, out_dir=args.out, storage=args.storage, name=args.name, trials=args.trials)
        write_sweep_summary(outcome, spec)
        _print_outcome(outcome, spec)
        return 0
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else []
    command = ["crisscross", "sweep", args.sweep, *args.overrides]
    for flag in ("workers", "trials", "seeds", "storage", "out", "name", "devices"):
        value = getattr(args, flag)
        if value is not None and not (flag == "workers" and value == 1):
            command += [f"--{flag}", str(value)]
    if args.resume:
        command.append("--resume")
    outcome = run_sweep(spec, out_dir=args.out, storage=args.storage, workers=args.workers, trials=args.trials,
                        resume=args.resume, name=args.name, devices=devices, cli_overrides=args.overrides,
                        log=lambda line: print(line, flush=True),
                        command=" ".join(shlex.quote(c) for c in command))
    _print_outcome(outcome, spec)
    if outcome.interrupted:
        print(f"interrupted; continue with: crisscross sweep {args.sweep} --resume"
              + (f" --out {args.out}" if args.out else "") + (f" --storage {args.storage}" if args.storage else ""))
        return 130
    return 0
