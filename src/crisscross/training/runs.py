"""Run folders: one new folder per run, never overwritten, holding everything about the run.

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

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["create_run_dir", "write_json", "read_json", "update_status", "is_run_dir"]


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


def update_status(run_dir: str | Path, status: str, **extra: Any) -> None:
    """Record the run's status (running, completed, failed, interrupted) with a UTC timestamp."""
    path = Path(run_dir) / "status.json"
    data = read_json(path) if path.exists() else {}
    now = datetime.now(timezone.utc).isoformat()
    data.setdefault("started_at", now)
    data.update(status=status, updated_at=now, pid=os.getpid(), host=socket.gethostname(), **extra)
    if status != "running":
        data["ended_at"] = now
    write_json(path, data)


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` looks like a crisscross run folder."""
    path = Path(path)
    return (path / "config.yaml").is_file() and ((path / "status.json").is_file() or (path / "env.json").is_file())


