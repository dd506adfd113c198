"""The sweep file: typed sections built by the config loader's converter, then checked against the base config.

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

Each section is a frozen dataclass that :mod:`crisscross.config.load` builds from the plain values, so wrong
types and unknown keys fail with the same messages as in experiment configs; ``__post_init__`` adds the checks
the converter cannot make (allowed names, ranges, grid points) and raises ``ConfigError`` naming the dotted key.
:mod:`.load` reads the file and resolves it against the base config into a :class:`SweepSpec`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crisscross.config.load import build_dataclass, parse_override, printable_key
from crisscross.config.schema import ConfigError

__all__ = [
    "COUNTED_FAILURES",
    "DIRECTIONS",
    "EPOCH_METRICS",
    "MAX_GRID_POINTS",
    "NAME_RE",
    "PARAM_TYPES",
    "PRUNERS",
    "SAMPLERS",
    "Objective",
    "PrunerSection",
    "SamplerSection",
    "SearchParam",
    "SweepError",
    "SweepFile",
    "SweepSpec",
    "build_section",
    "parse_overrides",
]

SAMPLERS = ("grid", "random", "tpe")
PARAM_TYPES = ("choice", "categorical", "uniform", "loguniform", "int")
DIRECTIONS = ("minimize", "maximize")
REDUCTIONS = ("best", "last")
PRUNERS = ("none", "median")
# Per-epoch keys the engine logs for every task; the task's ``train/epoch_<term>`` keys and any ``val/...`` key
# are accepted as well.
EPOCH_METRICS = ("train/epoch_loss", "time/epoch_s", "time/samples_per_s", "time/wall_s", "memory/peak_mb")
# Trial outcomes (user attribute ``outcome``) that use up the budget; ``stale``/``interrupted`` ones are retried.
COUNTED_FAILURES = ("diverged", "error")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# Most points one int dimension may have on a grid: enough for any sensible grid, few enough to list them.
MAX_GRID_POINTS = 100_000


class SweepError(ValueError):
    """A sweep file or sweep request is invalid; the message names the file and key."""


def build_section(cls: type, values: Any, key: str, **fixed: Any) -> Any:
    """Build the frozen dataclass ``cls`` from plain ``values`` with the config loader's typed converter.

    Args:
        cls: a frozen dataclass whose fields all have defaults.
        values: the section's mapping as read from YAML.
        key: the section's dotted key, used in error messages ("" at the top level).
        fixed: field values that do not come from the file (e.g. a search dimension's name).

    Raises:
        ConfigError: naming the dotted key of an unknown key, a wrong type or a failed check.
    """
    names = [f.name for f in dataclasses.fields(cls) if f.name not in fixed]
    if not isinstance(values, dict):
        raise ConfigError(f"{key}: expected a mapping of {', '.join(names)}, got {values!r}")
    for k in values:
        if k not in names:
            where = f" in {key}" if key else ""
            raise ConfigError(f"{printable_key(_join(key, k))}: unknown key; allowed keys{where}: {', '.join(names)}")
    return build_dataclass(cls, {**values, **fixed}, key)


def _join(key: str, sub: Any) -> str:
    return f"{key}.{sub}" if key else str(sub)



def _choice(value: Any, key: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}: got {value!r}, expected one of {', '.join(allowed)}")


def _minimum(value: int, key: str, minimum: int) -> None:
    if value < minimum:
        raise ConfigError(f"{key}: must be >= {minimum}, got {value}")


def _integral(value: Any, key: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    return int(value)


def _number(value: Any, key: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    return float(value)


def parse_overrides(raw: Any, key: str) -> dict[str, Any]:
    """Dotted overrides from a mapping ``{key: value}`` or a list of ``key=value`` texts."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): v for k, v in raw.items()}
    if isinstance(raw, (list, tuple)):
        out: dict[str, Any] = {}
        for i, text in enumerate(raw):
            if not isinstance(text, str) or "=" not in text:
                raise ConfigError(f"{key}[{i}]: expected KEY=VALUE, got {text!r}")
            path, value = parse_override(text)
            out[".".join(path)] = value
        return out
    raise ConfigError(f"{key}: expected a mapping of dotted keys or a list of KEY=VALUE, got {raw!r}")


# --------------------------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SearchParam:
    """One dimension of the search space (``space.<name>``).

    Attributes:
        name: a dotted config key, or any label for a bundle choice (the key under ``space``).
        type: ``choice``, ``uniform``, ``loguniform`` or ``int`` (``categorical`` is read as ``choice``).
        values: the choices; for a bundle, label -> {dotted key: value} applied together; for a numeric
            type, explicit grid points.
        low, high: numeric range (inclusive); default: the range of the grid points.
        step: step of an ``int`` parameter.
        log: sample on a log scale (always for ``loguniform``).
    """

    name: str = ""
    type: str | None = None
    values: tuple[Any, ...] | dict[str, Any] | None = None
    low: float | None = None
    high: float | None = None
    step: int = 1
    log: bool = False

    def __post_init__(self) -> None:
        key = f"space.{self.name}"
        _choice(self.type, f"{key}.type", PARAM_TYPES)
        if self.type == "categorical":
            object.__setattr__(self, "type", "choice")
        if self.type == "choice":
            self._check_choices(key)
        else:
            self._check_range(key)

    def _check_choices(self, key: str) -> None:
        if isinstance(self.values, dict):
            if not self.values:
                raise ConfigError(f"{key}.values: needs at least one label")
            bundles = {str(label): parse_overrides(sets, printable_key(f"{key}.values.{label}"))
                       for label, sets in self.values.items()}
            object.__setattr__(self, "values", bundles)
            return
        if not self.values:
            raise ConfigError(f"{key}.values: expected a non-empty list (or a mapping label -> overrides)")
        for i, v in enumerate(self.values):
            if not (v is None or isinstance(v, (str, int, float, bool))):
                raise ConfigError(f"{key}.values[{i}]: choices must be scalars, got {v!r}; use a labelled "
                                  "mapping (label: {key: value}) for structured values")

    def _check_range(self, key: str) -> None:
        as_int = self.type == "int"
        grid = None
        if self.values is not None:
            if isinstance(self.values, dict) or not self.values:
                raise ConfigError(f"{key}.values: expected a non-empty list of grid points")
            conv = _integral if as_int else _number
            grid = tuple(conv(v, f"{key}.values[{i}]") for i, v in enumerate(self.values))
        low = self.low if self.low is not None else (min(grid) if grid else None)
        high = self.high if self.high is not None else (max(grid) if grid else None)
        if low is None or high is None:
            raise ConfigError(f"{key}.{'low' if low is None else 'high'}: required for a {self.type} parameter")
        if as_int:
            low, high = _integral(low, f"{key}.low"), _integral(high, f"{key}.high")
        if not low <= high:
            raise ConfigError(f"{key}: low ({low}) must be <= high ({high})")
        log = self.type == "loguniform" or self.log
        if log and low <= 0:
            raise ConfigError(f"{key}.low: must be > 0 on a log scale, got {low}")
        _minimum(self.step, f"{key}.step", 1)
        if self.step != 1 and not as_int:
            raise ConfigError(f"{key}.step: only int parameters take a step")
        if grid and any(not low <= g <= high for g in grid):
            raise ConfigError(f"{key}.values: grid points must lie in [{low}, {high}]")
        for name, value in (("values", grid), ("low", low), ("high", high), ("log", log)):
            object.__setattr__(self, name, value)

    @property
    def bundles(self) -> dict[str, dict[str, Any]] | None:
        """For a bundle choice, label -> {dotted key: value}; else None."""
        return self.values if isinstance(self.values, dict) else None

    def choices(self) -> list[Any]:
        """The choices of a ``choice`` parameter (bundle labels for a bundle)."""
        return list(self.values or ())

    def grid_values(self) -> list[Any]:
        """The points this dimension takes under the grid sampler."""
        if self.values is not None:
            return list(self.values)
        if self.type == "int":
            low, high = int(self.low), int(self.high)
            count = (high - low) // self.step + 1
            if count > MAX_GRID_POINTS:  # a list of them would fill the memory (range 0 to 2**63)
                raise SweepError(f"space.{self.name}: the grid sampler would try {count} values of {low}..{high}, "
                                 f"more than {MAX_GRID_POINTS}; give explicit 'values' or a larger 'step'")
            return list(range(low, high + 1, self.step))
        raise SweepError(f"space.{self.name}: the grid sampler needs explicit 'values' for a {self.type} parameter")

    def overrides(self, value: Any) -> dict[str, Any]:
        """The dotted config values this parameter sets when it takes ``value``."""
        if self.bundles is not None:
            return dict(self.bundles[value])
        return {self.name: value}

    def candidates(self) -> list[Any]:
        """Representative values used to validate the parameter against the config schema."""
        if self.values is not None:
            return list(self.values)
        return [self.low, self.high]

    def fingerprint(self) -> list[Any]:
        """What identifies the dimension when a study is resumed (labels and bundles kept apart)."""
        values = None if self.values is None else list(self.values)
        return [self.name, self.type, _jsonable(values), _jsonable(self.bundles), self.low, self.high, self.step,
                self.log]


@dataclass(frozen=True)
class SamplerSection:
    """``sampler``: the Optuna sampler (``grid``, ``random`` or ``tpe``) and its seed."""

    type: str = "tpe"
    seed: int = 0

    def __post_init__(self) -> None:
        _choice(self.type, "sampler", SAMPLERS)


@dataclass(frozen=True)
class Objective:
    """``objective``: the per-epoch metric a trial is judged by.

    Attributes:
        metric: a per-epoch key of ``metrics.jsonl``; None: the base config's task's validation metric.
        direction: ``minimize`` or ``maximize``.
        reduce: ``best`` (best epoch) or ``last`` (last epoch) value of the metric per run.
    """

    metric: str | None = None
    direction: str = "minimize"
    reduce: str = "best"

    def __post_init__(self) -> None:
        _choice(self.direction, "objective.direction", DIRECTIONS)
        _choice(self.reduce, "objective.reduce", REDUCTIONS)

    def mode(self) -> str:
        """``min``, ``max`` or ``last``: how one run's epoch values reduce to its objective value."""
        if self.reduce == "last":
            return "last"
        return "min" if self.direction == "minimize" else "max"


@dataclass(frozen=True)
class PrunerSection:
    """``pruner``: ``none``, or Optuna's median pruner over the per-epoch objective values.

    Attributes:
        type: ``none`` or ``median``.
        startup_trials: finished trials before pruning starts.
        warmup_epochs: epochs a trial runs before it can be pruned.
    """

    type: str = "none"
    startup_trials: int = 2
    warmup_epochs: int = 1

    def __post_init__(self) -> None:
        _choice(self.type, "pruner.type", PRUNERS)
        _minimum(self.startup_trials, "pruner.startup_trials", 0)
        _minimum(self.warmup_epochs, "pruner.warmup_epochs", 0)


@dataclass(frozen=True)
class SweepFile:
    """The top level of a sweep file as written (shorthands expanded, nothing resolved yet)."""

    name: str | None = None
    base: str | None = None
    overrides: dict[str, Any] | tuple[str, ...] | None = None
    space: dict[str, Any] | None = None
    sampler: SamplerSection = field(default_factory=SamplerSection)
    objective: Objective = field(default_factory=Objective)
    trials: int | None = None
    seeds: tuple[int, ...] | None = None
    pruner: PrunerSection = field(default_factory=PrunerSection)

    def __post_init__(self) -> None:
        if self.name is not None and not NAME_RE.match(self.name):
            raise ConfigError(f"name: expected letters, digits, '.', '_' or '-', got {self.name!r}")
        if self.base is None:
            raise ConfigError("base: required: the base experiment config file, relative to the sweep file")
        if not self.space:
            raise ConfigError("space: needs at least one parameter")
        if self.trials is not None:
            _minimum(self.trials, "trials", 1)
        if self.seeds is not None:
            if not self.seeds:
                raise ConfigError(f"seeds: expected a non-empty list of integers, got {list(self.seeds)}")
            if len(set(self.seeds)) != len(self.seeds):
                raise ConfigError(f"seeds: repeated seed in {list(self.seeds)}")


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep file, resolved against its base config.

    Attributes:
        path: the sweep file.
        name: study name.
        base: the base experiment config file.
        overrides: dotted key -> value applied to the base (then the search parameters, then the seed).
        space: the search dimensions.
        sampler: ``grid``, ``random`` or ``tpe``.
        sampler_seed: seed of the sampler.
        objective: the objective, its metric resolved.
        trials: trial budget (None: the grid size).
        seeds: seeds every trial trains with.
        pruner: the pruner section.
    """

    path: Path
    name: str
    base: Path
    overrides: dict[str, Any]
    space: tuple[SearchParam, ...]
    sampler: str = "tpe"
    sampler_seed: int = 0
    objective: Objective = field(default_factory=Objective)
    trials: int | None = None
    seeds: tuple[int, ...] = (0,)
    pruner: PrunerSection = field(default_factory=PrunerSection)

    @property
    def metric(self) -> str:
        """The objective metric (a per-epoch key of ``metrics.jsonl``)."""
        return self.objective.metric or ""

    @property
    def direction(self) -> str:
        """``minimize`` or ``maximize``."""
        return self.objective.direction

    @property
    def reduce(self) -> str:
        """``best`` or ``last``."""
        return self.objective.reduce

    def mode(self) -> str:
        """``min``, ``max`` or ``last``: how one run's epoch values reduce to its objective value."""
        return self.objective.mode()

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

    def fingerprint(self) -> dict[str, Any]:
        """What must not change when a study is resumed: the space and the objective."""
        return {"space": [p.fingerprint() for p in self.space], "metric": self.metric, "direction": self.direction,
                "reduce": self.reduce, "seeds": list(self.seeds)}


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str)) if x is not None else None
