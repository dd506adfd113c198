"""Locate the real data (``$CRISSCROSS_DATA`` or ``../shared/datasets`` next to the repository) or skip.

The archives are unpacked once into the preprocessing cache (``$CRISSCROSS_CACHE`` or ``~/.cache/crisscross``,
never the repository) by :func:`crisscross.data.find_data_dir`; parsed positions are cached there too, so after the
first session these tests only re-hash the files.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crisscross.data.cache import resolve_cache_dir
from crisscross.data.datasets import find_data_dir
from crisscross.data.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]


def _candidates() -> list[Path]:
    env = os.environ.get("CRISSCROSS_DATA")
    return [Path(env)] if env else [REPO_ROOT.parent / "shared" / "datasets"]


def _locate(name: str, cache_dir: Path) -> Path:
    for candidate in _candidates():
        if candidate.exists():
            try:
                return find_data_dir(name, candidate, cache_dir=cache_dir)
            except DataError:
                continue
    pytest.skip(f"real {name} data not found (set CRISSCROSS_DATA or provide ../shared/datasets)")


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """The preprocessing cache shared by the real-data tests."""
    return resolve_cache_dir()


@pytest.fixture(scope="session")
def data_root(cache_dir: Path):
    """``data_root(name)``: the folder holding dataset ``name`` (the test skips when it is absent)."""
    return lambda name: _locate(name, cache_dir)


@pytest.fixture(scope="session")
def h36m_root(cache_dir: Path) -> Path:
    """Folder with the Human3.6M exp-map data (unpacked once if only the archive is there)."""
    return _locate("h36m", cache_dir)


@pytest.fixture(scope="session")
def cmu_root(cache_dir: Path) -> Path:
    """Folder with the CMU-Mocap exp-map data (unpacked once if only the archive is there)."""
    return _locate("cmu", cache_dir)


@pytest.fixture(scope="session")
def h36m_val(h36m_root: Path, cache_dir: Path):
    """S11 at 25 fps."""
    from crisscross.data.datasets import load_motion

    return load_motion("h36m", "val", data_dir=h36m_root, cache_dir=cache_dir)
