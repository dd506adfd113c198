"""What every benchmark row records about the machine: the device's name and the code's git commit.

Both are looked up once per process (``/proc/cpuinfo`` and ``git`` do not change during a sweep).
"""

from __future__ import annotations

import functools
import platform

import torch

from crisscross.runtime import git_commit

__all__ = ["cached_git_commit", "device_name"]


@functools.cache
def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The GPU name on CUDA, else the CPU model name from ``/proc/cpuinfo``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model_name()


@functools.cache
def cached_git_commit() -> str | None:
    """The commit of the working tree (None outside a git checkout), asked of git once per process."""
    return git_commit()
