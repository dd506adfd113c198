"""Fixtures writing small data folders in the real text formats (no real data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def write_expmap_file(path: Path, num_frames: int, num_values: int, seed: int = 0) -> np.ndarray:
    """Write ``num_frames`` lines of ``num_values`` comma-separated floats (small random exp-maps); return them."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.3, size=(num_frames, num_values))
    values[:, :3] = rng.normal(0.0, 100.0, size=(num_frames, 3))  # global translation, ignored by FK
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(f"{v:.7f}" for v in row) for row in values) + "\n")
    return values


@pytest.fixture
def expmap_writer():
    """The :func:`write_expmap_file` helper, for tests that write their own files."""
    return write_expmap_file


@pytest.fixture
def h36m_dir(tmp_path: Path) -> Path:
    """``<tmp>/h3.6m/dataset/S<k>/<action>_<sub>.txt`` for walking and eating of S1, S11 (S11 eating_1 absent)."""
    root = tmp_path / "h3.6m" / "dataset"
    seed = 0
    for subject in ("S1", "S11"):
        for action in ("walking", "eating"):
            for sub in (1, 2):
                if (subject, action, sub) == ("S11", "eating", 1):
                    continue
                seed += 1
                write_expmap_file(root / subject / f"{action}_{sub}.txt", 40 + 2 * seed, 99, seed)
    return tmp_path


@pytest.fixture
def cmu_dir(tmp_path: Path) -> Path:
    """``<tmp>/cmu/train/<action>/<action>_<n>.txt`` with gaps in the numbering."""
    root = tmp_path / "cmu" / "train"
    for action, numbers in (("walking", (1, 2, 5)), ("jumping", (1,))):
        for n in numbers:
            write_expmap_file(root / action / f"{action}_{n}.txt", 30 + n, 117, n)
    return tmp_path
