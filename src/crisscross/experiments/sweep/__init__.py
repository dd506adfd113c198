"""Hyper-parameter sweeps over dotted config keys, run as Optuna studies with one process per trial.

The package has one module per job: :mod:`.spec` (the typed sections of a sweep file) and :mod:`.load` read
and validate sweep files, :mod:`.study` is the Optuna
glue (storage, study, sampler, pruner, budget, reclaim of stale trials), :mod:`.driver` runs the worker threads
and trial processes, :mod:`.channel` is the protocol between them, :mod:`.trial` is the trial process
(``python -m crisscross.experiments.sweep.trial``) and :mod:`.summary` writes tables, CSV files and a plot.
Optuna is optional (``crisscross[sweep]``) and imported only when a function needs it.
"""

from crisscross.experiments.sweep.driver import TrialFailed, run_sweep
from crisscross.experiments.sweep.load import load_sweep, trial_config, trial_overrides
from crisscross.experiments.sweep.spec import (
    COUNTED_FAILURES,
    EPOCH_METRICS,
    Objective,
    PrunerSection,
    SamplerSection,
    SearchParam,
    SweepError,
    SweepSpec,
)
from crisscross.experiments.sweep.study import (
    budget_counts,
    default_storage_url,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    quiet_optuna,
    reclaim_trials,
    report_epoch,
    suggest_params,
)
from crisscross.experiments.sweep.summary import (
    SweepOutcome,
    configuration_rows,
    load_outcome,
    trial_rows,
    write_sweep_summary,
)

__all__ = [
    "COUNTED_FAILURES",
    "EPOCH_METRICS",
    "Objective",
    "PrunerSection",
    "SamplerSection",
    "SearchParam",
    "SweepError",
    "SweepOutcome",
    "SweepSpec",
    "TrialFailed",
    "budget_counts",
    "configuration_rows",
    "default_storage_url",
    "load_outcome",
    "load_sweep",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "quiet_optuna",
    "reclaim_trials",
    "report_epoch",
    "run_sweep",
    "suggest_params",
    "trial_config",
    "trial_overrides",
    "trial_rows",
    "write_sweep_summary",
]
