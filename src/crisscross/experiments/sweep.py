"""Hyper-parameter sweeps over dotted config keys, run as Optuna studies with one process per trial.

A sweep file (YAML, values only) names a base experiment config, overrides on top of it, a search space over
dotted keys, a sampler, an objective (a metric the engine logs per epoch), a trial budget, an optional pruner
and the seeds every configuration is repeated with::

    name: optimizers                       # study name (default: the file name)
    base: ../forecast/synthetic_small.yaml # relative to this file
    overrides: {train.epochs: 3}           # or a list of "key=value" texts
    space:
      optim.lr: {type: loguniform, low: 1.0e-4, high: 1.0e-2}
      model.args.enc_blocks: {type: int, low: 1, high: 4}
      optim.name: {type: choice, values: [adam, adamw]}
      optimizer:                            # a labelled bundle: each label sets several keys at once
        type: choice
        values:
          sgd: {optim.name: sgd}
          sgd-momentum: {optim.name: sgd, optim.momentum: 0.9}
    sampler: tpe                            # grid | random | tpe, or {type: tpe, seed: 0}
    objective: {metric: val/mpjpe22_avg_mm, direction: minimize, reduce: best}
    trials: 20                              # budget; a grid defaults to its size
    seeds: [0, 1, 2]                        # every trial trains one run per seed; the value is their mean
    pruner: {type: median, startup_trials: 3, warmup_epochs: 1}   # or none (the default)

How it runs (:func:`run_sweep`): the study lives in an Optuna storage (a SQLite file in the sweep's output
folder unless ``storage`` names a database URL, which lets sweeps on several machines share one study).
``workers`` threads each ask the study for a trial, fix its parameters, and run it in its own process
(``python -m crisscross.experiments.trial``), which trains one run folder per seed through
:func:`crisscross.training.loop.fit` and tells the study the result. Pruning: the trial process follows its
first seed's ``metrics.jsonl`` in a thread, reports each epoch's objective value to the study and, when the
median pruner says so, asks the engine to stop (SIGTERM to itself: the engine finishes the step, checkpoints
and returns), so the engine needs no callback hook. A diverging run (``TrainingDiverged``) or any error is
recorded as a FAILED trial and the sweep goes on. Trials left running by a killed sweep are failed as stale
(their sweep process is dead on this machine, or their heartbeat stopped) and retried; a retry continues
the killed run folders from their last checkpoint. The budget counts completed, pruned and genuinely failed
trials, never stale ones, so a resumed sweep ends with the full budget.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import yaml

from crisscross.config.load import apply_overrides, config_from_dict
from crisscross.config.schema import ConfigError, ExperimentConfig

if TYPE_CHECKING:  # optuna is imported lazily: importing this module stays cheap and side-effect free
    import optuna

__all__ = [
    "SweepError",
    "SearchParam",
    "SweepSpec",
    "SweepOutcome",
    "load_sweep",
    "trial_overrides",
    "trial_config",
    "suggest_params",
    "make_sampler",
    "make_pruner",
    "open_storage",
    "default_storage_url",
    "open_study",
    "reclaim_trials",
    "budget_counts",
    "run_sweep",
    "trial_rows",
    "configuration_rows",
    "write_sweep_summary",
    "load_outcome",
    "quiet_optuna",
    "EPOCH_METRICS",
    "COUNTED_FAILURES",
]

SAMPLERS = ("grid", "random", "tpe")
PARAM_TYPES = ("choice", "categorical", "uniform", "loguniform", "int")
DIRECTIONS = ("minimize", "maximize")
PRUNERS = ("none", "median")
# Per-epoch keys the engine logs (metrics.jsonl); any ``val/...`` key is accepted as well.
EPOCH_METRICS = ("train/epoch_loss", "train/epoch_mpjpe_mm", "time/epoch_s", "time/samples_per_s", "time/wall_s",
                 "memory/peak_mb", "val/mpjpe22_avg_mm", "val/mpjpe32_avg_mm")
# Trial outcomes (user attribute ``outcome``) that use up the budget; ``stale``/``interrupted`` ones are retried.
COUNTED_FAILURES = ("diverged", "error")
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
_TOP_KEYS = ("name", "base", "overrides", "space", "sampler", "objective", "trials", "seeds", "pruner")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SweepError(ValueError):
    """A sweep file or sweep request is invalid; the message names the file and key."""


@dataclass(frozen=True)
class SearchParam:
    """One dimension of the search space.

    Attributes:
        name: a dotted config key, or any label for a bundle choice.
        kind: ``choice``, ``uniform``, ``loguniform`` or ``int``.
        values: the choices (bundle labels for a bundle), or explicit grid points for numeric kinds.
        bundles: for a bundle choice, label -> {dotted key: value} applied together.
        low, high: numeric range (inclusive).
        step: step of an ``int`` parameter.
        log: sample on a log scale (``loguniform``, or an ``int`` with ``log: true``).
    """

    name: str
    kind: str
    values: tuple[Any, ...] | None = None
    bundles: Mapping[str, Mapping[str, Any]] | None = None
    low: float | None = None
    high: float | None = None
    step: int = 1
    log: bool = False

    def grid_values(self) -> list[Any]:
        """The points this dimension takes under the grid sampler."""
        if self.values is not None:
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        raise SweepError(f"space.{self.name}: the grid sampler needs explicit 'values' for a {self.kind} parameter")

    def overrides(self, value: Any) -> dict[str, Any]:
        """The dotted config values this parameter sets when it takes ``value``."""
        if self.bundles is not None:
            return dict(self.bundles[value])
        return {self.name: value}

    def candidates(self) -> list[Any]:
        """Representative values used to validate the parameter against the config schema."""
        if self.values is not None:
            return list(self.values)
        if self.kind == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file.

    Attributes:
        path: the sweep file.
        name: study name.
        base: the base experiment config file.
        overrides: dotted key -> value applied to the base (then the search parameters, then the seed).
        space: the search dimensions.
        sampler: ``grid``, ``random`` or ``tpe``.
        sampler_seed: seed of the sampler.
        metric: objective metric (a per-epoch key of ``metrics.jsonl``).
        direction: ``minimize`` or ``maximize``.
        reduce: ``best`` (best epoch) or ``last`` (last epoch) value of the metric per run.
        trials: trial budget (None: the grid size).
        seeds: seeds every trial trains with.
        pruner: ``none`` or ``median``.
        pruner_startup_trials: finished trials before pruning starts.
        pruner_warmup_epochs: epochs a trial runs before it can be pruned.
    """

    path: Path
    name: str
    base: Path
    overrides: dict[str, Any]
    space: tuple[SearchParam, ...]
    sampler: str = "tpe"
    sampler_seed: int = 0
    metric: str = "val/mpjpe22_avg_mm"
    direction: str = "minimize"
    reduce: str = "best"
    trials: int | None = None
    seeds: tuple[int, ...] = (0,)
    pruner: str = "none"
    pruner_startup_trials: int = 2
    pruner_warmup_epochs: int = 1

    def grid_size(self) -> int:
        """Number of grid points (product of every dimension's grid values)."""
        return math.prod(len(p.grid_values()) for p in self.space)

    def budget(self, override: int | None = None) -> int:
        """Trials the study should end with: ``override``, else ``trials``, else the grid size (capped by it)."""
        n = override or self.trials
        if self.sampler == "grid":
            size = self.grid_size()
            return min(n, size) if n else size
        if n is None:
            raise SweepError(f"{self.path}: trials: required for the {self.sampler} sampler")
        return n

    def mode(self) -> str:
        """``min``, ``max`` or ``last``: how one run's epoch values reduce to its objective value."""
        if self.reduce == "last":
            return "last"
        return "min" if self.direction == "minimize" else "max"

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when a study is resumed: the space and the objective."""
        return {"space": [[p.name, p.kind, _jsonable(p.values), _jsonable(p.bundles), p.low, p.high, p.step, p.log]
                          for p in self.space],
                "metric": self.metric, "direction": self.direction, "reduce": self.reduce, "seeds": list(self.seeds)}


def quiet_optuna() -> None:
    """Silence Optuna's info logs and the warnings that ask/tell with heartbeats always triggers.

    The sweep runs trials through ``Study.ask``/``tell`` in worker processes (not ``Study.optimize``), with
    heartbeats recorded by the trial process; Optuna warns about both although this use is deliberate.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str)) if x is not None else None


# --------------------------------------------------------------------------------------------- loading


def _err(path: Path, key: str, message: str) -> SweepError:
    return SweepError(f"{path}: {key}: {message}")


def _number(path: Path, key: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _err(path, key, f"expected a number, got {value!r}")
    return float(value)


def _integer(path: Path, key: str, value: Any, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise _err(path, key, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise _err(path, key, f"must be >= {minimum}, got {value}")
    return int(value)


def _mapping(path: Path, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _err(path, key, f"expected a mapping, got {value!r}")
    return value


def _override_texts(values: Mapping[str, Any]) -> list[str]:
    # JSON is YAML: the config loader parses each value back exactly (strings stay strings, 1e-4 a float).
    return [f"{k}={json.dumps(v)}" for k, v in values.items()]


def _parse_overrides(path: Path, key: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, list):
        out: dict[str, Any] = {}
        for i, text in enumerate(raw):
            if not isinstance(text, str) or "=" not in text:
                raise _err(path, f"{key}[{i}]", f"expected KEY=VALUE, got {text!r}")
            k, v = text.split("=", 1)
            out[k.strip()] = yaml.safe_load(v) if v.strip() else ""
        return out
    raise _err(path, key, f"expected a mapping of dotted keys or a list of KEY=VALUE, got {raw!r}")


def _parse_param(path: Path, name: str, raw: Any) -> SearchParam:
    key = f"space.{name}"
    raw = _mapping(path, key, raw)
    allowed = {"type", "values", "low", "high", "step", "log"}
    for k in raw:
        if k not in allowed:
            raise _err(path, f"{key}.{k}", f"unknown key; allowed: {', '.join(sorted(allowed))}")
    kind = raw.get("type")
    if kind not in PARAM_TYPES:
        raise _err(path, f"{key}.type", f"got {kind!r}, expected one of {', '.join(PARAM_TYPES)}")
    kind = "choice" if kind == "categorical" else kind
    values = raw.get("values")
    if kind == "choice":
        if isinstance(values, dict):
            if not values:
                raise _err(path, f"{key}.values", "needs at least one label")
            bundles = {}
            for label, sets in values.items():
                bundles[str(label)] = _parse_overrides(path, f"{key}.values.{label}", sets)
            return SearchParam(name=name, kind=kind, values=tuple(bundles), bundles=bundles)
        if not isinstance(values, list) or not values:
            raise _err(path, f"{key}.values", "expected a non-empty list (or a mapping label -> overrides)")
        for i, v in enumerate(values):
            if not (v is None or isinstance(v, (str, int, float, bool))):
                raise _err(path, f"{key}.values[{i}]", f"choices must be scalars, got {v!r}; use a labelled "
                           "mapping (label: {key: value}) for structured values")
        return SearchParam(name=name, kind=kind, values=tuple(values))
    grid = None
    if values is not None:
        if not isinstance(values, list) or not values:
            raise _err(path, f"{key}.values", "expected a non-empty list of grid points")
        conv = _integer if kind == "int" else _number
        grid = tuple(conv(path, f"{key}.values[{i}]", v) for i, v in enumerate(values))
    low = raw.get("low", min(grid) if grid else None)
    high = raw.get("high", max(grid) if grid else None)
    if low is None or high is None:
        raise _err(path, f"{key}.low" if low is None else f"{key}.high", f"required for a {kind} parameter")
    if kind == "int":
        low, high = _integer(path, f"{key}.low", low), _integer(path, f"{key}.high", high)
    else:
        low, high = _number(path, f"{key}.low", low), _number(path, f"{key}.high", high)
    if not low <= high:
        raise _err(path, key, f"low ({low}) must be <= high ({high})")
    log = kind == "loguniform" or bool(raw.get("log", False))
    if log and low <= 0:
        raise _err(path, f"{key}.low", f"must be > 0 on a log scale, got {low}")
    step = _integer(path, f"{key}.step", raw.get("step", 1), minimum=1)
    if step != 1 and kind != "int":
        raise _err(path, f"{key}.step", "only int parameters take a step")
    if grid and any(not low <= g <= high for g in grid):
        raise _err(path, f"{key}.values", f"grid points must lie in [{low}, {high}]")
    return SearchParam(name=name, kind=kind, values=grid, low=low, high=high, step=step, log=log)


def _base_values(path: Path, base: Path) -> dict[str, Any]:
    if not base.is_file():
        raise _err(path, "base", f"config file {base} does not exist")
    try:
        loaded = yaml.safe_load(base.read_text())
    except yaml.YAMLError as err:
        raise _err(path, "base", f"cannot parse {base}: {err}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise _err(path, "base", f"{base} must hold a mapping at the top level")
    return loaded or {}


def _build_config(base_values: dict[str, Any], overrides: Mapping[str, Any]) -> ExperimentConfig:
    return config_from_dict(apply_overrides(base_values, _override_texts(overrides)))


def load_sweep(path: str | Path, extra_overrides: Iterable[str] = ()) -> SweepSpec:
    """Read and validate a sweep file.

    Every search dimension is checked against the config schema by building the base config with each of its
    choices (or its range ends), so a misspelt key or an out-of-range value fails here, naming the key.

    Args:
        path: the sweep YAML file.
        extra_overrides: ``key=value`` texts applied after the file's ``overrides`` (e.g. ``data.dataset=h36m``).

    Returns:
        The validated spec.

    Raises:
        SweepError: the file is missing, malformed, or names an invalid key or value.
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise SweepError(f"{path}: cannot parse YAML: {err}") from None
    raw = _mapping(path, "top level", raw)
    for k in raw:
        if k not in _TOP_KEYS:
            raise _err(path, str(k), f"unknown key; allowed keys: {', '.join(_TOP_KEYS)}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise _err(path, "name", f"expected letters, digits, '.', '_' or '-', got {name!r}")
    if not isinstance(raw.get("base"), str):
        raise _err(path, "base", "required: the base experiment config file, relative to the sweep file")
    base = (path.parent / raw["base"]).resolve()
    base_values = _base_values(path, base)

    overrides = _parse_overrides(path, "overrides", raw.get("overrides"))
    extra = _parse_overrides(path, "command-line overrides", list(extra_overrides))
    overrides.update(extra)
    try:
        base_cfg = _build_config(base_values, overrides)
    except ConfigError as err:
        raise _err(path, "overrides", str(err)) from None

    space_raw = _mapping(path, "space", raw.get("space"))
    if not space_raw:
        raise _err(path, "space", "needs at least one parameter")
    space = tuple(_parse_param(path, str(n), v) for n, v in space_raw.items())
    for p in space:
        for value in p.candidates():
            try:
                _build_config(base_values, {**overrides, **p.overrides(value)})
            except ConfigError as err:
                raise _err(path, f"space.{p.name}", f"value {value!r}: {err}") from None

    sampler_raw = raw.get("sampler", "tpe")
    sampler_seed = 0
    if isinstance(sampler_raw, dict):
        for k in sampler_raw:
            if k not in ("type", "seed"):
                raise _err(path, f"sampler.{k}", "unknown key; allowed: type, seed")
        sampler_seed = _integer(path, "sampler.seed", sampler_raw.get("seed", 0))
        sampler_raw = sampler_raw.get("type")
    if sampler_raw not in SAMPLERS:
        raise _err(path, "sampler", f"got {sampler_raw!r}, expected one of {', '.join(SAMPLERS)}")

    obj = raw.get("objective", {})
    obj = {"metric": obj} if isinstance(obj, str) else _mapping(path, "objective", obj)
    for k in obj:
        if k not in ("metric", "direction", "reduce"):
            raise _err(path, f"objective.{k}", "unknown key; allowed: metric, direction, reduce")
    metric = obj.get("metric", "val/mpjpe22_avg_mm")
    known = EPOCH_METRICS + (f"val/{base_cfg.eval.select_metric}",)
    if not isinstance(metric, str) or not (metric in known or metric.startswith("val/")):
        raise _err(path, "objective.metric", f"got {metric!r}, expected a per-epoch metric: {', '.join(known)}")
    direction = obj.get("direction", "minimize")
    if direction not in DIRECTIONS:
        raise _err(path, "objective.direction", f"got {direction!r}, expected minimize or maximize")
    reduce = obj.get("reduce", "best")
    if reduce not in ("best", "last"):
        raise _err(path, "objective.reduce", f"got {reduce!r}, expected best or last")

    trials = raw.get("trials")
    trials = None if trials is None else _integer(path, "trials", trials, minimum=1)
    seeds_raw = raw.get("seeds", [base_cfg.seed])
    if not isinstance(seeds_raw, list) or not seeds_raw:
        raise _err(path, "seeds", f"expected a non-empty list of integers, got {seeds_raw!r}")
    seeds = tuple(_integer(path, f"seeds[{i}]", s) for i, s in enumerate(seeds_raw))
    if len(set(seeds)) != len(seeds):
        raise _err(path, "seeds", f"repeated seed in {list(seeds)}")

    pruner_raw = raw.get("pruner", "none")
    pr = {"type": pruner_raw} if isinstance(pruner_raw, str) or pruner_raw is None else _mapping(path, "pruner",
                                                                                                  pruner_raw)
    for k in pr:
        if k not in ("type", "startup_trials", "warmup_epochs"):
            raise _err(path, f"pruner.{k}", "unknown key; allowed: type, startup_trials, warmup_epochs")
    pruner = pr.get("type") or "none"
    if pruner not in PRUNERS:
        raise _err(path, "pruner.type", f"got {pruner!r}, expected one of {', '.join(PRUNERS)}")

    spec = SweepSpec(path=path, name=name, base=base, overrides=overrides, space=space, sampler=sampler_raw,
                     sampler_seed=sampler_seed, metric=metric, direction=direction, reduce=reduce, trials=trials,
                     seeds=seeds, pruner=pruner,
                     pruner_startup_trials=_integer(path, "pruner.startup_trials", pr.get("startup_trials", 2), 0),
                     pruner_warmup_epochs=_integer(path, "pruner.warmup_epochs", pr.get("warmup_epochs", 1), 0))
    if spec.sampler == "grid":
        for p in space:
            try:
                p.grid_values()
            except SweepError as err:
                raise SweepError(f"{path}: {err}") from None
    elif spec.trials is None:
        raise _err(path, "trials", f"required for the {spec.sampler} sampler")
    return spec


def trial_overrides(spec: SweepSpec, params: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Dotted values of one run: the sweep's overrides, the trial's parameters, the seed, no progress bar."""
    values = dict(spec.overrides)
    for p in spec.space:
        if p.name in params:
            values.update(p.overrides(params[p.name]))
    values.update({"seed": seed, "train.progress": False})
    return values


def trial_config(spec: SweepSpec, params: Mapping[str, Any], seed: int,
                 extra: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """The experiment config one run of a trial trains.

    Args:
        spec: the sweep.
        params: the trial's parameter values (by search-dimension name).
        seed: the run's seed.
        extra: last-applied dotted values (e.g. ``train.device`` for a worker's GPU).

    Returns:
        The validated config.
    """
    values = {**trial_overrides(spec, params, seed), **(extra or {})}
    try:
        return _build_config(_base_values(spec.path, spec.base), values)
    except ConfigError as err:
        raise SweepError(f"{spec.path}: trial parameters {dict(params)}: {err}") from None


# --------------------------------------------------------------------------------------------- optuna glue


def suggest_params(trial: "optuna.trial.Trial", spec: SweepSpec) -> dict[str, Any]:
    """Ask the trial for a value of every search dimension (enqueued/grid trials get their fixed values)."""
    params = {}
    for p in spec.space:
        if p.kind == "choice":
            params[p.name] = trial.suggest_categorical(p.name, list(p.values))
        elif p.kind == "int":
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=p.step, log=p.log)
        else:
            params[p.name] = trial.suggest_float(p.name, float(p.low), float(p.high), log=p.log)
    return params


def make_sampler(spec: SweepSpec) -> "optuna.samplers.BaseSampler":
    """Optuna's GridSampler, RandomSampler or TPESampler for the spec."""
    import optuna

    if spec.sampler == "grid":

        class _BudgetedGridSampler(optuna.samplers.GridSampler):
            # GridSampler.after_trial calls Study.stop(), which only works inside Study.optimize; the sweep
            # driver enforces the budget itself, so finishing a trial through study.tell must not stop anything.
            def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
                return None

        return _BudgetedGridSampler({p.name: p.grid_values() for p in spec.space}, seed=spec.sampler_seed)
    if spec.sampler == "random":
        return optuna.samplers.RandomSampler(seed=spec.sampler_seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # constant_liar: parallel workers see running trials as bad results and spread out.
        return optuna.samplers.TPESampler(seed=spec.sampler_seed, constant_liar=True)


def make_pruner(spec: SweepSpec) -> "optuna.pruners.BasePruner":
    """MedianPruner over per-epoch objective values, or NopPruner."""
    import optuna

    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=spec.pruner_startup_trials,
                                           n_warmup_steps=spec.pruner_warmup_epochs)
    return optuna.pruners.NopPruner()


def default_storage_url(out_dir: str | Path) -> str:
    """``sqlite:///<out_dir>/study.db`` (absolute path)."""
    return f"sqlite:///{(Path(out_dir) / 'study.db').resolve()}"


def open_storage(url: str) -> "optuna.storages.RDBStorage":
    """An RDB storage with heartbeats, so trials of dead workers on any machine can be detected as stale.

    Args:
        url: SQLAlchemy database URL: ``sqlite:///path/study.db``, ``postgresql://user:pw@host/db``,
            ``mysql+pymysql://...`` (the driver package must be installed).

    Returns:
        The storage.
    """
    import optuna

    engine_kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs,
                                              heartbeat_interval=HEARTBEAT_INTERVAL_S, grace_period=GRACE_PERIOD_S)
        except (ImportError, ModuleNotFoundError) as err:
            raise SweepError(f"storage {url}: missing database driver ({err})") from None
        except Exception as err:  # SQLAlchemy raises many types for a bad URL or unreachable server
            raise SweepError(f"storage {url}: cannot open ({type(err).__name__}: {err})") from None


def open_study(spec: SweepSpec, storage: "optuna.storages.BaseStorage | str", *, resume: bool,
               name: str | None = None) -> "optuna.Study":
    """Create the study, or load it when ``resume`` (checking the space and objective did not change).

    Raises:
        SweepError: the study exists and ``resume`` is False, or it was created from a different sweep.
    """
    import optuna

    storage = open_storage(storage) if isinstance(storage, str) else storage
    study_name = name or spec.name
    url = getattr(storage, "url", str(storage))
    if not resume:
        try:
            study = optuna.create_study(study_name=study_name, storage=storage, sampler=make_sampler(spec),
                                        pruner=make_pruner(spec), direction=spec.direction)
        except optuna.exceptions.DuplicatedStudyError:
            raise SweepError(f"study {study_name!r} already exists in {url}; add --resume to continue it (or to "
                             "join it from another machine), or give a new --name") from None
        study.set_user_attr("sweep", spec.fingerprint())
        study.set_user_attr("sweep_file", str(spec.path))
        return study
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=make_sampler(spec),
                                pruner=make_pruner(spec), direction=spec.direction, load_if_exists=True)
    stored = study.user_attrs.get("sweep")
    if stored is None:
        study.set_user_attr("sweep", spec.fingerprint())
        study.set_user_attr("sweep_file", str(spec.path))
    elif stored != _jsonable(spec.fingerprint()):
        changed = [k for k in stored if stored.get(k) != _jsonable(spec.fingerprint()).get(k)]
        raise SweepError(f"{spec.path}: study {study_name!r} in {url} was created with a different "
                         f"{', '.join(changed)}; resume it with the original sweep file or give a new --name")
    return study


def budget_counts(study: "optuna.Study") -> tuple[int, int, int]:
    """``(done, running, waiting)``: trials that use up the budget, running trials, enqueued trials."""
    from optuna.trial import TrialState

    done = running = waiting = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
                t.state == TrialState.FAIL and t.user_attrs.get("outcome") in COUNTED_FAILURES):
            done += 1
        elif t.state == TrialState.RUNNING:
            running += 1
        elif t.state == TrialState.WAITING:
            waiting += 1
    return done, running, waiting


def _pid_alive(pid: Any) -> bool:
    from crisscross.experiments.runs import process_alive

    return isinstance(pid, int) and process_alive(pid)


def reclaim_trials(study: "optuna.Study", budget: int, driver_id: str = "", wait_s: float = 60.0) -> list[int]:
    """Fail trials left running by dead sweeps and enqueue retries of stale or interrupted trials.

    A RUNNING trial is stale when its sweep process on this machine is gone (its trial process is given
    ``wait_s`` to stop and report by itself first), or when its heartbeat is older than the grace period
    (any machine). Each FAILED trial whose outcome is not a counted failure (diverged, error) gets one retry
    with the same parameters, as long as the budget is not used up; the retry resumes its run folders.

    Args:
        study: the study.
        budget: the sweep's trial budget.
        driver_id: the calling sweep's id; its own trials are never reclaimed.
        wait_s: how long to wait for an orphaned trial process to exit.

    Returns:
        Numbers of the trials that were retried.
    """
    import optuna
    from optuna.trial import TrialState

    storage = study._storage
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = t.user_attrs
        if attrs.get("host") != host or attrs.get("driver_id") == driver_id:
            continue
        driver_pid = attrs.get("driver_pid")
        if driver_pid != os.getpid() and _pid_alive(driver_pid):
            continue  # another live sweep on this machine runs it
        deadline = time.monotonic() + wait_s
        while _pid_alive(attrs.get("pid")) and time.monotonic() < deadline:
            time.sleep(0.2)
        if storage.get_trial(t._trial_id).state != TrialState.RUNNING:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, "outcome", "stale")
            storage.set_trial_user_attr(t._trial_id, "error", "its sweep process died (killed sweep)")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    optuna.storages.fail_stale_trials(study)

    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    done, running, waiting = budget_counts(study)
    enqueued = []
    for t in trials:
        if done + running + waiting >= budget:
            break
        if t.state == TrialState.FAIL and t.user_attrs.get("outcome") not in COUNTED_FAILURES \
                and t.number not in retried:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            enqueued.append(t.number)
            waiting += 1
    return enqueued


# --------------------------------------------------------------------------------------------- driver


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` leaves behind.

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


def _format_params(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def run_sweep(spec: SweepSpec, *, out_dir: str | Path | None = None, storage: str | None = None, workers: int = 1,
              trials: int | None = None, resume: bool = False, name: str | None = None,
              devices: Sequence[str] = (), cli_overrides: Sequence[str] = (),
              log: Callable[[str], None] | None = None, command: str | None = None) -> SweepOutcome:
    """Run (or resume, or join) a sweep until the study holds ``budget`` finished trials.

    Args:
        spec: the validated sweep (see :func:`load_sweep`).
        out_dir: output folder (default ``runs/sweeps/<study name>``): ``study.db``, ``runs/``, ``logs/``,
            ``summary.md``, ``trials.csv``, ``configurations.csv``.
        storage: database URL of the study (default: SQLite in ``out_dir``).
        workers: trial processes run at the same time on this machine.
        trials: budget override.
        resume: continue an existing study (or join one another machine started).
        name: study name override.
        devices: devices handed round-robin to the workers (``train.device``), e.g. ``["cuda:0", "cuda:1"]``.
        cli_overrides: the ``key=value`` texts given on the command line; passed on to every trial process.
        log: receives one line per event (trial started/finished); nothing is printed otherwise.
        command: the command line, recorded in ``summary.md``.

    Returns:
        The outcome, with per-trial and per-configuration rows.

    Raises:
        SweepError: the study cannot be created or resumed.
    """
    if workers < 1:
        raise SweepError(f"--workers must be >= 1, got {workers}")
    quiet_optuna()
    study_name = name or spec.name
    out = Path(out_dir) if out_dir is not None else Path("runs") / "sweeps" / study_name
    (out / "logs").mkdir(parents=True, exist_ok=True)
    url = storage or default_storage_url(out)
    study = open_study(spec, open_storage(url), resume=resume, name=study_name)
    budget = spec.budget(trials)
    driver = _Driver(spec, study, out, url, budget, devices, cli_overrides, log or (lambda _msg: None))
    interrupted = driver.run(workers)
    outcome = SweepOutcome(study_name=study_name, storage=url, out_dir=out, budget=budget, interrupted=interrupted,
                           command=command)
    outcome.trials = trial_rows(study, spec)
    outcome.configurations = configuration_rows(outcome.trials, spec)
    write_sweep_summary(outcome, spec)
    return outcome


class _Driver:
    """The sweep process: worker threads that each ask the study for a trial and run it in its own process."""

    def __init__(self, spec: SweepSpec, study: "optuna.Study", out: Path, url: str, budget: int,
                 devices: Sequence[str], cli_overrides: Sequence[str], say: Callable[[str], None]) -> None:
        self.spec, self.study, self.out, self.url, self.budget = spec, study, out, url, budget
        self.devices, self.cli_overrides, self.say = list(devices), list(cli_overrides), say
        self.driver_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.lock = threading.Lock()  # ask + suggest + budget check happen atomically within this sweep
        self.stop = threading.Event()
        self.procs: dict[int, subprocess.Popen] = {}
        self.threads_per_worker = 1

    def run(self, workers: int) -> bool:
        """Reclaim stale trials, run ``workers`` threads until the budget is used up; True when interrupted."""
        import signal

        self.threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
        with self.lock:
            retried = reclaim_trials(self.study, self.budget, self.driver_id)
        if retried:
            self.say(f"retrying stale/interrupted trials {', '.join(map(str, retried))}")
        pool = [threading.Thread(target=self.worker, args=(i,), name=f"sweep-worker-{i}", daemon=True)
                for i in range(workers)]
        for t in pool:
            t.start()
        try:
            while any(t.is_alive() for t in pool):
                for t in pool:
                    t.join(timeout=0.5)
        except KeyboardInterrupt:
            self.stop.set()
            for proc in list(self.procs.values()):  # trial processes checkpoint and report "interrupted"
                try:
                    proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass
            for t in pool:
                t.join()
            return True
        return False

    def next_trial(self) -> tuple["optuna.trial.Trial | None", dict[str, Any], bool]:
        """``(trial, params, finished)``: a new trial, or None to wait; ``finished`` once the budget is used up."""
        with self.lock:
            if self.stop.is_set():
                return None, {}, True
            reclaim_trials(self.study, self.budget, self.driver_id)
            done, running, _ = budget_counts(self.study)
            if done >= self.budget:
                return None, {}, True
            if done + running >= self.budget:
                return None, {}, False  # others run the rest of the budget; one may go stale and need a retry
            trial = self.study.ask()
            params = suggest_params(trial, self.spec)
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("driver_pid", os.getpid())
            trial.set_user_attr("driver_id", self.driver_id)
            self.study._storage.record_heartbeat(trial._trial_id)
            return trial, params, False

    def worker(self, index: int) -> None:
        """Run trials one after another until the budget is used up or the sweep is stopped."""
        device = self.devices[index % len(self.devices)] if self.devices else None
        while not self.stop.is_set():
            trial, params, finished = self.next_trial()
            if finished:
                return
            if trial is None:
                self.stop.wait(1.0)
                continue
            retry = trial.user_attrs.get("retry_of")
            self.say(f"trial {trial.number} started: {_format_params(params)}"
                     + (f" (retry of trial {retry})" if retry is not None else ""))
            code = self.launch(trial.number, device)
            self.finish(trial.number, code)

    def launch(self, number: int, device: str | None) -> int:
        """Run trial ``number`` in ``python -m crisscross.experiments.trial``; its output goes to logs/."""
        cmd = [sys.executable, "-m", "crisscross.experiments.trial", "--sweep", str(self.spec.path),
               "--storage", self.url, "--study", self.study.study_name, "--trial", str(number), "--out", str(self.out),
               "--seeds", ",".join(map(str, self.spec.seeds))]
        for text in self.cli_overrides:
            cmd += ["--set", text]
        if device:
            cmd += ["--device", device]
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(self.threads_per_worker))  # N workers share the cores
        env.setdefault("MKL_NUM_THREADS", str(self.threads_per_worker))
        with open(self.out / "logs" / f"trial-{number:04d}.log", "ab") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
            self.procs[number] = proc
            try:
                return proc.wait()
            finally:
                self.procs.pop(number, None)

    def finish(self, number: int, code: int) -> None:
        """Fail a trial whose process died without telling the study; report the trial's outcome."""
        from optuna.trial import TrialState

        t = _get_trial(self.study, number)
        if t.state == TrialState.RUNNING:
            outcome = "interrupted" if self.stop.is_set() else "error"
            try:
                self.study._storage.set_trial_user_attr(t._trial_id, "outcome", outcome)
                self.study._storage.set_trial_user_attr(
                    t._trial_id, "error",
                    f"trial process exited with code {code}; see {self.out / 'logs' / f'trial-{number:04d}.log'}")
                self.study.tell(number, state=TrialState.FAIL)
            except Exception:  # noqa: BLE001 - another process finished it meanwhile
                pass
            t = _get_trial(self.study, number)
        self.say(_trial_line(t, self.spec))


def _get_trial(study: "optuna.Study", number: int) -> "optuna.trial.FrozenTrial":
    storage = study._storage
    return storage.get_trial(storage.get_trial_id_from_study_id_trial_number(study._study_id, number))


def _trial_line(t: "optuna.trial.FrozenTrial", spec: SweepSpec) -> str:
    attrs = t.user_attrs
    state = t.state.name
    if state == "COMPLETE":
        std = attrs.get("value_std")
        spread = f" ± {std:.3g} over {len(spec.seeds)} seeds" if std is not None and len(spec.seeds) > 1 else ""
        return f"trial {t.number} complete: {spec.metric} = {t.value:.4g}{spread}"
    if state == "PRUNED":
        return f"trial {t.number} pruned at epoch {attrs.get('pruned_at_epoch', t.last_step)}"
    return f"trial {t.number} {attrs.get('outcome', 'failed')}: {attrs.get('error', '')}".rstrip(": ")


# --------------------------------------------------------------------------------------------- summaries


def trial_rows(study: "optuna.Study", spec: SweepSpec) -> list[dict[str, Any]]:
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


def configuration_rows(rows: Sequence[Mapping[str, Any]], spec: SweepSpec) -> list[dict[str, Any]]:
    """Trials grouped by parameter values: mean, standard deviation, min and max of the objective over all seeds.

    Args:
        rows: :func:`trial_rows` output.
        spec: the sweep.

    Returns:
        One row per configuration, best first; configurations without a completed trial come last.
    """
    groups: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["state"] in ("RUNNING", "WAITING") or (r["state"] == "FAIL" and r["outcome"] not in COUNTED_FAILURES):
            continue
        key = json.dumps({p.name: r[p.name] for p in spec.space}, sort_keys=True, default=str)
        g = groups.setdefault(key, {**{p.name: r[p.name] for p in spec.space}, "values": [], "completed": 0,
                                    "pruned": 0, "failed": 0, "trials": []})
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
    out = []
    for g in groups.values():
        vals = g.pop("values")
        g.update(runs=len(vals), mean=statistics.fmean(vals) if vals else None,
                 std=statistics.stdev(vals) if len(vals) > 1 else None,
                 min=min(vals) if vals else None, max=max(vals) if vals else None)
        out.append(g)
    sign = 1 if spec.direction == "minimize" else -1
    out.sort(key=lambda g: (g["mean"] is None, sign * g["mean"] if g["mean"] is not None else 0))
    return out


def write_sweep_summary(outcome: SweepOutcome, spec: SweepSpec) -> list[Path]:
    """Write ``summary.md``, ``trials.csv``, ``configurations.csv`` (and ``configurations.png``) into the output folder.

    These files describe the study's current state and are rewritten on every sweep run.

    Returns:
        The written paths.
    """
    import csv

    from tabulate import tabulate

    out = outcome.out_dir
    out.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in spec.space]
    paths = []
    for fname, rows in (("trials.csv", outcome.trials), ("configurations.csv", outcome.configurations)):
        path = out / fname
        cols = list(rows[0].keys()) if rows else ["trial"]
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in r.items()})
        paths.append(path)
    conf = [[*(c[n] for n in names), c["runs"], c["mean"], c["std"], c["min"], c["max"], c["completed"],
             c["pruned"], c["failed"]] for c in outcome.configurations]
    trials = [[r["trial"], r["state"].lower(), r["outcome"], *(r[n] for n in names), r["value"], r["value_std"],
               r["epochs"], None if r["duration_s"] is None else round(r["duration_s"], 1),
               (r["error"] or "")[:80]] for r in outcome.trials]
    md = [f"# Sweep `{outcome.study_name}`", "",
          f"Sweep file `{spec.path}`, base config `{spec.base}`; objective {spec.metric} ({spec.direction}, "
          f"{spec.reduce} epoch per run), seeds {list(spec.seeds)}, sampler {spec.sampler}, pruner {spec.pruner}, "
          f"budget {outcome.budget} trials; storage `{outcome.storage}`."
          + (f" Last run by `{outcome.command}`." if outcome.command else ""), "",
          "## Configurations (mean and spread over seeds)", "",
          tabulate(conf, headers=[*names, "runs", "mean", "std", "min", "max", "completed", "pruned", "failed"],
                   tablefmt="github", floatfmt=["g"] * len(names) + [".2f"] * 8, missingval="-"), "",
          "## Trials", "",
          tabulate(trials, headers=["trial", "state", "outcome", *names, "value", "std", "epochs", "time (s)",
                                    "error"], tablefmt="github", missingval="-",
                   floatfmt=["g"] * (3 + len(names)) + [".2f", ".2f", "g", ".1f", "g"]), ""]
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
    from crisscross.analysis.plots import plot_bars, save_figure

    if not outcome.configurations:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:  # plotting is optional (pip install 'crisscross[plot]')
        return None
    rows = [{"configuration": ", ".join(_fmt(c[p.name]) for p in spec.space), "mean": c["mean"], "std": c["std"]}
            for c in outcome.configurations]
    fig = plot_bars(rows, "configuration", "mean", yerr="std", ylabel=spec.metric,
                    title=f"{outcome.study_name}: {spec.reduce} {spec.metric} per configuration"
                    + (f" (mean ± std over {len(spec.seeds)} seeds)" if len(spec.seeds) > 1 else ""))
    return save_figure(fig, outcome.out_dir / "configurations.png")


def load_outcome(spec: SweepSpec, *, out_dir: str | Path | None = None, storage: str | None = None,
                 name: str | None = None, trials: int | None = None) -> SweepOutcome:
    """The current state of an existing study, without running anything (``crisscross sweep --summary``).

    Raises:
        SweepError: the study does not exist.
    """
    import optuna

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
