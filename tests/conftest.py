"""Session-wide guard: the test suite writes only under temporary folders, never into the working tree.

At the start of a session the working tree's status (``git status --porcelain --ignored``) is recorded; at the
end any new entry (a ``runs/`` folder left by a command run without ``--out``, a file beside the committed
checkpoints) fails the session with its name. Caches of the tools themselves are allowed. Outside a git checkout
the guard is off.
"""

from __future__ import annotations

import subprocess
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
_TOOL_CACHES = ("__pycache__", ".pytest_cache", ".ruff_cache", ".import_linter_cache", ".hypothesis", ".egg-info",
                ".venv", ".gpu/")


def _tree_entries() -> set[str] | None:
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return {line for line in out.splitlines() if not any(cache in line for cache in _TOOL_CACHES)}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _tree_entries()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.config.stash.get(_BEFORE, None)
    after = _tree_entries()
    if before is None or after is None:
        return
    new = sorted(after - before)
    if new:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = "the test session left files in the working tree: " + ", ".join(new)
        if reporter is not None:
            reporter.write_line(message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[set[str] | None]()


def _released_simlpe(seed: int = 0) -> OrderedDict:
    """A state dict with the key names and shapes of siMLPe's released file (48 blocks, 50 frames, 22 x 3
    channels; random values)."""
    blocks, frames, channels = 48, 50, 66
    gen = torch.Generator().manual_seed(seed)
    state = OrderedDict()
    for i in range(blocks):
        state[f"motion_transformer.transformer.{i}.fc0.fc.weight"] = torch.randn(frames, frames, generator=gen) * 0.02
        state[f"motion_transformer.transformer.{i}.fc0.fc.bias"] = torch.randn(frames, generator=gen) * 0.02
        state[f"motion_transformer.transformer.{i}.norm0.alpha"] = 1 + torch.randn(1, channels, 1, generator=gen) * 0.1
        state[f"motion_transformer.transformer.{i}.norm0.beta"] = torch.randn(1, channels, 1, generator=gen) * 0.01
    for name in ("motion_fc_in", "motion_fc_out"):
        state[f"{name}.weight"] = torch.randn(channels, channels, generator=gen) * 0.05
        state[f"{name}.bias"] = torch.randn(channels, generator=gen) * 0.01
    return state


@pytest.fixture
def released_simlpe() -> Callable[[int], OrderedDict]:
    """``released_simlpe(seed=0)``: a generated state dict laid out like siMLPe's released weights."""
    return _released_simlpe
