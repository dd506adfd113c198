"""Run folders as data: find them, summarise them, filter, sort and compare their configurations.

A run folder is what :func:`crisscross.training.fit` writes; its layout is defined in
:mod:`crisscross.runs.folders`. Everything here only reads files; the
``crisscross runs`` command prints what these functions return. Runs that never finished are listed too:
``status.json`` says ``failed`` or ``interrupted``, and a run still marked ``running`` that is not running is
reported as ``crashed``. A killed process (SIGKILL, out of memory, a lost machine) cannot update its
``status.json``, which then says ``running`` forever, so :func:`running_status` decides:

- the run's recorded host is this machine (or none is recorded): its recorded pid decides; a missing, exited,
  zombie or reused pid means crashed;
- it ran on another machine, whose processes cannot be seen from here: it is crashed once nothing in its
  folder (``metrics.jsonl``, ``status.json``, ``checkpoints/last.pt``) was written for :data:`STALE_AFTER_S`.
  A live run writes ``metrics.jsonl`` every ``train.log_every_steps`` steps and ``last.pt`` every minute of
  training, so only a validation pass longer than that would be misread.
"""

from __future__ import annotations

import fnmatch
import json
import math
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from crisscross.runs.folders import (
    CONFIG_FILE,
    ENV_FILE,
    EVAL_FILE,
    METRICS_FILE,
    STATUS_FILE,
    checkpoint_path,
    process_alive,
    read_epoch_rows,
    read_json_or_none,
)
from crisscross.tasks.base import Task
from crisscross.tasks.registry import DEFAULT_TASK, get_task

__all__ = [
    "STALE_AFTER_S",
    "SUMMARY_FIELDS",
    "RunSummary",
    "best_value",
    "config_diff",
    "filter_runs",
    "flatten_config",
    "load_run_summaries",
    "load_run_summary",
    "running_status",
    "sort_runs",
]

# A run marked running on another machine is crashed once its folder saw no write for this long (seconds).
STALE_AFTER_S = 3600.0


@dataclass
class RunSummary:
    """What one run folder says about itself (missing files leave fields at None).

    Attributes:
        path: the run folder.
        status: ``completed``, ``running``, ``failed``, ``interrupted``, ``pruned``, ``crashed`` (marked
            running but its process is gone, or silent for :data:`STALE_AFTER_S` on another machine; see
            :func:`running_status`) or ``unknown`` (no status.json).
        status_detail: why a run marked running is shown as running or crashed (process, host, last write).
        model: registry model name.
        dataset: dataset name.
        parameters: trainable parameter count (``env.json``).
        epochs: epochs completed.
        epochs_total: epochs the config asked for.
        steps: optimizer updates done.
        metric: name of the validation metric the run selects checkpoints by (``val/<eval.select_metric>``, the
            task's own when the config leaves it unset).
        best: best (lowest) value of ``metric`` over the logged epochs.
        best_epoch: epoch of ``best``.
        train_time_s: training wall-clock time.
        epoch_time_s: mean seconds per training epoch.
        peak_memory_mb: highest ``memory/peak_mb`` logged (GPU allocated on CUDA, process RSS on CPU).
        device: device string from ``env.json``.
        started_at: ISO timestamp from ``status.json``.
        error: the error recorded for a failed run.
        config: the resolved config as nested values.
        eval: ``eval.json`` contents, when the run completed.
    """

    path: Path
    status: str = "unknown"
    status_detail: str | None = None
    model: str | None = None
    dataset: str | None = None
    parameters: int | None = None
    epochs: int | None = None
    epochs_total: int | None = None
    steps: int | None = None
    metric: str | None = None
    best: float | None = None
    best_epoch: int | None = None
    train_time_s: float | None = None
    epoch_time_s: float | None = None
    peak_memory_mb: float | None = None
    device: str | None = None
    started_at: str | None = None
    error: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        """``<parent>/<folder>``, the usual ``<run name>/<timestamp>`` pair."""
        return f"{self.path.parent.name}/{self.path.name}"

    def field_value(self, key: str) -> Any:
        """A summary field (``status``, ``model``, ...) or a dotted config key (``optim.lr``)."""
        if key in SUMMARY_FIELDS:
            return getattr(self, key) if key != "name" else self.name
        flat = flatten_config(self.config)
        if key in flat:
            return flat[key]
        raise KeyError(key)


SUMMARY_FIELDS = ("name", "status", "model", "dataset", "parameters", "epochs", "epochs_total", "steps", "metric",
                  "best", "best_epoch", "train_time_s", "epoch_time_s", "peak_memory_mb", "device", "started_at")


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def _task_of(config: Mapping[str, Any]) -> Task:
    """The task a run's config names (the default task for an older config or an unknown name)."""
    try:
        return get_task(config.get("task") or DEFAULT_TASK)
    except ValueError:
        return get_task(DEFAULT_TASK)


def best_value(rows: Sequence[Mapping[str, Any]], metric: str, mode: str = "min") -> tuple[float | None, int | None]:
    """Best finite value of ``metric`` over epoch rows and the epoch it was reached.

    Args:
        rows: per-epoch rows (see :func:`read_epoch_rows`).
        metric: a logged key such as ``val/mpjpe22_avg_mm``.
        mode: ``min``, ``max`` or ``last``.

    Returns:
        ``(value, epoch)``, or ``(None, None)`` when no row has a finite value.
    """
    points = [(_finite(r.get(metric)), r.get("epoch")) for r in rows]
    points = [(v, e) for v, e in points if v is not None]
    if not points:
        return None, None
    if mode == "last":
        return points[-1]
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be min, max or last, got {mode!r}")
    return (min if mode == "min" else max)(points, key=lambda p: p[0])


def load_run_summary(run_dir: str | Path) -> RunSummary:
    """Summarise one run folder from its files (never raises on a partial or crashed run).

    Args:
        run_dir: the run folder.

    Returns:
        The summary; fields whose source file is missing stay None.

    Raises:
        FileNotFoundError: ``run_dir`` is not a folder.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a run folder")
    s = RunSummary(path=path)
    try:
        s.config = yaml.safe_load((path / CONFIG_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError):
        s.config = {}
    cfg = s.config
    s.model = (cfg.get("model") or {}).get("name")
    s.dataset = (cfg.get("data") or {}).get("dataset")
    s.epochs_total = (cfg.get("train") or {}).get("epochs")
    task = _task_of(cfg)
    select = (cfg.get("eval") or {}).get("select_metric")
    # the task's own selection figure is logged under its own name; another configured path as val/<path>
    s.metric = task.validation_metric if select in (None, task.select_metric) else f"val/{select}"

    env = read_json_or_none(path / ENV_FILE) or {}
    s.parameters = env.get("parameters")
    s.device = env.get("device")

    status = read_json_or_none(path / STATUS_FILE) or {}
    s.status = status.get("status", "unknown")
    s.started_at = status.get("started_at")
    s.error = status.get("error")
    s.steps = status.get("step")
    s.epochs = status.get("epoch")
    s.train_time_s = status.get("train_time_s")
    if s.status == "running":
        s.status, s.status_detail = running_status(path, status)

    rows = read_epoch_rows(path)
    if rows:
        s.epochs = max(s.epochs or 0, int(rows[-1]["epoch"]))
        s.train_time_s = s.train_time_s if s.train_time_s is not None else _finite(rows[-1].get("time/wall_s"))
        times = [t for t in (_finite(r.get("time/epoch_s")) for r in rows) if t is not None]
        s.epoch_time_s = sum(times) / len(times) if times else None
        mems = [m for m in (_finite(r.get("memory/peak_mb")) for r in rows) if m is not None]
        s.peak_memory_mb = max(mems) if mems else None
        s.best, s.best_epoch = best_value(rows, s.metric)
        if s.best is None:  # an older select metric name: fall back to the task's always-logged figure
            s.best, s.best_epoch = best_value(rows, task.validation_metric)
            if s.best is not None:
                s.metric = task.validation_metric
    s.eval = read_json_or_none(path / EVAL_FILE)
    return s


def load_run_summaries(run_dirs: Iterable[str | Path]) -> list[RunSummary]:
    """Summaries of the run folders that still exist once read, in order.

    A folder can be deleted (a user's ``rm -rf``, a sweep replacing a run) between being found and being read, or
    while its files are read; such a run is left out rather than listed half-read or failing the whole listing.

    Args:
        run_dirs: run folders, e.g. from :func:`~crisscross.runs.folders.find_runs`.

    Returns:
        One summary per folder that exists after its files were read.
    """
    summaries = []
    for run_dir in run_dirs:
        try:
            summary = load_run_summary(run_dir)
        except FileNotFoundError:
            continue
        if summary.path.is_dir():
            summaries.append(summary)
    return summaries


def _last_write(run_dir: Path, status: Mapping[str, Any]) -> float | None:
    """The newest write into the run folder a live run makes (POSIX time), from file times and ``updated_at``."""
    times = []
    for f in (run_dir / METRICS_FILE, run_dir / STATUS_FILE, checkpoint_path(run_dir, "last")):
        try:
            times.append(f.stat().st_mtime)
        except OSError:
            continue
    try:
        times.append(datetime.fromisoformat(str(status.get("updated_at"))).timestamp())
    except ValueError:
        pass
    return max(times) if times else None


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def running_status(run_dir: str | Path, status: Mapping[str, Any], now: float | None = None) -> tuple[str, str]:
    """Whether a run whose ``status.json`` says ``running`` still runs: ``("running" | "crashed", why)``.

    Args:
        run_dir: the run folder.
        status: its ``status.json`` contents (``pid``, ``host``, ``updated_at``).
        now: the current POSIX time (default: the clock).

    Returns:
        ``("running", detail)`` or ``("crashed", detail)``: on the recorded host (or when none is recorded) the
        recorded process decides; on another host a folder without writes for :data:`STALE_AFTER_S` is crashed.
    """
    now = time.time() if now is None else now
    last = _last_write(Path(run_dir), status)
    age = f"last write {_ago(max(0.0, now - last))} ago" if last is not None else "no write recorded"
    host = status.get("host")
    if host in (None, socket.gethostname()):
        pid = status.get("pid") if isinstance(status.get("pid"), int) else -1
        if not process_alive(pid, status.get("updated_at")):
            return "crashed", f"process {pid} is gone; {age}"
        return "running", f"process {pid} alive; {age}"
    if last is None or now - last > STALE_AFTER_S:
        return "crashed", f"ran on {host}, {age} (silent for over {_ago(STALE_AFTER_S)})"
    return "running", f"on {host}; {age}"


def flatten_config(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config values as ``{"optim.lr": 0.001, ...}`` (lists stay values, empty sections vanish).

    Args:
        values: nested mapping, e.g. a run's ``config.yaml``.
        prefix: prepended to every key.

    Returns:
        The flat mapping of dotted keys.
    """
    flat: dict[str, Any] = {}
    for k, v in values.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):  # an empty section (e.g. model.args: {}) contributes no keys
            flat.update(flatten_config(v, key + "."))
        else:
            flat[key] = v
    return flat


_MISSING = object()


def config_diff(configs: Mapping[str, Mapping[str, Any]],
                ignore: Iterable[str] = ("track.name", "track.root")) -> dict[str, dict[str, Any]]:
    """Dotted config keys whose values differ between labelled configs.

    Args:
        configs: label -> nested config values.
        ignore: dotted keys (or fnmatch patterns) to leave out.

    Returns:
        ``{dotted key: {label: value or None when absent}}`` for every key that differs, in sorted key order.
    """
    flats = {label: flatten_config(cfg) for label, cfg in configs.items()}
    keys = sorted(set().union(*[f.keys() for f in flats.values()])) if flats else []
    patterns = tuple(ignore)
    diff: dict[str, dict[str, Any]] = {}
    for key in keys:
        if any(fnmatch.fnmatchcase(key, p) for p in patterns):
            continue
        vals = {label: flat.get(key, _MISSING) for label, flat in flats.items()}
        distinct = {json.dumps(v, sort_keys=True, default=str) if v is not _MISSING else "\0" for v in vals.values()}
        if len(distinct) > 1:
            diff[key] = {label: (None if v is _MISSING else v) for label, v in vals.items()}
    return diff


def _matches(actual: Any, wanted: str) -> bool:
    if actual is None:
        return wanted.lower() in ("none", "null", "")
    if isinstance(actual, str):
        return fnmatch.fnmatchcase(actual, wanted)
    try:
        parsed = yaml.safe_load(wanted)
    except yaml.YAMLError:
        parsed = wanted
    if isinstance(actual, bool) or isinstance(parsed, bool):
        return actual is parsed or str(actual).lower() == wanted.lower()
    if isinstance(actual, (int, float)):
        try:
            return math.isclose(float(actual), float(parsed), rel_tol=1e-9, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    if isinstance(actual, (list, tuple)):
        return list(actual) == parsed if isinstance(parsed, list) else ",".join(map(str, actual)) == wanted
    return str(actual) == wanted


def filter_runs(runs: Sequence[RunSummary], filters: Iterable[str] = (), status: str | None = None) -> list[RunSummary]:
    """Keep runs matching every ``key=value`` filter and, when given, the status.

    Args:
        runs: summaries to filter.
        filters: ``key=value`` texts; ``key`` is a summary field (``model``, ``dataset``, ``status``, ...) or a
            dotted config key (``optim.name``, ``model.args.dim``); string values match as shell patterns
            (``model=stc*``), numbers numerically.
        status: keep only this status (``completed``, ``failed``, ``crashed``, ...).

    Returns:
        The matching runs, in the given order.

    Raises:
        ValueError: a filter is not ``key=value``.
    """
    parsed = []
    for text in filters:
        if "=" not in text:
            raise ValueError(f"--filter {text!r}: expected KEY=VALUE, e.g. optim.name=adam")
        key, value = text.split("=", 1)
        parsed.append((key.strip(), value.strip()))
    kept = []
    for run in runs:
        if status is not None and run.status != status:
            continue
        ok = True
        for key, value in parsed:
            try:
                actual = run.field_value(key)
            except KeyError:
                ok = False
                break
            if not _matches(actual, value):
                ok = False
                break
        if ok:
            kept.append(run)
    return kept


def _sort_value(run: RunSummary, key: str) -> Any:
    if key in SUMMARY_FIELDS:
        return run.field_value(key)
    if "/" in key:  # a logged metric: its best (lowest) value over epochs
        return best_value(read_epoch_rows(run.path), key)[0]
    node: Any = run.eval or {}
    for part in key.split("."):  # an eval.json path such as mpjpe22_mm.avg
        node = node.get(part) if isinstance(node, dict) else None
    if node is not None:
        return node
    try:
        return run.field_value(key)
    except KeyError:
        return None


def sort_runs(runs: Sequence[RunSummary], key: str) -> list[RunSummary]:
    """Sort runs by a summary field, a logged metric (best value), an ``eval.json`` path or a config key.

    Args:
        runs: summaries to sort.
        key: e.g. ``best``, ``train_time_s``, ``val/mpjpe22_avg_mm``, ``mpjpe22_mm.avg``, ``optim.lr``;
            a leading ``-`` sorts descending. Runs without a value go last.

    Returns:
        A new sorted list.
    """
    descending = key.startswith("-")
    key = key.lstrip("-")
    with_value, without = [], []
    for run in runs:
        v = _sort_value(run, key)
        (without if v is None else with_value).append((v, run))
    try:
        with_value.sort(key=lambda p: p[0], reverse=descending)
    except TypeError:
        with_value.sort(key=lambda p: str(p[0]), reverse=descending)
    return [r for _, r in with_value] + [r for _, r in without]
