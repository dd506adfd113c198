"""CMU-Mocap, 8-action subset of the motion-prediction literature (ConvSeq2Seq split), as 25 fps joint positions.

Layout: ``<root>/<split_dir>/<action>/<action>_<n>.txt`` with ``split_dir`` ``train`` or ``test`` (``<root>`` may
also be the folder holding ``cmu/``). 117 comma-separated floats per line at 50 Hz: translation, then 38 exp-maps.
As in LTD (``load_data_cmu_3d``): forward kinematics with the CMU skeleton (offsets x 70, mm), every 2nd frame kept.
LTD does not zero values 0:6 for CMU, but its ``fkl_torch`` drops the translation and never composes the root
rotation into the children, which is exactly what zeroing them does here.

Files are discovered by name (``<action>_<n>.txt``), so gaps in the numbering (the shared archive has
``directing_traffic_1`` and ``_4`` only) are fine.

Splits. The literature has ``train`` and ``test`` folders only; the shared copy has ``train`` only. We provide:

* ``train``: every file of ``train/`` except the hold-out below;
* ``val``: the hold-out, i.e. for each action with at least two files in ``train/``, the file with the highest
  index ``n`` (a whole recording, so no window of it is seen in training);
* ``trainval``: every file of ``train/`` (what the literature trains on);
* ``test``: every file of ``test/`` (an error naming the folder when it is absent).

:data:`CMU_DATASET` is the ``cmu`` registry entry (loader :func:`load_cmu`, checker :func:`check_cmu`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from crisscross.data.cache import ArrayCache
from crisscross.data.errors import DataError
from crisscross.data.h36m import PREPROCESSING_VERSION, check_expmap_file, expmap_file_positions
from crisscross.data.kinematics import single_threaded_torch
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.registry import DataDirReport, DatasetEntry
from crisscross.data.skeleton import CMU_SKELETON

__all__ = [
    "CMU_ACTIONS",
    "CMU_DATASET",
    "CMU_FPS",
    "CMU_SPLITS",
    "check_cmu",
    "cmu_files",
    "cmu_split_files",
    "find_cmu_root",
    "load_cmu",
]

CMU_ACTIONS: tuple[str, ...] = (
    "basketball", "basketball_signal", "directing_traffic", "jumping", "running", "soccer", "walking", "washwindow",
)
CMU_SPLITS: tuple[str, ...] = ("train", "val", "trainval", "test")
CMU_FPS = 25


def find_cmu_root(data_dir: str | Path) -> Path | None:
    """The folder holding ``train/`` (and possibly ``test/``): ``<dir>`` or ``<dir>/cmu``; ``None`` if not found."""
    base = Path(data_dir).expanduser()
    for candidate in (base, base / "cmu"):
        if (candidate / "train").is_dir() or (candidate / "test").is_dir():
            return candidate
    return None


def cmu_files(folder: str | Path, action: str) -> list[tuple[int, Path]]:
    """``(n, path)`` of every ``<folder>/<action>/<action>_<n>.txt``, sorted by ``n``."""
    action_dir = Path(folder) / action
    if not action_dir.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(action)}_(\d+)\.txt$")
    found = [(int(m.group(1)), p) for p in action_dir.iterdir() if (m := pattern.match(p.name)) and p.is_file()]
    return sorted(found)


def cmu_split_files(root: str | Path, split: str, actions: Sequence[str]) -> list[tuple[str, int, Path]]:
    """``(action, n, path)`` of the files making up ``split`` (see the module docstring for the rules).

    Raises:
        DataError: unknown split, or the ``train``/``test`` folder the split needs is absent.
    """
    if split not in CMU_SPLITS:
        raise DataError(f"unknown CMU split {split!r}; splits: {', '.join(CMU_SPLITS)}")
    folder = Path(root) / ("test" if split == "test" else "train")
    if not folder.is_dir():
        raise DataError(f"{folder}: missing folder needed by the CMU {split!r} split")
    result = []
    for action in actions:
        files = cmu_files(folder, action)
        held_out = files[-1][0] if len(files) >= 2 else None
        for n, path in files:
            if (split == "train" and n == held_out) or (split == "val" and n != held_out):
                continue
            result.append((action, n, path))
    return result


def load_cmu(
    split: str, data_dir: str | Path, cache: ArrayCache | None = None, actions: Sequence[str] | None = None
) -> MotionSet:
    """Load a CMU-Mocap split as 25 fps joint positions (38 joints, mm).

    Args:
        split: one of :data:`CMU_SPLITS`.
        data_dir: the dataset folder (``<dir>/train/<action>/...`` or ``<dir>/cmu/train/...``).
        cache: content-keyed cache of the per-file positions.
        actions: subset of :data:`CMU_ACTIONS` (default all 8).

    Raises:
        DataError: unknown split/action, missing folders, no file, or a malformed file (``file:line``).
    """
    chosen = list(CMU_ACTIONS) if actions is None else list(actions)
    unknown = [a for a in chosen if a not in CMU_ACTIONS]
    if unknown:
        raise DataError(f"unknown CMU action(s) {unknown}; known actions: {', '.join(CMU_ACTIONS)}")
    root = find_cmu_root(data_dir)
    if root is None:
        raise DataError(f"{data_dir}: no CMU-Mocap folder found (expected train/<action>/<action>_<n>.txt, "
                        "directly or under cmu/)")
    files = cmu_split_files(root, split, chosen)
    if not files:
        raise DataError(f"{root}: no CMU sequence file for split {split!r}")
    subject = "test" if split == "test" else "train"
    sequences = [expmap_file_positions(path, CMU_SKELETON, cache) for _, _, path in files]
    keys = [SequenceKey(subject, action, n) for action, n, _ in files]
    with single_threaded_torch():
        return MotionSet.from_sequences(sequences, keys, CMU_SKELETON, CMU_FPS, dataset="cmu", split=split,
                                        action_order=CMU_ACTIONS)


def check_cmu(report: DataDirReport, cache: ArrayCache) -> None:
    """Check ``train/`` and ``test/`` under ``report.root``: per-action files, parsed (see :class:`DataDirReport`)."""
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
            found += sum(check_expmap_file(report, path, CMU_SKELETON, cache) for _, path in files)
        report.splits[folder_name] = f"available: {found} files"
    if (root / "train").is_dir():
        report.splits["val"] = "held out of train/: the last recording of each action with >= 2 recordings"


CMU_DATASET = DatasetEntry(
    name="cmu",
    description="CMU-Mocap 8-action exp-map files; val = last recording per action held out of train/",
    needs_data_dir=True,
    splits=CMU_SPLITS,
    fps=CMU_FPS,
    skeleton="cmu",
    load=load_cmu,
    check=check_cmu,
    find_root=find_cmu_root,
    archive_patterns=("*cmu*.tar*",),
    expected_layout="train/<action>/<action>_<n>.txt (or cmu/train/...), or a cmu-*.tar.xz archive",
    cache_namespace=PREPROCESSING_VERSION,
)
