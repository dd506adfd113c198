"""What a sweep leaves behind: per-trial and per-configuration rows, ``summary.md``, CSV files and a bar chart.

Every file describes the study's current state and is rewritten whenever a sweep runs (or ``crisscross sweep
--summary`` asks), so several machines sharing a study each see the whole study. A configuration groups the
trials with the same parameter values; its mean and spread are taken over all seeds of its completed trials.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from crisscross.analysis.plots import metric_label, plot_bars, save_figure
from crisscross.experiments.sweep.spec import COUNTED_FAILURES, SweepError, SweepSpec
from crisscross.experiments.sweep.study import default_storage_url, import_optuna, open_storage

if TYPE_CHECKING:
    import optuna

__all__ = ["SweepOutcome", "configuration_rows", "format_params", "load_outcome", "trial_line", "trial_rows",
           "write_sweep_summary"]


@dataclass
class SweepOutcome:
    """What :func:`crisscross.experiments.sweep.run_sweep` leaves behind.

    Attributes:
        study_name: the Optuna study name.
        storage: the storage URL.
        out_dir: the sweep's output folder (run folders under ``runs/``, logs under ``logs/``, summaries).
        budget: the trial budget.
        trials: one row per trial (see :func:`trial_rows`).
        configurations: one row per distinct configuration (see :func:`configuration_rows`).
        interrupted: the sweep was stopped (Ctrl-C) before the budget was used up.
        command: the command line that ran the sweep, recorded in ``summary.md``.
    """

    study_name: str
    storage: str
    out_dir: Path
    budget: int
    trials: list[dict[str, Any]] = field(default_factory=list)
    configurations: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    command: str | None = None


def fmt(v: Any) -> str:
    """A parameter value for display (floats to four significant digits)."""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_params(params: Mapping[str, Any]) -> str:
    """``name=value, ...`` for a log line."""
    return ", ".join(f"{k}={fmt(v)}" for k, v in params.items())


def trial_line(t: optuna.trial.FrozenTrial, spec: SweepSpec) -> str:
    """One line saying how a finished trial ended."""
    attrs = t.user_attrs
    state = t.state.name
    if state == "COMPLETE":
        std = attrs.get("value_std")
        spread = f" ± {std:.3g} over {len(spec.seeds)} seeds" if std is not None and len(spec.seeds) > 1 else ""
        return f"trial {t.number} complete: {spec.metric} = {t.value:.4g}{spread}"
    if state == "PRUNED":
        return f"trial {t.number} pruned at epoch {attrs.get('pruned_at_epoch', t.last_step)}"
    return f"trial {t.number} {attrs.get('outcome', 'failed')}: {attrs.get('error', '')}".rstrip(": ")


def trial_rows(study: optuna.Study, spec: SweepSpec) -> list[dict[str, Any]]:
    """One row per trial: number, state, outcome, parameters, objective value, spread over seeds, run folder."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "outcome": a.get("outcome", "")}
        for p in spec.space:
            row[p.name] = t.params.get(p.name)
        row.update({
            "value": t.value if t.value is not None and t.state.name == "COMPLETE" else None,
            "value_std": a.get("value_std"),
            "seed_values": a.get("seed_values"),
            "epochs": a.get("epochs"),
            "pruned_at_epoch": a.get("pruned_at_epoch"),
            "duration_s": t.duration.total_seconds() if t.duration is not None else None,
            "retry_of": a.get("retry_of"),
            "run_dir": a.get("run_dir"),
            "error": a.get("error"),
        })
        rows.append(row)
    return rows


def _group_trials(rows: Sequence[Mapping[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Finished trials grouped by parameter values, with every seed's objective value of the completed ones."""
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["state"] in ("RUNNING", "WAITING") or (r["state"] == "FAIL" and r["outcome"] not in COUNTED_FAILURES):
            continue
        params = {p.name: r[p.name] for p in spec.space}
        g = groups.setdefault(json.dumps(params, sort_keys=True, default=str),
                              {**params, "values": [], "completed": 0, "pruned": 0, "failed": 0, "trials": []})
        g["trials"].append(r["trial"])
        if r["state"] == "COMPLETE":
            g["completed"] += 1
            seed_values = r.get("seed_values") or {}
            g["values"].extend(float(v) for v in seed_values.values()) if seed_values else g["values"].append(
                float(r["value"]))
        elif r["state"] == "PRUNED":
            g["pruned"] += 1
        else:
            g["failed"] += 1
    return list(groups.values())


def configuration_rows(rows: Sequence[Mapping[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Trials grouped by parameter values: mean, standard deviation, min and max of the objective over all seeds.

    Args:
        rows: :func:`trial_rows` output.
        spec: the sweep.

    Returns:
        One row per configuration, best first; configurations without a completed trial come last.
    """
    out = []
    for g in _group_trials(rows, spec):
        vals = g.pop("values")
        g.update(runs=len(vals), mean=statistics.fmean(vals) if vals else None,
                 std=statistics.stdev(vals) if len(vals) > 1 else None,
                 min=min(vals) if vals else None, max=max(vals) if vals else None)
        out.append(g)
    sign = 1 if spec.direction == "minimize" else -1
    out.sort(key=lambda g: (g["mean"] is None, sign * g["mean"] if g["mean"] is not None else 0))
    return out


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    cols = list(rows[0].keys()) if rows else ["trial"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()})
    return path


def _summary_markdown(outcome: SweepOutcome, spec: SweepSpec) -> list[str]:
    """The header and the two tables of ``summary.md``."""
    names = [p.name for p in spec.space]
    conf = [[*(c[n] for n in names), c["runs"], c["mean"], c["std"], c["min"], c["max"], c["completed"],
             c["pruned"], c["failed"]] for c in outcome.configurations]
    trials = [[r["trial"], r["state"].lower(), r["outcome"], *(r[n] for n in names), r["value"], r["value_std"],
               r["epochs"], None if r["duration_s"] is None else round(r["duration_s"], 1),
               (r["error"] or "")[:80]] for r in outcome.trials]
    return [f"# Sweep `{outcome.study_name}`", "",
            f"Sweep file `{spec.path}`, base config `{spec.base}`; objective {spec.metric} ({spec.direction}, "
            f"{spec.reduce} epoch per run), seeds {list(spec.seeds)}, sampler {spec.sampler}, pruner "
            f"{spec.pruner.type}, budget {outcome.budget} trials; storage `{outcome.storage}`."
            + (f" Last run by `{outcome.command}`." if outcome.command else ""), "",
            "## Configurations (mean and spread over seeds)", "",
            tabulate(conf, headers=[*names, "runs", "mean", "std", "min", "max", "completed", "pruned", "failed"],
                     tablefmt="github", floatfmt=["g"] * len(names) + [".2f"] * 8, missingval="-"), "",
            "## Trials", "",
            tabulate(trials, headers=["trial", "state", "outcome", *names, "value", "std", "epochs", "time (s)",
                                      "error"], tablefmt="github", missingval="-",
                     floatfmt=["g"] * (3 + len(names)) + [".2f", ".2f", "g", ".1f", "g"]), ""]


def write_sweep_summary(outcome: SweepOutcome, spec: SweepSpec) -> list[Path]:
    """Write ``summary.md``, ``trials.csv``, ``configurations.csv`` (and ``configurations.png``) into the output folder.

    These files describe the study's current state and are rewritten on every sweep run.

    Returns:
        The written paths.
    """
    out = outcome.out_dir
    out.mkdir(parents=True, exist_ok=True)
    paths = [_write_csv(out / "trials.csv", outcome.trials),
             _write_csv(out / "configurations.csv", outcome.configurations)]
    md = _summary_markdown(outcome, spec)
    png = _configurations_png(outcome, spec)
    if png is not None:
        md += ["## Objective per configuration", "", f"![{spec.metric}]({png.name})", ""]
        paths.append(png)
    path = out / "summary.md"
    path.write_text("\n".join(md))
    paths.append(path)
    return paths


def _configurations_png(outcome: SweepOutcome, spec: SweepSpec) -> Path | None:
    """Bar chart of the objective per configuration (mean and standard deviation over seeds), if matplotlib is there."""
    if not outcome.configurations or importlib.util.find_spec("matplotlib") is None:
        return None  # plotting is optional (pip install 'crisscross[plot]')
    rows = [{"configuration": ", ".join(fmt(c[p.name]) for p in spec.space), "mean": c["mean"], "std": c["std"]}
            for c in outcome.configurations]
    fig = plot_bars(rows, "configuration", "mean", yerr="std", ylabel=spec.metric,
                    xlabel=", ".join(p.name for p in spec.space),
                    title=f"{outcome.study_name}: {spec.reduce} {metric_label(spec.metric)[0]} per configuration"
                    + (f" (mean ± std over {len(spec.seeds)} seeds)" if len(spec.seeds) > 1 else ""))
    return save_figure(fig, outcome.out_dir / "configurations.png")


def load_outcome(spec: SweepSpec, *, out_dir: str | Path | None = None, storage: str | None = None,
                 name: str | None = None, trials: int | None = None) -> SweepOutcome:
    """The current state of an existing study, without running anything (``crisscross sweep --summary``).

    Raises:
        SweepError: the study does not exist.
    """
    optuna = import_optuna()
    study_name = name or spec.name
    out = Path(out_dir) if out_dir is not None else Path("runs") / "sweeps" / study_name
    url = storage or default_storage_url(out)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise SweepError(f"no study database at {url[len('sqlite:///'):]}; run the sweep first")
    try:
        study = optuna.load_study(study_name=study_name, storage=open_storage(url))
    except KeyError:
        raise SweepError(f"study {study_name!r} does not exist in {url}") from None
    outcome = SweepOutcome(study_name=study_name, storage=url, out_dir=out, budget=spec.budget(trials))
    outcome.trials = trial_rows(study, spec)
    outcome.configurations = configuration_rows(outcome.trials, spec)
    return outcome
