"""Dataset table, data-folder discovery and checking, and the one entry point that loads a split.

* ``synthetic``: embedded procedural motion (``synthetic.py``), no folder needed;
* ``h36m``: Human3.6M exp-map files (``h36m.py``); ``cmu``: CMU-Mocap exp-map files (``cmu.py``);
* ``npz``: user recordings (``user.py``).

:func:`find_data_dir` accepts the unpacked folder, or a folder holding the ``.tar.xz`` archives (e.g. the shared
``datasets`` folder): an archive is unpacked once into ``<cache>/datasets/<archive name>`` (never into the repository)
and reused while its bytes are unchanged. Without ``data_dir`` it reads ``$CRISSCROSS_DATA`` at call time.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from crisscross.data.cache import ArrayCache, file_digest, resolve_cache_dir
from crisscross.data.cmu import CMU_ACTIONS, CMU_FPS, CMU_SPLITS, cmu_files, find_cmu_root, load_cmu
from crisscross.data.errors import DataError
from crisscross.data.h36m import (
    H36M_ACTIONS,
    H36M_FPS,
    H36M_SPLITS,
    H36M_SUBJECTS,
    PREPROCESSING_VERSION,
    expmap_file_positions,
    find_h36m_root,
    h36m_file,
    load_h36m,
)
from crisscross.data.motion import MotionSet
from crisscross.data.skeleton import CMU_SKELETON, H36M_SKELETON, Skeleton
from crisscross.data.synthetic import SYNTHETIC_FPS, SYNTHETIC_SPLITS, load_synthetic
from crisscross.data.user import USER_FPS, USER_SPLITS, load_user_motion, read_user_recording, user_recording_files

__all__ = [
    "DATA_ENV_VAR",
    "DatasetInfo",
    "DATASETS",
    "DataDirReport",
    "get_dataset_info",
    "find_data_dir",
    "check_data_dir",
    "load_motion",
]

DATA_ENV_VAR = "CRISSCROSS_DATA"
_UNPACK_MARKER = ".crisscross-unpacked"
_ARCHIVE_PATTERNS = {"h36m": ("*h36m*.tar*", "*h3.6m*.tar*"), "cmu": ("*cmu*.tar*",)}


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the dataset table."""

    name: str
    description: str
    needs_data_dir: bool
    splits: tuple[str, ...]
    fps: float
    skeleton: str


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("synthetic", "embedded procedural motion on the H3.6M skeleton (6 actions, no download)",
                    False, tuple(SYNTHETIC_SPLITS), SYNTHETIC_FPS, "h36m"),
        DatasetInfo("h36m", "Human3.6M exp-map files, 15 actions; train S1 S6 S7 S8 S9, val S11, test S5",
                    True, tuple(H36M_SPLITS), H36M_FPS, "h36m"),
        DatasetInfo("cmu", "CMU-Mocap 8-action exp-map files; val = last recording per action held out of train/",
                    True, CMU_SPLITS, CMU_FPS, "cmu"),
        DatasetInfo("npz", "your recordings: .npz/.npy positions + joint names, parents, fps (see data/user.py)",
                    True, USER_SPLITS, USER_FPS, "npz"),
    )
}


def get_dataset_info(name: str) -> DatasetInfo:
    """The table row of dataset ``name``.

    Raises:
        DataError: unknown name; the message lists the known ones.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def _has_layout(name: str, folder: Path) -> bool:
    if name == "h36m":
        return find_h36m_root(folder) is not None
    if name == "cmu":
        return find_cmu_root(folder) is not None
    return folder.exists()


def _unpack_once(archive: Path, cache_dir: str | Path | None) -> Path:
    """Unpack ``archive`` into ``<cache>/datasets/<name>`` unless already done for the same archive bytes."""
    digest = file_digest(archive)
    stem = archive.name.split(".tar")[0]
    target = resolve_cache_dir(cache_dir) / "datasets" / stem
    marker = target / _UNPACK_MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=target.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(staging, filter="data")
        (staging / _UNPACK_MARKER).write_text(digest + "\n")
        if target.exists():
            shutil.rmtree(target)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first; use its copy when it is complete
            if not (marker.is_file() and marker.read_text().strip() == digest):
                raise
    except (tarfile.TarError, OSError) as err:
        raise DataError(f"{archive}: cannot unpack ({err})") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return target


def find_data_dir(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> Path:
    """Resolve the folder a dataset is read from.

    Args:
        name: ``h36m``, ``cmu`` or ``npz``.
        data_dir: the unpacked dataset folder, a folder holding its ``.tar.xz`` archive, or (``npz``) a file;
            ``None`` reads ``$CRISSCROSS_DATA``.
        cache_dir: where archives are unpacked (see :func:`~crisscross.data.cache.resolve_cache_dir`).

    Returns:
        A folder in which the dataset's layout is found (or the ``npz`` file/folder).

    Raises:
        DataError: nothing given, the path does not exist, or neither the layout nor an archive is found.
    """
    get_dataset_info(name)
    if data_dir is None or str(data_dir) == "":
        env = os.environ.get(DATA_ENV_VAR)
        if not env:
            raise DataError(f"dataset {name!r} needs a data folder: pass --data-dir DIR (data.data_dir) or set "
                            f"{DATA_ENV_VAR}")
        data_dir = env
    folder = Path(data_dir).expanduser()
    if not folder.exists():
        raise DataError(f"{folder}: no such file or folder (data folder for dataset {name!r})")
    if _has_layout(name, folder):
        return folder
    for pattern in _ARCHIVE_PATTERNS.get(name, ()):
        archives = sorted(folder.glob(pattern)) if folder.is_dir() else []
        if archives:
            unpacked = _unpack_once(archives[0], cache_dir)
            if _has_layout(name, unpacked):
                return unpacked
            raise DataError(f"{archives[0]}: archive does not contain a {name} dataset layout")
    expected = {"h36m": "S1 ... S11 folders (or h3.6m/dataset/S1 ...), or an h36m-*.tar.xz archive",
                "cmu": "train/<action>/<action>_<n>.txt (or cmu/train/...), or a cmu-*.tar.xz archive"}
    raise DataError(f"{folder}: no {name} data found; expected {expected.get(name, 'recordings')}")


@dataclass
class DataDirReport:
    """What :func:`check_data_dir` found.

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


def _check_file(report: DataDirReport, path: Path, skeleton: Skeleton, cache: ArrayCache) -> bool:
    try:
        expmap_file_positions(path, skeleton, cache)
    except DataError as err:
        report.malformed.append(str(err))
        return False
    report.present.append(str(path.relative_to(report.root)))
    return True


def _check_h36m(report: DataDirReport, cache: ArrayCache) -> None:
    root = report.root
    for split, subjects in H36M_SPLITS.items():
        found = total = 0
        missing_dirs = [s for s in subjects if not (root / s).is_dir()]
        for subject in subjects:
            if subject in missing_dirs:
                report.absent.append(f"{subject}/ (subject folder)")
                continue
            for action in H36M_ACTIONS:
                for subaction in (1, 2):
                    total += 1
                    path = h36m_file(root, subject, action, subaction)
                    if not path.is_file():
                        report.absent.append(str(path.relative_to(root)))
                    elif _check_file(report, path, H36M_SKELETON, cache):
                        found += 1
        if missing_dirs:
            report.splits[split] = f"unavailable: missing folder(s) {', '.join(str(root / s) for s in missing_dirs)}"
        else:
            report.splits[split] = f"available: {found} of {total} files"
    extra = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("S")
                   and p.name not in H36M_SUBJECTS)
    if extra:
        report.splits["other"] = f"unused subject folders: {', '.join(extra)}"


def _check_cmu(report: DataDirReport, cache: ArrayCache) -> None:
    root = report.root
    for folder_name in ("train", "test"):
        folder = root / folder_name
        if not folder.is_dir():
            report.absent.append(f"{folder_name}/ (folder)")
            report.splits[folder_name] = f"unavailable: missing folder {folder}"
            continue
        found = 0
        for action in CMU_ACTIONS:
            files = cmu_files(folder, action)
            if not files:
                report.absent.append(f"{folder_name}/{action}/ (no {action}_<n>.txt)")
            found += sum(_check_file(report, path, CMU_SKELETON, cache) for _, path in files)
        report.splits[folder_name] = f"available: {found} files"
    if (root / "train").is_dir():
        report.splits["val"] = "held out of train/: the last recording of each action with >= 2 recordings"


def _check_user(report: DataDirReport) -> None:
    for split in USER_SPLITS:
        try:
            files, _ = user_recording_files(report.root, split)
            report.splits[split] = f"available: {len(files)} recordings"
        except DataError as err:
            report.splits[split] = f"unavailable: {err}"
    try:
        files, _ = user_recording_files(report.root, "all")
    except DataError as err:
        report.errors.append(str(err))
        return
    for path in files:
        try:
            read_user_recording(path)
            report.present.append(str(path))
        except DataError as err:
            report.malformed.append(str(err))


def check_data_dir(name: str, data_dir: str | Path | None = None, cache_dir: str | Path | None = None) -> DataDirReport:
    """Check a data folder: which files are present, absent or malformed (``file:line``), per split.

    Parsing goes through the preprocessing cache, so a check also warms it and re-checks are fast.

    Args:
        name: ``h36m``, ``cmu`` or ``npz`` (``synthetic`` needs no folder).
        data_dir: as for :func:`find_data_dir`.
        cache_dir: preprocessing cache folder.

    Returns:
        The report; ``report.summary()`` is the text for ``crisscross datasets --check``.
    """
    report = DataDirReport(dataset=name)
    if name == "synthetic":
        report.root = Path("<embedded>")
        report.splits = {s: "available (generated)" for s in SYNTHETIC_SPLITS}
        return report
    try:
        folder = find_data_dir(name, data_dir, cache_dir)
    except DataError as err:
        report.errors.append(str(err))
        return report
    cache = ArrayCache(cache_dir, namespace=PREPROCESSING_VERSION)
    if name == "h36m":
        report.root = find_h36m_root(folder)
        _check_h36m(report, cache)
    elif name == "cmu":
        report.root = find_cmu_root(folder)
        _check_cmu(report, cache)
    else:
        report.root = folder
        _check_user(report)
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
        split: a split listed in the dataset's row.
        data_dir: dataset folder or archive folder (see :func:`find_data_dir`); unused by ``synthetic``.
        cache_dir: cache folder (default ``$CRISSCROSS_CACHE`` or ``~/.cache/crisscross``).
        actions: load only these actions.
        use_cache: read and write the preprocessing cache (content-keyed, see ``cache.py``).

    Raises:
        DataError: unknown dataset, split or action; missing or malformed files.
    """
    info = get_dataset_info(name)
    if split not in info.splits:
        raise DataError(f"dataset {name!r} has no split {split!r}; splits: {', '.join(info.splits)}")
    if name == "synthetic":
        try:
            return load_synthetic(split, actions=list(actions) if actions is not None else None)
        except ValueError as err:
            raise DataError(str(err)) from None
    folder = find_data_dir(name, data_dir, cache_dir)
    if name == "npz":
        motion = load_user_motion(folder, split)
        return motion.subset(actions=actions) if actions is not None else motion
    cache = ArrayCache(cache_dir, namespace=PREPROCESSING_VERSION, enabled=use_cache)
    if name == "h36m":
        return load_h36m(split, folder, cache, actions)
    return load_cmu(split, folder, cache, actions)
