"""Run folders: one new folder per run, never overwritten, holding everything about the run.

This module is the one place that knows the layout; every other module names the files through its constants.

Layout::

    runs/<name>/<YYYYmmdd-HHMMSS>-<6 hex>/
        config.yaml      resolved config
        env.json         versions, device, git commit
        status.json      running / completed / failed / interrupted, with timestamps
        metrics.jsonl    one JSON object per logged step and per epoch
        checkpoints/     best.pt, last.pt (atomic)
        eval.json        final evaluation
        tb/              TensorBoard event files
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "ENV_FILE",
    "EVAL_FILE",
    "METRICS_FILE",
    "STATUS_FILE",
    "TENSORBOARD_DIR",
    "TRACKERS_FILE",
    "checkpoint_path",
    "create_run_dir",
    "find_runs",
    "is_run_dir",
    "process_alive",
    "read_epoch_rows",
    "read_json",
    "read_json_or_none",
    "update_status",
    "write_json",
]

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
EVAL_FILE = "eval.json"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tb"
TRACKERS_FILE = "trackers.json"  # the W&B / MLflow run ids a resumed run re-attaches to


def create_run_dir(root: str | Path, name: str) -> Path:
    """Create and return a fresh run folder ``root/name/<timestamp>-<random>``; never reuses one."""
    parent = Path(root) / name
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = parent / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir(exist_ok=False)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder under {parent}")


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temporary file + rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def read_json_or_none(path: str | Path) -> Any:
    """Read a JSON file; ``None`` when it is missing or torn (a killed process may leave either)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def checkpoint_path(run_dir: str | Path, name: str) -> Path:
    """``run_dir/checkpoints/<name>.pt`` (``name`` is ``best`` or ``last``)."""
    return Path(run_dir) / CHECKPOINTS_DIR / f"{name}.pt"


def update_status(run_dir: str | Path, status: str, **extra: Any) -> None:
    """Record the run's status (running, completed, failed, interrupted) with a UTC timestamp."""
    path = Path(run_dir) / STATUS_FILE
    data = read_json(path) if path.exists() else {}
    now = datetime.now(UTC).isoformat()
    data.setdefault("started_at", now)
    data.update(status=status, updated_at=now, pid=os.getpid(), host=socket.gethostname(), **extra)
    if status != "running":
        data["ended_at"] = now
    write_json(path, data)


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run folder: a ``config.yaml`` beside a status, environment or metrics file."""
    path = Path(path)
    return (path / CONFIG_FILE).is_file() and any((path / f).is_file() for f in (STATUS_FILE, ENV_FILE, METRICS_FILE))


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
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(root):
        here = Path(dirpath)
        if is_run_dir(here):
            found.append(here)
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


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
    path = Path(run_dir) / METRICS_FILE
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
