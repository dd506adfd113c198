"""Process-level runtime helpers: the one seeding function, device selection, environment capture and atomic writes.

Nothing here runs at import time; every function is called explicitly by the CLI or the engine.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from crisscross import __version__

__all__ = ["atomic_write", "capture_environment", "distributed_info", "git_commit", "seed_everything",
           "select_device"]


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Write ``path`` all at once or not at all: ``write(fh)`` fills a temporary file in the same folder, which is
    flushed to disk and renamed over ``path``; on any failure (a full disk, Ctrl-C) it is removed and an existing
    ``path`` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def seed_everything(seed: int, deterministic: bool = False, rank: int = 0) -> None:
    """Seed Python, NumPy and torch (seed + rank); optionally switch on deterministic algorithms.

    ``CUBLAS_WORKSPACE_CONFIG`` must be set before CUDA initialises for deterministic cuBLAS, so the
    deterministic branch sets it first (it is a no-op on CPU).
    """
    seed = int(seed) + int(rank)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; an explicit but unavailable device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"train.device={name!r} but CUDA is not available on this machine; use cpu or auto")
    return device


def git_commit(path: str | Path | None = None) -> str | None:
    """The current git commit of the source tree (with ``-dirty`` when modified), or None outside git."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def distributed_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from torchrun's environment; (0, 0, 1) when not distributed."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


def capture_environment(device: torch.device | None = None) -> dict[str, Any]:
    """Versions, device and commit, as recorded in every run folder and benchmark row."""
    env: dict[str, Any] = {
        "crisscross": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cpu_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        "argv": sys.argv,
    }
    if device is not None:
        env["device"] = str(device)
        if device.type == "cuda":
            env["device_name"] = torch.cuda.get_device_name(device)
        else:
            env["device_name"] = platform.processor() or platform.machine()
    return env
