"""Process-level runtime helpers: the one seeding function, device selection, the CPU allocator setting, environment
capture and atomic writes.

Nothing here runs at import time; every function is called explicitly by the CLI or the engine.
"""

from __future__ import annotations

import ctypes
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

__all__ = ["atomic_write", "capture_environment", "configure_cpu_allocator", "distributed_info", "git_commit",
           "seed_everything", "select_device"]


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


# The C allocator's settings for tensor work on the CPU; see configure_cpu_allocator.
CPU_ALLOCATOR_ENV = "CRISSCROSS_CPU_ALLOCATOR"
CPU_ALLOCATOR_CHOICES = ("retain", "default")
_RETAIN_BYTES = 1 << 30  # freed blocks up to 1 GiB stay with the process (mallopt takes an int: keep below 2 GiB)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's <malloc.h>
# glibc's own ways to set what configure_cpu_allocator sets; a user who set one keeps it.
_GLIBC_MALLOC_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_GLIBC_MALLOC_TUNABLES = ("glibc.malloc.mmap_threshold", "glibc.malloc.trim_threshold", "glibc.malloc.top_pad",
                          "glibc.malloc.mmap_max")
_cpu_allocator: str | None = None  # what configure_cpu_allocator did in this process


def configure_cpu_allocator() -> str:
    """Let glibc's malloc keep freed tensor memory for reuse; returns what was done, in words (idempotent).

    Why: glibc serves every allocation above its mmap threshold with a fresh ``mmap`` and unmaps it when it is freed;
    the threshold adapts upwards only to 32 MiB, and the top of the heap is returned to the kernel beyond twice that.
    A training step at batch 256 allocates and frees activations of 18 to 36 MiB hundreds of times, so each one is
    page-faulted in anew (the kernel zeroes every page): an element-wise op on a 36 MiB fp32 tensor measured 10.5 ms
    with the faults against 1.4 ms without. Raising both thresholds to 1 GiB keeps that memory in the heap, as
    jemalloc or tcmalloc would (PyTorch's CPU tuning guide suggests preloading one). Nothing is done when
    ``CRISSCROSS_CPU_ALLOCATOR=default``, when the user set these thresholds through glibc's own variables
    (``MALLOC_MMAP_THRESHOLD_`` and its kin, or ``GLIBC_TUNABLES``) or preloaded another allocator, or when the C
    library is not glibc. Memory: the process keeps up to 1 GiB of freed memory for reuse; the peak does not grow
    (``benchmarks/bench_mfu.py`` prints each variant's peak resident memory).

    Raises:
        ValueError: ``CRISSCROSS_CPU_ALLOCATOR`` is neither ``retain`` nor ``default``.
    """
    global _cpu_allocator
    choice = os.environ.get(CPU_ALLOCATOR_ENV, "retain")
    if choice not in CPU_ALLOCATOR_CHOICES:
        raise ValueError(f"{CPU_ALLOCATOR_ENV}={choice!r}: expected one of {', '.join(CPU_ALLOCATOR_CHOICES)}")
    if _cpu_allocator is not None:
        return _cpu_allocator
    user_malloc = [k for k in _GLIBC_MALLOC_ENV if k in os.environ]
    if any(t in os.environ.get("GLIBC_TUNABLES", "") for t in _GLIBC_MALLOC_TUNABLES):
        user_malloc.append("GLIBC_TUNABLES")
    preload = os.environ.get("LD_PRELOAD", "")
    if choice == "default":
        state = f"default ({CPU_ALLOCATOR_ENV}=default)"
    elif user_malloc:
        state = f"default (the user's {', '.join(user_malloc)})"
    elif any(name in preload for name in ("jemalloc", "tcmalloc", "mimalloc")):
        state = "default (another allocator preloaded)"
    elif platform.libc_ver()[0] != "glibc":
        state = "default (not glibc)"
    else:
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _RETAIN_BYTES) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, _RETAIN_BYTES) == 1
        state = "retain (glibc mmap and trim thresholds 1 GiB)" if ok else "default (mallopt refused)"
    _cpu_allocator = state
    return state


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
        "cpu_allocator": _cpu_allocator or "default",
    }
    if device is not None:
        env["device"] = str(device)
        if device.type == "cuda":
            env["device_name"] = torch.cuda.get_device_name(device)
        else:
            env["device_name"] = platform.processor() or platform.machine()
    return env
