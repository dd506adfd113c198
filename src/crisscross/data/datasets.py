"""The dataset entry points: find a dataset's data folder, check it, and load one split.

Each function looks the dataset up in the registry (:mod:`crisscross.data.registry`) and calls the entry's
callables, so a new dataset is one :func:`~crisscross.data.registry.register_dataset` call. Built-in entries,
registered here in this order:

* ``synthetic``: embedded procedural motion (``synthetic.py``), no folder needed;
* ``h36m``: Human3.6M exp-map files (``h36m.py``); ``cmu``: CMU-Mocap exp-map files (``cmu.py``);
* ``npz``: user recordings (``user.py``);
* the lifting datasets (``lifting_sources.py``);
* ``h36m-expmap17``: the Human3.6M exp-map files in the world frame at 50 Hz on DLow's 17 joints
  (``h36m_world17.py``), the forecasting data of the ``h36m-expmap17-*`` protocols.

:func:`find_data_dir` accepts the unpacked folder, or a folder holding the dataset's archives (e.g. the shared
``datasets`` folder): an archive is unpacked once into ``<cache>/datasets/<archive name>`` (never into the repository)
and reused while its bytes are unchanged (``archives.py``). Without ``data_dir`` it reads ``$CRISSCROSS_DATA`` at call
time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from crisscross.data.archives import find_archive, unpack_once
from crisscross.data.cache import ArrayCache
from crisscross.data.cmu import CMU_DATASET
from crisscross.data.errors import DataError
from crisscross.data.h36m import H36M_DATASET
from crisscross.data.h36m_world17 import H36M_EXPMAP17_DATASET
from crisscross.data.lifting_sources import LIFTING_DATASETS
from crisscross.data.motion import MotionSet
from crisscross.data.registry import (
    DATASETS,
    DataDirReport,
    DatasetEntry,
    DatasetInfo,
    get_dataset_info,
    register_dataset,
    unregister_dataset,
)
from crisscross.data.synthetic import SYNTHETIC_DATASET
from crisscross.data.user import NPZ_DATASET

__all__ = [
    "DATASETS",
    "DATA_ENV_VAR",
    "DataDirReport",
    "DatasetEntry",
    "DatasetInfo",
    "check_data_dir",
    "find_data_dir",
    "get_dataset_info",
    "load_motion",
    "register_dataset",
    "resolve_data_root",
    "unregister_dataset",
    "user_config_file",
]

DATA_ENV_VAR = "CRISSCROSS_DATA"

for _entry in (SYNTHETIC_DATASET, H36M_DATASET, CMU_DATASET, NPZ_DATASET, *LIFTING_DATASETS,
               H36M_EXPMAP17_DATASET):
    register_dataset(_entry)


def user_config_file() -> Path:
    """``$XDG_CONFIG_HOME/crisscross/config.yaml`` (default ``~/.config/crisscross/config.yaml``): per-user defaults."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "crisscross" / "config.yaml"


def _user_config_data_dir() -> tuple[str | None, str]:
    """``(data_dir or None, what was found)`` from the user config file's ``data_dir`` key."""
    path = user_config_file()
    if not path.is_file():
        return None, f"{path} (absent)"
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise DataError(f"{path}: cannot parse the user config ({str(err).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise DataError(f"{path}: the user config must be a mapping (e.g. 'data_dir: ~/data')")
    value = loaded.get("data_dir")
    if value is not None and not isinstance(value, str):
        raise DataError(f"{path}: data_dir must be a folder path, got {value!r}")
    return value or None, f"{path} ({'data_dir: ' + value if value else 'no data_dir key'})"


def resolve_data_root(data_dir: str | Path | None = None) -> tuple[Path | None, list[str]]:
    """The data folder by the one rule: ``data_dir`` (the command line or the config), else ``$CRISSCROSS_DATA``,
    else the user config file's ``data_dir``; with what was tried, for the error when none is set."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), [f"--data-dir {data_dir}"]
    tried = ["--data-dir (not given)"]
    env = os.environ.get(DATA_ENV_VAR)
    if env:
        return Path(env).expanduser(), [*tried, f"${DATA_ENV_VAR}={env}"]
    tried.append(f"${DATA_ENV_VAR} (not set)")
    value, found = _user_config_data_dir()
    tried.append(found)
    return (Path(value).expanduser() if value else None), tried


def find_data_dir(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """Resolve the folder a dataset is read from.

    Args:
        name: a registered dataset name.
        data_dir: the unpacked dataset folder, a folder holding its archive, or (``npz``) a file; ``None`` reads
            ``$CRISSCROSS_DATA``, then the user config file (:func:`resolve_data_root`).
        cache_dir: where archives are unpacked (see :func:`~crisscross.data.cache.resolve_cache_dir`).

    Returns:
        A folder in which the dataset's layout is found (or the ``npz`` file/folder).

    Raises:
        DataError: unknown dataset, nothing given, the path does not exist, or neither the layout nor an archive
            is found.
    """
    entry = get_dataset_info(name)
    folder, tried = resolve_data_root(data_dir)
    if folder is None:
        raise DataError(f"dataset {name!r} needs a data folder; tried {', '.join(tried)}: pass --data-dir DIR "
                        f"(data.data_dir), set {DATA_ENV_VAR} or put 'data_dir: DIR' in {user_config_file()}")
    if not folder.exists():
        raise DataError(f"{folder}: no such file or folder (data folder for dataset {name!r}, from {tried[-1]})")
    if entry.has_layout(folder):
        return folder
    archive = find_archive(folder, entry.archive_patterns)
    if archive is not None:
        unpacked = unpack_once(archive, cache_dir)
        if entry.has_layout(unpacked):
            return unpacked
        raise DataError(f"{archive}: archive does not contain a {name} dataset layout")
    raise DataError(f"{folder}: no {name} data found; expected {entry.expected_layout}")


def check_data_dir(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> DataDirReport:
    """Check a data folder: which files are present, absent or malformed (``file:line``), per split.

    Parsing goes through the preprocessing cache, so a check also warms it and re-checks are fast. Problems that
    prevent the check (unknown dataset, no folder found) are listed in ``report.errors``, never raised.

    Args:
        name: a registered dataset name (one without a data folder, e.g. ``synthetic``, is reported as embedded).
        data_dir: as for :func:`find_data_dir`.
        cache_dir: preprocessing cache folder.

    Returns:
        The report; ``report.summary()`` is the text for ``crisscross datasets --check``.
    """
    report = DataDirReport(dataset=name)
    try:
        entry = get_dataset_info(name)
        folder = find_data_dir(name, data_dir, cache_dir) if entry.needs_data_dir else None
    except DataError as err:
        report.errors.append(str(err))
        return report
    report.root = Path("<embedded>") if folder is None else entry.find_root(folder)
    entry.check(report, ArrayCache(cache_dir, namespace=entry.cache_namespace))
    return report


def load_motion(
    name: str,
    split: str = "train",
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    actions: Sequence[str] | None = None,
    use_cache: bool = True,
) -> MotionSet:
    """Load one split of a dataset at its frame rate (the entry's ``fps``), positions in millimetres.

    Args:
        name: a key of :data:`DATASETS`.
        split: a split listed in the dataset's entry.
        data_dir: dataset folder or archive folder (see :func:`find_data_dir`); unused by datasets without one.
        cache_dir: cache folder (default ``$CRISSCROSS_CACHE`` or ``~/.cache/crisscross``).
        actions: load only these actions.
        use_cache: read and write the preprocessing cache (content-keyed, see ``cache.py``).

    Raises:
        DataError: unknown dataset, split or action; missing or malformed files.
    """
    entry = get_dataset_info(name)
    if split not in entry.splits:
        raise DataError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(entry.splits)}")
    folder = find_data_dir(name, data_dir, cache_dir) if entry.needs_data_dir else None
    cache = ArrayCache(cache_dir, namespace=entry.cache_namespace, enabled=use_cache)
    return entry.load(split, folder, cache, actions)
