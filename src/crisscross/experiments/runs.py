"""Run folders as data: find them, summarise them, filter, sort and compare their configurations.

A run folder is what :func:`crisscross.training.loop.fit` writes (``config.yaml``, ``env.json``,
``status.json``, ``metrics.jsonl``, ``checkpoints/``, ``eval.json``). Everything here only reads files; the
``crisscross runs`` command prints what these functions return. Runs that never finished are listed too:
``status.json`` says ``failed`` or ``interrupted``, and a run still marked ``running`` whose process is gone
is reported as ``crashed`` (checked through the recorded pid on this machine).
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

__all__ = [
    "RunSummary",
    "find_runs",
    "load_run_summary",
    "flatten_config",
    "config_diff",
    "read_epoch_rows",
    "best_value",
    "filter_runs",
    "sort_runs",
    "process_alive",
    "SUMMARY_FIELDS",
]

@dataclass
class RunSummary:
    """What one run folder says about itself (missing files leave fields at None).

    Attributes:
        path: the run folder.
        status: ``completed``, ``running``, ``failed``, ``interrupted``, ``pruned``, ``crashed`` (marked
            running but its process is gone) or ``unknown`` (no status.json).
        model: registry model name.
        dataset: dataset name.
        parameters: trainable parameter count (``env.json``).
        epochs: epochs completed.
        epochs_total: epochs the config asked for.
        steps: optimizer updates done.
        metric: name of the validation metric the run selects checkpoints by (``val/<eval.select_metric>``).
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


def _is_run_dir(path: Path) -> bool:
    return (path / "config.yaml").is_file() and any((path / f).is_file() for f in ("status.json", "env.json",
                                                                                 "metrics.jsonl"))


def find_runs(root: str | Path) -> list[Path]:
    """Run folders under ``root`` (or ``root`` itself), sorted by path; does not descend into run folders.

    Args:
        root: a folder of runs such as ``runs/``, a sweep's output folder, or one run folder.

    Returns:
        The run folders found (empty when ``root`` holds none).

    Raises:
        FileNotFoundError: ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if _is_run_dir(root):
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if _is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def process_alive(pid: int, started_at: str | None = None) -> bool:
    """Whether process ``pid`` runs on this machine (zombies count as dead).

    Args:
        pid: the process id recorded in ``status.json``.
        started_at: ISO time the run was (re)started; on Linux a process with this pid that started more than a
            minute later is a reused pid, not the run.

    Returns:
        True when the process exists and is not a zombie.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] in ("Z", "X"):
                return False
            if started_at:
                from datetime import datetime

                boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                            if line.startswith("btime"))
                proc_start = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
                if proc_start > datetime.fromisoformat(started_at).timestamp() + 60:
                    return False
        except (OSError, IndexError, ValueError, StopIteration):
            pass
    return True


def read_epoch_rows(run_dir: str | Path) -> list[dict[str, Any]]:
    """The per-epoch rows of ``metrics.jsonl`` (rows with an ``epoch`` key), one per epoch.

    A resumed run can log an epoch twice (killed between logging and checkpointing); the last row wins.
    A torn last line from a killed process is ignored.

    Args:
        run_dir: the run folder.

    Returns:
        Rows sorted by epoch.
    """
    path = Path(run_dir) / "metrics.jsonl"
    by_epoch: dict[int, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "epoch" in row:
                by_epoch[int(row["epoch"])] = row
    return [by_epoch[e] for e in sorted(by_epoch)]


def _finite(v: Any) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


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
        s.config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        s.config = {}
    cfg = s.config
    s.model = (cfg.get("model") or {}).get("name")
    s.dataset = (cfg.get("data") or {}).get("dataset")
    s.epochs_total = (cfg.get("train") or {}).get("epochs")
    select = (cfg.get("eval") or {}).get("select_metric") or "mpjpe22_mm.mean.avg"
    s.metric = f"val/{select}"

    env = _read_json(path / "env.json") or {}
    s.parameters = env.get("parameters")
    s.device = env.get("device")

    status = _read_json(path / "status.json") or {}
    s.status = status.get("status", "unknown")
    s.started_at = status.get("started_at")
    s.error = status.get("error")
    s.steps = status.get("step")
    s.epochs = status.get("epoch")
    s.train_time_s = status.get("train_time_s")
    if s.status == "running" and not process_alive(int(status.get("pid", -1)), status.get("updated_at")):
        s.status = "crashed"

    rows = read_epoch_rows(path)
    if rows:
        s.epochs = max(s.epochs or 0, int(rows[-1]["epoch"]))
        s.train_time_s = s.train_time_s if s.train_time_s is not None else _finite(rows[-1].get("time/wall_s"))
        times = [t for t in (_finite(r.get("time/epoch_s")) for r in rows) if t is not None]
        s.epoch_time_s = sum(times) / len(times) if times else None
        mems = [m for m in (_finite(r.get("memory/peak_mb")) for r in rows) if m is not None]
        s.peak_memory_mb = max(mems) if mems else None
        s.best, s.best_epoch = best_value(rows, s.metric)
        if s.best is None:  # an older select metric name: fall back to the always-logged average
            s.best, s.best_epoch = best_value(rows, "val/mpjpe22_avg_mm")
            if s.best is not None:
                s.metric = "val/mpjpe22_avg_mm"
    s.eval = _read_json(path / "eval.json")
    return s


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
