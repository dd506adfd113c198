"""Human3.6M exp-map motion as a 50 Hz forecasting set on the 17 joints of DLow (``h36m-expmap17``).

DLow (Yuan & Kitani, ECCV 2020; ``motion_pred/utils/dataset_h36m.py``) forecasts the 17 joints of VideoPose3D's
``data_3d_h36m.npz`` at 50 Hz, root-relative, with the global orientation kept. That file is not part of the
exp-map archive, so this loader rebuilds the same kind of data from the exp-map text files:

1. :func:`~crisscross.data.h36m_world.world_positions` gives each file's 32 joints in the z-up world frame of the
   Human3.6M cameras, in millimetres, at the files' 50 Hz (no downsampling);
2. the 17 joints :data:`~crisscross.data.skeleton.H36M_17_FROM_32` are kept, on
   :data:`~crisscross.data.skeleton.H36M_17_SKELETON`;
3. joint 0 (the hips) is subtracted in every frame, so the root sits at the origin; the body's orientation in the
   world frame is kept (DLow does not rotation-normalise).

One sequence per ``(subject, action, take)`` file. Splits: ``train`` = S1 S5 S6 S7 S8 (the subjects whose folders
are present: the shared archive has no S5), ``val`` = S11 (for training runs) and ``test`` = S9 S11, DLow's. The
positions differ from DLow's in how they were made: every subject has the same bone lengths
(:data:`~crisscross.data.skeleton.H36M_SKELETON`'s), and the world frame is rebuilt by integrating the root
(``h36m_world.py``), so figures on this set are not comparable with DLow's tables.

The world frame is z up, while :data:`~crisscross.data.skeleton.H36M_17_SKELETON` declares camera-frame axes
(``vertical_axis=1``): the ``rotate`` augmentation would turn the body about the wrong axis on this set.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crisscross.data.cache import ArrayCache, file_digest
from crisscross.data.errors import DataError
from crisscross.data.h36m import (
    H36M_ACTIONS,
    H36M_SOURCE_FPS,
    PREPROCESSING_VERSION,
    check_expmap_file,
    find_h36m_root,
    h36m_file,
)
from crisscross.data.h36m_world import world_file, world_sequence_paths
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.registry import DataDirReport, DatasetEntry
from crisscross.data.skeleton import H36M_17_FROM_32, H36M_17_SKELETON, H36M_SKELETON

__all__ = [
    "H36M_EXPMAP17_DATASET",
    "H36M_EXPMAP17_NAME",
    "H36M_WORLD17_FPS",
    "H36M_WORLD17_SPLITS",
    "OPTIONAL_SUBJECTS",
    "check_h36m_world17",
    "load_h36m_world17",
    "world17_positions",
]

H36M_EXPMAP17_NAME = "h36m-expmap17"
H36M_WORLD17_FPS = float(H36M_SOURCE_FPS)
#: DLow's subjects (train S1 S5 S6 S7 S8, test S9 S11), plus S11 alone as the validation split of training runs.
H36M_WORLD17_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("S1", "S5", "S6", "S7", "S8"), "val": ("S11",), "test": ("S9", "S11")}
#: Subjects a split loads only where their folder is present (S5 is held out of the shared archive); any other
#: missing subject folder is an error.
OPTIONAL_SUBJECTS: tuple[str, ...] = ("S5",)
#: Part of the cache key: bumped whenever the positions this module derives change.
_VERSION = "h36m-world17-v1"


def world17_positions(world_mm: np.ndarray) -> np.ndarray:
    """The 17 DLow joints of 32-joint world positions, root-relative.

    Args:
        world_mm: Array[T, 32, 3] positions in millimetres (e.g. from
            :func:`~crisscross.data.h36m_world.world_positions`).

    Returns:
        Array[T, 17, 3] float32 millimetres: joints :data:`H36M_17_FROM_32`, joint 0 subtracted in every frame
        (joint 0 is at the origin; the orientation is unchanged).
    """
    world_mm = np.asarray(world_mm)
    if world_mm.ndim != 3 or world_mm.shape[1:] != (H36M_SKELETON.num_joints, 3):
        raise ValueError(f"expected positions of shape [T, {H36M_SKELETON.num_joints}, 3], got {world_mm.shape}")
    joints = world_mm[:, list(H36M_17_FROM_32)].astype(np.float64)
    return (joints - joints[:, :1]).astype(np.float32)


def _file_positions(path: Path, cache: ArrayCache | None) -> np.ndarray:
    """Array[T, 17, 3] of one exp-map file (:func:`world17_positions` of its world motion), cached by content."""

    def build() -> dict[str, np.ndarray]:
        world = world_file(path)  # a DataError for values too large to give finite poses
        return {"positions": world17_positions(world)}

    if cache is None:
        return build()["positions"]
    return cache.load_or_build(f"{_VERSION}-{file_digest(path)}", build)["positions"]


def _split_subjects(root: Path, split: str) -> list[str]:
    wanted = H36M_WORLD17_SPLITS[split]
    missing = [s for s in wanted if not (root / s).is_dir()]
    required = [s for s in missing if s not in OPTIONAL_SUBJECTS]
    if required:
        raise DataError(f"{root / required[0]}: missing subject folder needed by the {H36M_EXPMAP17_NAME} "
                        f"{split!r} split ({', '.join(wanted)})")
    present = [s for s in wanted if s not in missing]
    if not present:
        raise DataError(f"{root}: no subject folder of the {H36M_EXPMAP17_NAME} {split!r} split ({', '.join(wanted)})")
    return present


def load_h36m_world17(split: str, folder: str | Path, cache: ArrayCache | None = None,
                      actions: Sequence[str] | None = None) -> MotionSet:
    """One split of ``h36m-expmap17``: 50 Hz, 17 joints, millimetres, root-relative, world orientation kept.

    Args:
        split: ``train`` (S1 S5 S6 S7 S8, those present), ``val`` (S11) or ``test`` (S9 S11).
        folder: the Human3.6M exp-map folder (any layout :func:`~crisscross.data.h36m.find_h36m_root` accepts).
        cache: content-keyed cache of the per-file positions; ``None`` computes without caching.
        actions: subset of :data:`~crisscross.data.h36m.H36M_ACTIONS` (default all 15).

    Returns:
        A :class:`MotionSet` (dataset ``h36m-expmap17``) with one sequence per present file, in the order subject,
        action, take.

    Raises:
        DataError: unknown split or action, no Human3.6M folder, a missing required subject folder, no file at all,
            or a malformed file (``file:line``).
    """
    if split not in H36M_WORLD17_SPLITS:
        raise DataError(f"unknown {H36M_EXPMAP17_NAME} split {split!r}; splits: {', '.join(H36M_WORLD17_SPLITS)}")
    root = find_h36m_root(folder)
    if root is None:
        raise DataError(f"{folder}: no Human3.6M folder found (expected S1 ... S11 folders of "
                        "<action>_<subaction>.txt files, directly or under h3.6m/dataset)")
    paths = world_sequence_paths(root, _split_subjects(root, split), actions)
    sequences = [_file_positions(path, cache) for path in paths.values()]
    keys = [SequenceKey(subject, action, subaction) for subject, action, subaction in paths]
    return MotionSet.from_sequences(sequences, keys, H36M_17_SKELETON, H36M_WORLD17_FPS, dataset=H36M_EXPMAP17_NAME,
                                    split=split, action_order=H36M_ACTIONS)


def _load(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> MotionSet:
    return load_h36m_world17(split, folder, cache, actions)


def check_h36m_world17(report: DataDirReport, cache: ArrayCache) -> None:
    """Parse every file of every split's subjects into ``report`` (through the ``h36m`` loader's cache)."""
    root = report.root
    subjects = dict.fromkeys(s for split in H36M_WORLD17_SPLITS.values() for s in split)
    found: dict[str, int] = {}
    for subject in subjects:
        if not (root / subject).is_dir():
            report.absent.append(f"{subject}/ (subject folder)")
            continue
        found[subject] = 0
        for action in H36M_ACTIONS:
            for subaction in (1, 2):
                path = h36m_file(root, subject, action, subaction)
                if not path.is_file():
                    report.absent.append(str(path.relative_to(root)))
                elif check_expmap_file(report, path, H36M_SKELETON, cache):
                    found[subject] += 1
    for split, wanted in H36M_WORLD17_SPLITS.items():
        missing = [s for s in wanted if s not in found]
        required = [s for s in missing if s not in OPTIONAL_SUBJECTS]
        if required or len(missing) == len(wanted):
            report.splits[split] = f"unavailable: missing folder(s) {', '.join(missing)}"
            continue
        files = sum(found[s] for s in wanted if s in found)
        absent = f" (absent: {', '.join(missing)})" if missing else ""
        report.splits[split] = f"available: {', '.join(s for s in wanted if s in found)}, {files} files{absent}"


H36M_EXPMAP17_DATASET = DatasetEntry(
    name=H36M_EXPMAP17_NAME,
    description="Human3.6M exp-map files rebuilt in the world frame, 50 Hz, DLow's 17 joints, root-relative; "
                "train S1 S5 S6 S7 S8 (where present), val S11, test S9 S11; not DLow's exact data",
    needs_data_dir=True,
    splits=tuple(H36M_WORLD17_SPLITS),
    fps=H36M_WORLD17_FPS,
    skeleton=H36M_17_SKELETON.name,
    load=_load,
    check=check_h36m_world17,
    find_root=find_h36m_root,
    archive_patterns=("*h36m*.tar*", "*h3.6m*.tar*"),
    expected_layout="S1 ... S11 folders of exp-map files (or h3.6m/dataset/S1 ...), or an h36m-*.tar.xz archive",
    cache_namespace=PREPROCESSING_VERSION,
)
