"""Human3.6M in the exp-map text format of the motion-prediction literature, and the shared text reader.

Layout: ``<root>/S<k>/<action>_<subaction>.txt`` (``<root>`` may also be the folder holding ``h3.6m/dataset``, as the
usual archive unpacks). One frame per line, 99 comma-separated floats at 50 Hz: global translation (3), then 32
exp-maps, root first. As in LTD / HisRepItself / siMLPe (``readCSVasFloat``, ``range(0, n, 2)``, ``[:, 0:6] = 0``,
``expmap2xyz_torch``) every 2nd frame is kept (25 fps), global translation and rotation are removed and forward
kinematics gives 32 joint positions in millimetres. Splits (HisRepItself ``subs``): train S1 S6 S7 S8 S9, val S11,
test S5.

Some files are legitimately absent from partial copies (the shared archive lacks e.g. S7 ``discussion_1``): those are
skipped. A missing *subject* folder of the requested split is an error naming the folder. Malformed files raise
:class:`~crisscross.data.errors.DataError` naming ``file:line``.

:data:`H36M_DATASET` is the ``h36m`` registry entry (loader :func:`load_h36m`, checker :func:`check_h36m`).
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from crisscross.data.cache import ArrayCache, bytes_digest
from crisscross.data.errors import DataError
from crisscross.data.kinematics import forward_kinematics, single_threaded_torch
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.registry import DataDirReport, DatasetEntry
from crisscross.data.skeleton import H36M_SKELETON, Skeleton

__all__ = [
    "H36M_ACTIONS",
    "H36M_DATASET",
    "H36M_FPS",
    "H36M_SOURCE_FPS",
    "H36M_SPLITS",
    "H36M_SUBJECTS",
    "PREPROCESSING_VERSION",
    "check_expmap_file",
    "check_h36m",
    "expmap_file_positions",
    "find_h36m_root",
    "h36m_file",
    "load_h36m",
    "read_expmap_text",
]

H36M_ACTIONS: tuple[str, ...] = (
    "walking", "eating", "smoking", "discussion", "directions", "greeting", "phoning", "posing", "purchases",
    "sitting", "sittingdown", "takingphoto", "waiting", "walkingdog", "walkingtogether",
)
H36M_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8", "S9", "S11")
H36M_SPLITS: dict[str, tuple[str, ...]] = {"train": ("S1", "S6", "S7", "S8", "S9"), "val": ("S11",), "test": ("S5",)}
H36M_SOURCE_FPS = 50
H36M_FPS = 25
_DOWNSAMPLE = H36M_SOURCE_FPS // H36M_FPS
#: Bumped whenever parsing, FK or downsampling change, so cached positions are rebuilt.
PREPROCESSING_VERSION = "expmap-fk-v1"


def _locate_problem(text: str, num_values: int, path: Path) -> str:
    """Scan a file line by line and describe its first problem as ``file:line: message``."""
    lines = text.splitlines()
    last_content = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        where = f"{path}:{index + 1}"
        fields = stripped.split(",")
        if len(fields) != num_values:
            if index == last_content and len(fields) < num_values:
                return f"{where}: truncated line ({len(fields)} of {num_values} values; incomplete file?)"
            return f"{where}: wrong column count ({len(fields)} values, expected {num_values})"
        for column, field in enumerate(fields, start=1):
            try:
                value = float(field)
            except ValueError:
                return f"{where}: value {column} is not a number: {field.strip()[:30]!r}"
            if not math.isfinite(value):
                return f"{where}: value {column} is not finite: {field.strip()!r}"
    return f"{path}: could not be parsed as {num_values} comma-separated floats per line"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; a missing or unreadable file is a DataError naming it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror})") from None


def read_expmap_text(path: str | Path, num_values: int, data: bytes | None = None) -> np.ndarray:
    """Read an exp-map text file (one frame per line, comma-separated floats).

    Args:
        path: the file (used for reading when ``data`` is None, and in error messages).
        num_values: values per line (99 for H3.6M, 117 for CMU).
        data: the file's bytes when already read.

    Returns:
        Array[F, num_values] float64 (blank lines are skipped).

    Raises:
        DataError: missing/unreadable file, no frames, a truncated line, a wrong column count, a value that is not
            a number, or a NaN/inf; the message is ``<file>:<line>: <problem>``.
    """
    path = Path(path)
    if data is None:
        data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text file") from None
    if not text.strip():
        raise DataError(f"{path}: empty file (no frames)")
    try:
        values = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        raise DataError(_locate_problem(text, num_values, path)) from None
    if values.shape[1] != num_values or not np.isfinite(values).all():
        raise DataError(_locate_problem(text, num_values, path))
    return values


def expmap_file_positions(
    path: str | Path, skeleton: Skeleton, cache: ArrayCache | None = None, downsample: int = _DOWNSAMPLE
) -> np.ndarray:
    """Joint positions of one exp-map file: parse, keep every ``downsample``-th frame, FK (cached by content).

    Args:
        path: the text file.
        skeleton: skeleton of the file (99 values per line for H3.6M, 117 for CMU).
        cache: content-keyed cache of the result; ``None`` computes without caching.
        downsample: keep frames 0, d, 2d, ... (2: 50 Hz -> 25 fps, as the literature).

    Returns:
        Array[T, J, 3] float32 positions in millimetres, root at the origin.

    Raises:
        DataError: the file is missing or malformed (see :func:`read_expmap_text`), or its values are so large that
            the joint positions overflow.
    """
    path = Path(path)
    data = _read_bytes(path)

    def build() -> dict[str, np.ndarray]:
        angles = read_expmap_text(path, skeleton.num_angle_values, data)[::downsample]
        with single_threaded_torch():
            positions = forward_kinematics(torch.from_numpy(np.ascontiguousarray(angles)), skeleton)
        positions = positions.to(torch.float32).numpy()
        if not np.isfinite(positions).all():  # finite but huge values (say 1e300) overflow in the rotations
            raise DataError(f"{path}: exp-map values too large: forward kinematics gives non-finite joint positions")
        return {"positions": positions}

    if cache is None:
        return build()["positions"]
    key = bytes_digest(data, PREPROCESSING_VERSION, skeleton.name, f"downsample={downsample}")
    return cache.load_or_build(key, build)["positions"]


def find_h36m_root(data_dir: str | Path) -> Path | None:
    """The folder holding the ``S<k>`` subject folders, for the accepted layouts; ``None`` if not found.

    Accepts ``<dir>`` itself, ``<dir>/h3.6m/dataset``, ``<dir>/dataset`` and ``<dir>/h3.6m``.
    """
    base = Path(data_dir).expanduser()
    for candidate in (base, base / "h3.6m" / "dataset", base / "dataset", base / "h3.6m"):
        if candidate.is_dir() and any((candidate / s).is_dir() for s in H36M_SUBJECTS):
            return candidate
    return None


def h36m_file(root: str | Path, subject: str, action: str, subaction: int) -> Path:
    """Path of one sequence file, ``<root>/<subject>/<action>_<subaction>.txt``."""
    return Path(root) / subject / f"{action}_{subaction}.txt"


def _check_actions(actions: Sequence[str] | None) -> list[str]:
    chosen = list(H36M_ACTIONS) if actions is None else list(actions)
    unknown = [a for a in chosen if a not in H36M_ACTIONS]
    if unknown:
        raise DataError(f"unknown H3.6M action(s) {unknown}; known actions: {', '.join(H36M_ACTIONS)}")
    return chosen


def load_h36m(
    split: str,
    data_dir: str | Path,
    cache: ArrayCache | None = None,
    actions: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
) -> MotionSet:
    """Load a Human3.6M split as 25 fps joint positions.

    Args:
        split: ``train`` (S1 S6 S7 S8 S9), ``val`` (S11) or ``test`` (S5).
        data_dir: the dataset folder (see :func:`find_h36m_root` for accepted layouts).
        cache: content-keyed cache of the per-file positions.
        actions: subset of :data:`H36M_ACTIONS` (default all 15, canonical order).
        subjects: override the split's subjects.

    Returns:
        A :class:`MotionSet` with one sequence per present ``(subject, action, subaction)`` file.

    Raises:
        DataError: unknown split/action, no dataset folder, a missing subject folder, no file at all, or a
            malformed file (``file:line``).
    """
    if split not in H36M_SPLITS and subjects is None:
        raise DataError(f"unknown H3.6M split {split!r}; splits: {', '.join(H36M_SPLITS)}")
    chosen = _check_actions(actions)
    root = find_h36m_root(data_dir)
    if root is None:
        raise DataError(f"{data_dir}: no Human3.6M folder found (expected S1 ... S11 folders of "
                        "<action>_<subaction>.txt files, directly or under h3.6m/dataset)")
    wanted_subjects = list(subjects) if subjects is not None else list(H36M_SPLITS[split])
    for subject in wanted_subjects:
        if not (root / subject).is_dir():
            raise DataError(f"{root / subject}: missing subject folder needed by the H3.6M {split!r} split "
                            f"({', '.join(wanted_subjects)})")
    sequences, keys = [], []
    for action in chosen:
        for subject in wanted_subjects:
            for subaction in (1, 2):
                path = h36m_file(root, subject, action, subaction)
                if not path.is_file():
                    continue  # legitimately absent in partial copies; check_data_dir reports it
                sequences.append(expmap_file_positions(path, H36M_SKELETON, cache))
                keys.append(SequenceKey(subject, action, subaction))
    if not keys:
        raise DataError(f"{root}: no H3.6M sequence file found for split {split!r} "
                        f"(subjects {', '.join(wanted_subjects)})")
    missing_actions = [a for a in chosen if a not in {k.action for k in keys}]
    if missing_actions:
        warnings.warn(f"H3.6M {split}: no file for action(s) {', '.join(missing_actions)} under {root}",
                      stacklevel=2)
    with single_threaded_torch():  # one large copy; threads only add waiting on a busy machine
        return MotionSet.from_sequences(sequences, keys, H36M_SKELETON, H36M_FPS, dataset="h36m", split=split,
                                        action_order=H36M_ACTIONS)


def check_expmap_file(report: DataDirReport, path: Path, skeleton: Skeleton, cache: ArrayCache) -> bool:
    """Parse one exp-map file into ``report``: ``present`` (relative to ``report.root``) or ``malformed``."""
    try:
        expmap_file_positions(path, skeleton, cache)
    except DataError as err:
        report.malformed.append(str(err))
        return False
    report.present.append(str(path.relative_to(report.root)))
    return True


def check_h36m(report: DataDirReport, cache: ArrayCache) -> None:
    """Check the subject folders and files of every split under ``report.root`` (see :class:`DataDirReport`)."""
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
                    elif check_expmap_file(report, path, H36M_SKELETON, cache):
                        found += 1
        if missing_dirs:
            report.splits[split] = f"unavailable: missing folder(s) {', '.join(str(root / s) for s in missing_dirs)}"
        else:
            report.splits[split] = f"available: {found} of {total} files"
    extra = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("S")
                   and p.name not in H36M_SUBJECTS)
    if extra:
        report.splits["other"] = f"unused subject folders: {', '.join(extra)}"


H36M_DATASET = DatasetEntry(
    name="h36m",
    description="Human3.6M exp-map files, 15 actions; train S1 S6 S7 S8 S9, val S11, test S5",
    needs_data_dir=True,
    splits=tuple(H36M_SPLITS),
    fps=H36M_FPS,
    skeleton="h36m",
    load=load_h36m,
    check=check_h36m,
    find_root=find_h36m_root,
    archive_patterns=("*h36m*.tar*", "*h3.6m*.tar*"),
    expected_layout="S1 ... S11 folders (or h3.6m/dataset/S1 ...), or an h36m-*.tar.xz archive",
    cache_namespace=PREPROCESSING_VERSION,
)
