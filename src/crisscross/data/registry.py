"""The dataset registry: one :class:`DatasetEntry` per dataset, carrying its table row, loader and checker.

:func:`~crisscross.data.datasets.load_motion`, :func:`~crisscross.data.datasets.find_data_dir` and
:func:`~crisscross.data.datasets.check_data_dir` look an entry up by name and call its callables; they hold no
per-dataset code. A new dataset is therefore one :func:`register_dataset` call. The built-in entries are defined next
to their loaders (``synthetic.py``, ``h36m.py``, ``cmu.py``, ``user.py``) and registered by ``datasets.py``.

This module imports only the data types the entries refer to, so every loader module can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crisscross.data.cache import ArrayCache
from crisscross.data.errors import DataError
from crisscross.data.motion import MotionSet

__all__ = [
    "DATASETS",
    "CheckFn",
    "DataDirReport",
    "DatasetEntry",
    "DatasetInfo",
    "LoadFn",
    "RootFn",
    "existing_path",
    "get_dataset_info",
    "register_dataset",
    "unregister_dataset",
]


@dataclass
class DataDirReport:
    """What :func:`~crisscross.data.datasets.check_data_dir` found.

    Attributes:
        dataset: dataset name.
        root: folder the files were looked up in (``None`` when not found).
        present: files found and parsed (paths relative to ``root``).
        absent: expected files or folders that are missing (loading skips them).
        malformed: one ``file:line: problem`` message per file that failed to parse.
        splits: availability line per split.
        errors: problems that prevent loading at all.
    """

    dataset: str
    root: Path | None = None
    present: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    splits: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the folder is usable: found, no malformed file, no fatal error."""
        return self.root is not None and not self.malformed and not self.errors

    def summary(self, max_listed: int = 20) -> str:
        """A text report a user can act on."""
        lines = [f"dataset {self.dataset}: {self.root if self.root else 'no data folder found'}"]
        lines += [f"  error: {e}" for e in self.errors]
        if self.splits:
            lines.append("  splits:")
            lines += [f"    {name:<9} {status}" for name, status in self.splits.items()]
        lines.append(f"  files parsed: {len(self.present)}")
        for title, items in (("absent (skipped when loading)", self.absent), ("malformed", self.malformed)):
            if items:
                lines.append(f"  {title}: {len(items)}")
                lines += [f"    {item}" for item in items[:max_listed]]
                if len(items) > max_listed:
                    lines.append(f"    ... and {len(items) - max_listed} more")
        if self.ok:
            lines.append("  OK: the folder can be used" + (" (absent files are skipped)" if self.absent else ""))
        elif self.malformed:
            lines.append("  FIX: repair or re-extract the malformed files listed above (file:line)")
        else:
            lines.append("  FIX: point --data-dir (or CRISSCROSS_DATA) at the unpacked dataset or its archive folder")
        return "\n".join(lines)


#: ``load(split, folder, cache, actions)``: one split as a :class:`MotionSet` (a ``LiftingSet`` for lifting
#: datasets). ``folder`` is what
#: :func:`~crisscross.data.datasets.find_data_dir` resolved (``None`` when the dataset needs no folder); ``actions``
#: ``None`` means all. Raises :class:`DataError` for unknown actions and missing or malformed files.
LoadFn = Callable[[str, Path | None, ArrayCache, Sequence[str] | None], MotionSet]
#: ``check(report, cache)``: fill ``report`` (``report.root`` is already set) with present / absent / malformed files
#: and one availability line per split.
CheckFn = Callable[[DataDirReport, ArrayCache], None]
#: ``find_root(folder)``: the folder holding the dataset's layout inside ``folder``, or ``None`` when absent.
RootFn = Callable[[Path], Path | None]


def existing_path(folder: Path) -> Path | None:
    """``folder`` itself when it exists (the default :attr:`DatasetEntry.find_root`)."""
    return folder if folder.exists() else None


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: its table row, plus how to find, load and check its files.

    Attributes:
        name: registry key (``--dataset`` / ``data.dataset``).
        description: one line for ``crisscross datasets``.
        needs_data_dir: false for embedded datasets (``load`` then gets ``folder=None``).
        splits: split names ``load`` accepts.
        fps: frame rate of the loaded positions.
        skeleton: name of the skeleton (see :data:`~crisscross.data.skeleton.SKELETONS`).
        load: see :data:`LoadFn`.
        check: see :data:`CheckFn`.
        find_root: see :data:`RootFn`; the layout is "found" when it returns a folder.
        archive_patterns: globs of the dataset's archives in a folder of archives (tried in order).
        expected_layout: what the folder should hold, for the "no data found" error.
        cache_namespace: sub-folder of the preprocessing cache handed to ``load`` and ``check``.
    """

    name: str
    description: str
    needs_data_dir: bool
    splits: tuple[str, ...]
    fps: float
    skeleton: str
    load: LoadFn
    check: CheckFn
    find_root: RootFn = existing_path
    archive_patterns: tuple[str, ...] = ()
    expected_layout: str = "recordings"
    cache_namespace: str = "arrays"
    task: str = "forecasting"  # the task whose samples ``load`` returns: a MotionSet (forecasting), a LiftingSet

    def has_layout(self, folder: Path) -> bool:
        """Whether ``folder`` holds this dataset's layout (directly or in an accepted sub-folder)."""
        return self.find_root(folder) is not None


#: The former name of :class:`DatasetEntry` (the same class).
DatasetInfo = DatasetEntry

#: Every registered dataset by name, in registration order. Change it through :func:`register_dataset` and
#: :func:`unregister_dataset` only.
DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    """Add ``entry`` to :data:`DATASETS` and return it.

    Raises:
        TypeError: ``entry`` is not a :class:`DatasetEntry`.
        ValueError: a dataset of that name is already registered.
    """
    if not isinstance(entry, DatasetEntry):
        raise TypeError(f"register_dataset expects a DatasetEntry, got {type(entry).__name__}")
    if entry.name in DATASETS:
        raise ValueError(f"dataset {entry.name!r} is already registered")
    DATASETS[entry.name] = entry
    return entry


def get_dataset_info(name: str) -> DatasetEntry:
    """The registry entry of dataset ``name``.

    Raises:
        DataError: unknown name; the message lists the known ones.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def unregister_dataset(name: str) -> DatasetEntry:
    """Remove dataset ``name`` from :data:`DATASETS` and return its entry.

    Raises:
        DataError: unknown name.
    """
    entry = get_dataset_info(name)
    del DATASETS[name]
    return entry
