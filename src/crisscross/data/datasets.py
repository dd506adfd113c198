"""The dataset entry points: find a dataset's data folder, check it, and load one split.

Each function looks the dataset up in the registry (:mod:`crisscross.data.registry`) and calls the entry's
callables, so a new dataset is one :func:`~crisscross.data.registry.register_dataset` call. Built-in entries,
registered here in this order:

* ``synthetic``: embedded procedural motion (``synthetic.py``), no folder needed;
* ``h36m``: Human3.6M exp-map files (``h36m.py``); ``cmu``: CMU-Mocap exp-map files (``cmu.py``);
* ``npz``: user recordings (``user.py``).

:func:`find_data_dir` accepts the unpacked folder, or a folder holding the dataset's archives (e.g. the shared
``datasets`` folder): an archive is unpacked once into ``<cache>/datasets/<archive name>`` (never into the repository)
and reused while its bytes are unchanged (``archives.py``). Without ``data_dir`` it reads ``$CRISSCROSS_DATA`` at call
time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from crisscross.data.archives import find_archive, unpack_once
from crisscross.data.cache import ArrayCache
from crisscross.data.cmu import CMU_DATASET
from crisscross.data.errors import DataError
from crisscross.data.h36m import H36M_DATASET
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
    "unregister_dataset",
]

DATA_ENV_VAR = "CRISSCROSS_DATA"

for _entry in (SYNTHETIC_DATASET, H36M_DATASET, CMU_DATASET, NPZ_DATASET, *LIFTING_DATASETS):
    register_dataset(_entry)


def find_data_dir(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """Resolve the folder a dataset is read from.

    Args:
        name: a registered dataset name.
        data_dir: the unpacked dataset folder, a folder holding its archive, or (``npz``) a file; ``None`` reads
            ``$CRISSCROSS_DATA``.
        cache_dir: where archives are unpacked (see :func:`~crisscross.data.cache.resolve_cache_dir`).

    Returns:
        A folder in which the dataset's layout is found (or the ``npz`` file/folder).

    Raises:
        DataError: unknown dataset, nothing given, the path does not exist, or neither the layout nor an archive
            is found.
    """
    entry = get_dataset_info(name)
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(DATA_ENV_VAR)
        if not env:
            raise DataError(f"dataset {name!r} needs a data folder: pass --data-dir DIR (data.data_dir) or set "
                            f"{DATA_ENV_VAR}")
        data_dir = env
    folder = Path(data_dir).expanduser()
    if not folder.exists():
        raise DataError(f"{folder}: no such file or folder (data folder for dataset {name!r})")
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
    """Load one split of a dataset at its evaluation frame rate (25 fps), positions in millimetres.

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
