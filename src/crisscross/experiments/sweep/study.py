"""Optuna glue: the storage, the study, its sampler and pruner, the trial budget and the reclaim of stale trials.

Only Optuna's public API is used. Recording why a dead sweep's trial failed (:func:`reclaim_trials`) writes user
attributes of a trial this process never asked (a :class:`optuna.trial.Trial`, the object with ``set_user_attr``,
comes only from ``Study.ask``), so it goes through the public methods of the storage the sweep opened itself
(:class:`optuna.storages.BaseStorage`).

Heartbeats come from Optuna itself: the storage is an ``RDBStorage`` with ``heartbeat_interval`` and
``grace_period``, and the sweep driver runs every trial through ``Study.optimize``, which records the trial's
heartbeat while it runs and fails other workers' trials whose heartbeat stopped (``fail_stale_trials``).

Optuna is an optional dependency (``crisscross[sweep]``): it is imported inside the functions that need it, so
importing this module stays cheap and works without it.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crisscross.experiments.sweep.spec import COUNTED_FAILURES, SweepError, SweepSpec
from crisscross.runs.folders import process_alive

if TYPE_CHECKING:
    import optuna

__all__ = [
    "GRACE_PERIOD_S",
    "HEARTBEAT_INTERVAL_S",
    "budget_counts",
    "default_storage_url",
    "get_trial",
    "import_optuna",
    "make_pruner",
    "make_sampler",
    "open_storage",
    "open_study",
    "quiet_optuna",
    "reclaim_trials",
    "report_epoch",
    "suggest_params",
]

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60


def import_optuna() -> Any:
    """The ``optuna`` module, imported on first use."""
    import optuna  # lazy: optional dependency (crisscross[sweep]), heavy to import

    return optuna


def quiet_optuna() -> None:
    """Silence Optuna's logs below errors and its experimental-feature and heartbeat warnings.

    The sweep prints one line per trial event itself. Optuna would repeat each of them, and for every FAILED
    trial (a deliberate outcome such as ``diverged``) it logs a warning with the driver's traceback.
    """
    optuna = import_optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Study.ask outside Study.optimize (tests, tools) warns when the storage records heartbeats.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def suggest_params(trial: optuna.trial.Trial, spec: SweepSpec) -> dict[str, Any]:
    """Ask the trial for a value of every search dimension (enqueued/grid trials get their fixed values)."""
    params = {}
    for p in spec.space:
        if p.type == "choice":
            params[p.name] = trial.suggest_categorical(p.name, p.choices())
        elif p.type == "int":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step, log=p.log)
        else:
            params[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high), log=p.log)
    return params


def report_epoch(trial: optuna.trial.Trial, epoch: int, value: float, prune: bool) -> bool:
    """Report one epoch's objective value to the trial; True when pruning is on and the pruner says stop."""
    trial.report(value, epoch)
    return prune and trial.should_prune()


def make_sampler(spec: SweepSpec) -> optuna.samplers.BaseSampler:
    """Optuna's GridSampler, RandomSampler or TPESampler for the spec."""
    optuna = import_optuna()
    if spec.sampler == "grid":

        class _BudgetedGridSampler(optuna.samplers.GridSampler):
            # GridSampler.after_trial calls Study.stop() once every grid point was asked: with ask/tell that
            # raises, and inside Study.optimize it makes a concurrent worker's call skip its trial. The sweep
            # driver enforces the budget itself.
            def after_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial,
                            state: optuna.trial.TrialState, values: Sequence[float] | None) -> None:
                return None

        return _BudgetedGridSampler({p.name: p.grid_values() for p in spec.space}, seed=spec.sampler_seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.sampler_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # constant_liar: parallel workers see running trials as bad results and spread out.
        return optuna.samplers.TPESampler(seed=spec.sampler_seed, constant_liar=True)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """MedianPruner over per-epoch objective values, or NopPruner."""
    optuna = import_optuna()
    if spec.pruner.type == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner.startup_trials,
                                           n_warmup_steps=spec.pruner.warmup_epochs)
    return optuna.pruners.NopPruner()


def default_storage_url(out_dir: str | Path) -> str:
    """``sqlite:///<out_dir>/study.db`` (absolute path)."""
    return f"sqlite:///{(Path(out_dir) / 'study.db').resolve()}"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, so trials of dead workers on any machine can be detected as stale.

    Args:
        url: SQLAlchemy database URL: ``sqlite:///path/study.db``, ``postgresql://user:pw@host/db``,
            ``mysql+pymysql://...`` (the driver package must be installed).

    Returns:
        The storage.

    Raises:
        SweepError: the database driver is missing or the database cannot be opened.
    """
    optuna = import_optuna()
    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S)
        except (ImportError, ModuleNotFoundError) as err:
            hint = " (the PostgreSQL driver: pip install 'crisscross[postgres]')" if url.startswith("postgres") else ""
            raise SweepError(f"storage {_redacted(url)}: missing database driver{hint}: {err}") from None
        except Exception as err:  # SQLAlchemy raises many types for a bad URL or unreachable server
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise SweepError(f"storage {_redacted(url)}: cannot open ({type(err).__name__}: {first})") from None


def _redacted(url: str) -> str:
    """``url`` without its password (error lines end up in logs)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _jsonable_fingerprint(spec: SweepSpec) -> dict[str, Any]:
    return json.loads(json.dumps(spec.fingerprint(), default=str))


def open_study(spec: SweepSpec, storage: optuna.storages.BaseStorage | str, *, resume: bool,
               name: str | None = None) -> optuna.Study:
    """Create the study, or load it when ``resume`` (checking the space and objective did not change).

    Raises:
        SweepError: the study exists and ``resume`` is False, or it was created from a different sweep.
    """
    optuna = import_optuna()
    storage = open_storage(storage) if isinstance(storage, str) else storage
    study_name = name or spec.name
    url = getattr(storage, "url", str(storage))
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=make_sampler(spec),
                                    pruner=make_pruner(spec), direction=spec.direction, load_if_exists=resume)
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(f"study {study_name!r} already exists in {url}; add --resume to continue it (or to "
                         "join it from another machine), or give a new --name") from None
    stored, current = study.user_attrs.get("sweep"), _jsonable_fingerprint(spec)
    if stored is None:
        study.set_user_attr("sweep", spec.fingerprint())
        study.set_user_attr("sweep_file", str(spec.path))
    elif stored != current:
        changed = [k for k in stored if stored.get(k) != current.get(k)]
        raise SweepError(f"{spec.path}: study {study_name!r} in {url} was created with a different "
                         f"{', '.join(changed)}; resume it with the original sweep file or give a new --name")
    return study


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    """The trial called ``number`` (trial numbers count from 0 within a study)."""
    trials = study.get_trials(deepcopy=False)
    if 0 <= number < len(trials) and trials[number].number == number:
        return trials[number]
    return next(t for t in trials if t.number == number)


def budget_counts(study: optuna.Study) -> tuple[int, int, int]:
    """``(done, running, waiting)``: trials that use up the budget, running trials, enqueued trials."""
    state = import_optuna().trial.TrialState
    done = running = waiting = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (state.COMPLETE, state.PRUNED) or (
                t.state == state.FAIL and t.user_attrs.get("outcome") in COUNTED_FAILURES):
            done += 1
        elif t.state == state.RUNNING:
            running += 1
        elif t.state == state.WAITING:
            waiting += 1
    return done, running, waiting


def _pid_alive(pid: Any) -> bool:
    return isinstance(pid, int) and process_alive(pid)


def _annotate_trial(storage: optuna.storages.BaseStorage, study: optuna.Study, number: int,
                    attrs: dict[str, Any]) -> None:
    """Set user attributes of a running trial that another (dead) process asked, through ``storage``.

    ``Trial.set_user_attr`` needs the ``Trial`` object that ``Study.ask`` returned to the asking process; the
    storage's own methods reach any trial by study name and number.
    """
    trial_id = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name),
                                                               number)
    for key, value in attrs.items():
        storage.set_trial_user_attr(trial_id, key, value)


def _fail_dead_sweeps_trials(study: optuna.Study, storage: optuna.storages.BaseStorage, driver_id: str,
                             wait_s: float) -> None:
    """Fail (outcome ``stale``) the running trials of this machine whose sweep process is gone."""
    optuna = import_optuna()
    running = optuna.trial.TrialState.RUNNING
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(running,)):
        attrs = t.user_attrs
        if attrs.get("host") != host or attrs.get("driver_id") == driver_id:
            continue
        driver_pid = attrs.get("driver_pid")
        if driver_pid != os.getpid() and _pid_alive(driver_pid):
            continue  # another live sweep on this machine runs it
        deadline = time.monotonic() + wait_s
        while _pid_alive(attrs.get("pid")) and time.monotonic() < deadline:
            time.sleep(0.2)
        if get_trial(study, t.number).state != running:
            continue  # its trial process or another sweep finished it meanwhile
        try:
            _annotate_trial(storage, study, t.number,
                            {"outcome": "stale", "error": "its sweep process died (killed sweep)"})
            study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass


def reclaim_trials(study: optuna.Study, storage: optuna.storages.BaseStorage, budget: int, driver_id: str = "",
                   wait_s: float = 60.0) -> list[int]:
    """Fail trials left running by dead sweeps and enqueue retries of stale or interrupted trials.

    A RUNNING trial is stale when its sweep process on this machine is gone (its trial process is given
    ``wait_s`` to stop first), or when its heartbeat is older than the grace period (any machine; failed by
    ``optuna.storages.fail_stale_trials``). Each FAILED trial whose outcome is not a counted failure (diverged,
    error) gets one retry with the same parameters (``Study.enqueue_trial``), as long as the budget is not used
    up; the retry resumes its run folders.

    Args:
        study: the study.
        storage: the storage the study was opened on (:func:`open_storage`).
        budget: the sweep's trial budget.
        driver_id: the calling sweep's id; its own trials are never reclaimed.
        wait_s: how long to wait for an orphaned trial process to exit.

    Returns:
        Numbers of the trials that were retried.
    """
    optuna = import_optuna()
    _fail_dead_sweeps_trials(study, storage, driver_id, wait_s)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    done, running, waiting = budget_counts(study)
    enqueued = []
    for t in trials:
        if done + running + waiting >= budget:
            break
        if t.state == optuna.trial.TrialState.FAIL and t.user_attrs.get("outcome") not in COUNTED_FAILURES \
                and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            enqueued.append(t.number)
            waiting += 1
    return enqueued
