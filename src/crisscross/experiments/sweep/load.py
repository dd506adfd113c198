"""Loading a sweep file: read the YAML, build its typed sections, resolve them against the base config.

:func:`load_sweep` builds the base config with every choice (or range end) of every search dimension, so a
misspelt key or an out-of-range value fails at load time rather than in a trial. Every error names the sweep
file and the dotted key. :func:`trial_config` builds the config one run of a trial trains.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from crisscross.config.load import apply_overrides, config_from_dict, read_yaml
from crisscross.config.schema import ConfigError, ExperimentConfig
from crisscross.experiments.sweep.spec import (
    EPOCH_METRICS,
    NAME_RE,
    Objective,
    SearchParam,
    SweepError,
    SweepFile,
    SweepSpec,
    build_section,
    parse_overrides,
)
from crisscross.tasks.base import Task
from crisscross.tasks.registry import get_task

__all__ = ["load_sweep", "trial_config", "trial_overrides"]


def _expand_shorthands(raw: dict[str, Any]) -> dict[str, Any]:
    """``sampler: tpe``, ``objective: METRIC`` and ``pruner: median`` (or null) as their mapping forms."""
    out = dict(raw)
    if "sampler" in out and not isinstance(out["sampler"], dict):
        out["sampler"] = {"type": out["sampler"]}
    if isinstance(out.get("objective"), str):
        out["objective"] = {"metric": out["objective"]}
    if "pruner" in out and not isinstance(out["pruner"], dict):
        out["pruner"] = {"type": out["pruner"]}
    if isinstance(out.get("pruner"), dict) and out["pruner"].get("type", "none") is None:
        out["pruner"] = {**out["pruner"], "type": "none"}
    return out


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        loaded = read_yaml(path, "config file")
    except ConfigError as err:  # one line naming the file and the line where parsing failed
        raise ConfigError(f"{what}: {err}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{what}: {path} must hold a mapping at the top level")
    return loaded or {}


def _base_values(base: Path) -> dict[str, Any]:
    try:
        found = base.is_file()
    except OSError as err:  # e.g. a name longer than the file system allows (is_file() only hides ENOENT & co.)
        raise ConfigError(f"base: cannot use {str(base)!r} as a config file ({err.strerror})") from None
    if not found:
        raise ConfigError(f"base: config file {base} does not exist")
    return _read_mapping(base, "base")


def _base_path(sweep: Path, base: str) -> Path:
    """The base config file ``base`` names, relative to the sweep file."""
    try:
        return (sweep.parent / base).resolve()
    except (OSError, ValueError):  # a NUL byte in the name, a symlink loop
        raise ConfigError(f"base: cannot use {base!r} as a config file name") from None


def _override_texts(values: Mapping[str, Any]) -> list[str]:
    # JSON is YAML: the config loader parses each value back exactly (strings stay strings, 1e-4 a float).
    texts = []
    for k, v in values.items():
        try:
            texts.append(f"{k}={json.dumps(v)}")
        except (TypeError, ValueError):  # YAML's dates, binary and sets, or a list that holds itself (&a [*a])
            raise ConfigError(f"{k!r}: got a {type(v).__name__} that is no config value (expected numbers, "
                              "strings, true/false, null, and lists or mappings of them that do not contain "
                              "themselves)") from None
    return texts


def _build_config(base_values: dict[str, Any], overrides: Mapping[str, Any]) -> ExperimentConfig:
    return config_from_dict(apply_overrides(base_values, _override_texts(overrides)))


def _task_of(cfg: ExperimentConfig) -> Task:
    try:
        return get_task(cfg.task)
    except ValueError as err:
        raise ConfigError(f"overrides: {err}") from None


def _resolve_objective(objective: Objective, task: Task) -> Objective:
    """The objective with its metric defaulted to the task's and checked against what the engine logs."""
    metric = objective.metric or task.validation_metric
    loss_keys = task.loss_log([0.0] * len(task.loss_term_names))
    known = (*EPOCH_METRICS, *(f"train/epoch_{k}" for k in loss_keys), task.validation_metric)
    if not (metric in known or metric.startswith("val/")):
        raise ConfigError(f"objective.metric: got {metric!r}, expected a per-epoch metric: {', '.join(known)} "
                          "or another val/... key")
    return dataclasses.replace(objective, metric=metric)


def _resolve_space(raw: dict[str, Any], base_values: dict[str, Any],
                   overrides: dict[str, Any]) -> tuple[SearchParam, ...]:
    """The search dimensions, each choice (or range end) checked by building the base config with it."""
    for name in raw:
        if not str(name).isprintable():  # every message names the dimension: keep them one line
            raise ConfigError(f"space: {str(name)!r}: expected a dotted config key or a label, without line breaks "
                              "or other control characters")
    space = tuple(build_section(SearchParam, value, f"space.{name}", name=str(name)) for name, value in raw.items())
    for p in space:
        for value in p.candidates():
            try:
                _build_config(base_values, {**overrides, **p.overrides(value)})
            except ConfigError as err:
                raise ConfigError(f"space.{p.name}: value {value!r}: {err}") from None
    return space


def _check_budget_rules(spec: SweepSpec) -> None:
    """A grid needs grid points in every dimension; the other samplers need a trial budget."""
    if spec.sampler == "grid":
        for p in spec.space:
            try:
                p.grid_values()
            except SweepError as err:
                raise ConfigError(str(err)) from None
    elif spec.trials is None:
        raise ConfigError(f"trials: required for the {spec.sampler} sampler")


def _resolve(path: Path, raw: dict[str, Any], extra_overrides: Iterable[str]) -> SweepSpec:
    """The spec of the file's values: sections built, overrides merged, space and objective checked."""
    file = build_section(SweepFile, _expand_shorthands(raw), "")
    name = file.name if file.name is not None else path.stem
    if not NAME_RE.match(name):
        raise ConfigError(f"name: expected letters, digits, '.', '_' or '-', got {name!r}")
    base = _base_path(path, file.base)
    base_values = _base_values(base)
    overrides = {**parse_overrides(file.overrides, "overrides"),
                 **parse_overrides(list(extra_overrides), "command-line overrides")}
    try:
        base_cfg = _build_config(base_values, overrides)
    except ConfigError as err:
        raise ConfigError(f"overrides: {err}") from None
    task = _task_of(base_cfg)
    spec = SweepSpec(path=path, name=name, base=base, overrides=overrides,
                     space=_resolve_space(file.space, base_values, overrides), sampler=file.sampler.type,
                     sampler_seed=file.sampler.seed, objective=_resolve_objective(file.objective, task),
                     trials=file.trials, seeds=file.seeds or (base_cfg.seed,), pruner=file.pruner)
    _check_budget_rules(spec)
    return spec


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
        raw = read_yaml(path, "sweep file")
    except ConfigError as err:  # one line naming the file and the line where parsing failed
        raise SweepError(str(err)) from None
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: top level: expected a mapping, got {raw!r}")
    try:
        return _resolve(path, raw, extra_overrides)
    except ConfigError as err:
        raise SweepError(f"{path}: {err}") from None


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

    Raises:
        SweepError: the base config is gone or the values do not make a valid config.
    """
    values = {**trial_overrides(spec, params, seed), **(extra or {})}
    try:
        return _build_config(_base_values(spec.base), values)
    except ConfigError as err:
        raise SweepError(f"{spec.path}: trial parameters {dict(params)}: {err}") from None
