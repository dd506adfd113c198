"""User recordings: joint positions in ``.npz`` / ``.npy`` files plus a skeleton description and a frame rate.

A recording is ``positions`` of shape ``[frames, joints, 3]`` with

* in an ``.npz``: keys ``positions`` (required), ``parents`` (int, -1 for the root), ``joint_names`` (str) and ``fps``,
  optionally ``units`` (``"mm"`` default, ``"cm"``, ``"m"``) and ``action``;
* or in a ``.npy`` (positions only) with a sidecar ``<stem>.yaml``/``.yml``/``.json`` (or one ``skeleton.yaml`` /
  ``skeleton.json`` for the whole folder) holding ``joint_names``, ``parents``, ``fps`` and optionally ``units``,
  ``action``, ``vertical_axis``, ``lateral_axis``. Sidecar values override the ``.npz`` ones.

Parents must list every joint's parent before the joint itself (index order). Positions are converted to
millimetres, centred on the root joint (models see root-relative motion) and resampled to 25 fps: by keeping every
k-th frame when the rate is an integer multiple of 25 (as the literature does for 50 Hz), else by linear
interpolation. Every model predicts all joints but the root; left/right mirror pairs are inferred from the names
(``Left``/``Right``, ``L``/``R``, ``l_``/``r_`` prefixes).

``data_dir`` is a file or a folder of files. A folder with ``train/``, ``val/``, ``test/`` sub-folders defines those
splits. Otherwise split ``all`` is every recording and ``train``/``val``/``test`` are the first 80 % / next 10 % /
last 10 % of the frames of every recording (a documented temporal hold-out).

:data:`NPZ_DATASET` is the ``npz`` registry entry (checker :func:`check_user`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from crisscross.data.cache import ArrayCache
from crisscross.data.errors import NUMPY_FILE_ERRORS, DataError, one_line_error
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.registry import DataDirReport, DatasetEntry
from crisscross.data.skeleton import BODY_PARTS, Skeleton

__all__ = [
    "NPZ_DATASET",
    "USER_FPS",
    "USER_SPLITS",
    "UserRecording",
    "check_user",
    "load_user_motion",
    "read_user_recording",
    "resample_positions",
    "skeleton_from_description",
    "user_recording_files",
]

USER_SPLITS: tuple[str, ...] = ("all", "train", "val", "test")
USER_FPS = 25.0
_UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}
_TEMPORAL_SPLIT = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
# A recording's frame rate may be at most this many times below the target's: beyond that it is surely wrong (a
# period for a rate, say), and the interpolated frames would not even fit in memory at some point.
_MAX_UPSAMPLING = 1000.0
_SIDE_PATTERNS = (("Left", "Right"), ("left", "right"), ("L", "R"), ("l", "r"))


@dataclass(frozen=True)
class UserRecording:
    """One validated recording, still at its own frame rate and units."""

    path: Path
    positions: np.ndarray  # [T, J, 3]
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    fps: float
    units: str
    action: str
    vertical_axis: int = 1
    lateral_axis: int = 0


def _one_line(value: Any, limit: int) -> str:
    """``value`` as one line of at most ``limit`` characters (array reprs span several lines, names may hold any)."""
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _sidecar(path: Path) -> dict:
    for candidate in (path.with_suffix(".yaml"), path.with_suffix(".yml"), path.with_suffix(".json"),
                      path.parent / "skeleton.yaml", path.parent / "skeleton.json"):
        if candidate.is_file():
            try:
                text = candidate.read_text(encoding="utf-8")
                loaded = json.loads(text) if candidate.suffix == ".json" else yaml.safe_load(text)
            # RecursionError: absurdly deep nesting, which both parsers handle by recursion.
            except (OSError, ValueError, yaml.YAMLError, RecursionError) as err:
                raise DataError(f"{candidate}: cannot parse skeleton description ({one_line_error(err)})") from None
            if not isinstance(loaded, dict):
                raise DataError(f"{candidate}: skeleton description must be a mapping")
            return loaded
    return {}


def read_user_recording(path: str | Path) -> UserRecording:
    """Read and validate one ``.npz``/``.npy`` recording and its description.

    Raises:
        DataError: unreadable or damaged file or sidecar, missing key, wrong shapes or types, non-finite positions
            (naming frame and joint), bad parents, frame rate or axes; always one line naming the file.
    """
    path = Path(path)
    meta: dict = {}
    if path.suffix not in (".npz", ".npy"):
        raise DataError(f"{path}: expected a .npz or .npy file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise DataError(f"{path}: not an npz archive (a single .npy array? name it .npy)")
            with loaded as stored:
                if "positions" not in stored.files:
                    raise DataError(f"{path}: no 'positions' array (keys: {_one_line(', '.join(stored.files), 200)})")
                positions = stored["positions"]
                for key in ("parents", "joint_names", "fps", "units", "action", "vertical_axis", "lateral_axis"):
                    if key in stored.files:
                        meta[key] = stored[key].tolist()
        elif isinstance(loaded, np.ndarray):
            positions = loaded
        else:
            loaded.close()
            raise DataError(f"{path}: an npz archive, not a .npy array (name it .npz)")
    except DataError:
        raise
    except NUMPY_FILE_ERRORS as err:
        raise DataError(f"{path}: cannot read ({one_line_error(err)})") from None
    meta.update(_sidecar(path))

    if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] < 2:
        raise DataError(f"{path}: positions must have shape [frames >= 2, joints, 3], got {positions.shape}")
    if positions.shape[1] == 0:  # no root joint: loading would fail looking for it
        raise DataError(f"{path}: positions have no joints, got shape {positions.shape}")
    if not np.issubdtype(positions.dtype, np.number):
        raise DataError(f"{path}: positions must be numbers, got {positions.dtype}")
    bad = np.argwhere(~np.isfinite(positions))
    if len(bad):
        frame, joint, _ = bad[0]
        raise DataError(f"{path}: non-finite position at frame {frame}, joint {joint}")
    num_joints = positions.shape[1]
    missing = [k for k in ("parents", "fps") if k not in meta]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)} (store them in the .npz or a sidecar "
                        f"{path.stem}.yaml)")
    parents = _whole_numbers(path, "parents", meta["parents"])
    names = _names(path, meta.get("joint_names", [f"joint{j}" for j in range(num_joints)]))
    if len(parents) != num_joints or len(names) != num_joints:
        raise DataError(f"{path}: {num_joints} joints in positions but {len(parents)} parents and "
                        f"{len(names)} joint names")
    for joint, parent in enumerate(parents):
        if not -1 <= parent < joint:
            raise DataError(f"{path}: parent {parent} of joint {joint} ({_one_line(repr(names[joint]), 60)}) must "
                            "be -1 or an earlier joint index")
    fps = _one_number(path, "fps", meta["fps"])
    if not np.isfinite(fps) or fps <= 0:
        raise DataError(f"{path}: fps must be positive, got {fps}")
    units = str(meta.get("units", "mm"))
    if units not in _UNITS_TO_MM:
        raise DataError(f"{path}: units must be one of {', '.join(_UNITS_TO_MM)}, got {_one_line(repr(units), 60)}")
    axes = [_whole_numbers(path, key, meta.get(key, default)) for key, default in (("vertical_axis", 1),
                                                                                   ("lateral_axis", 0))]
    if not (len(axes[0]) == len(axes[1]) == 1 and {axes[0][0], axes[1][0]} <= {0, 1, 2} and axes[0] != axes[1]):
        raise DataError(f"{path}: vertical_axis and lateral_axis must be two different axes 0, 1 or 2, got "
                        f"{_one_line(axes, 60)}")
    return UserRecording(path, positions.astype(np.float64), names, parents, fps, units,
                         str(meta.get("action", path.stem)), axes[0][0], axes[1][0])


def _whole_numbers(path: Path, key: str, value: Any) -> tuple[int, ...]:
    """``value`` (a whole number or a list of them) as ints; a DataError naming ``key`` otherwise."""
    try:
        numbers = np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError, OverflowError):  # ragged lists, dicts, strings, ints beyond float range
        numbers = None
    if numbers is None or not (np.isfinite(numbers).all() and (numbers == np.round(numbers)).all()):
        raise DataError(f"{path}: {key} must be whole numbers, got {_one_line(repr(value), 60)}")
    return tuple(int(n) for n in numbers)


def _one_number(path: Path, key: str, value: Any) -> float:
    """``value`` as one float (a 1-element list is fine); a DataError naming ``key`` otherwise."""
    try:
        number = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        number = None
    if number is None or number.size != 1:
        raise DataError(f"{path}: {key} must be one number, got {_one_line(repr(value), 60)}")
    return float(number.ravel()[0])


def _names(path: Path, value: Any) -> tuple[str, ...]:
    """Joint names (any scalars, as strings); a DataError when ``value`` is not a flat list of them."""
    items = value.tolist() if isinstance(value, np.ndarray) else value
    items = [items] if isinstance(items, str | int | float) else items
    if not isinstance(items, list | tuple) or any(isinstance(n, list | tuple | dict) for n in items):
        raise DataError(f"{path}: joint_names must be a list of names, got {_one_line(repr(value), 60)}")
    return tuple(str(n) for n in items)


def _mirror_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    index = {n: i for i, n in enumerate(names)}
    pairs = []
    for i, name in enumerate(names):
        for left, right in _SIDE_PATTERNS:
            if name.startswith(left) and (partner := right + name[len(left):]) in index:
                rest = name[len(left):]
                # single-letter prefixes need a separator or a capital next (L_hand, LHand; not "Lower")
                if len(left) == 1 and rest and not (rest[0] in "_.- " or rest[0].isupper()):
                    continue
                pairs.append((i, index[partner]))
                break
    return tuple(pairs)


def _body_parts(names: tuple[str, ...], pairs: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    left = {a for a, _ in pairs}
    right = {b for _, b in pairs}
    leg = re.compile(r"leg|hip|knee|ankle|foot|toe|thigh|shin|femur|tibia", re.IGNORECASE)
    parts = []
    for j, name in enumerate(names):
        side = "left" if j in left else "right" if j in right else None
        limb = "leg" if leg.search(name) else "arm"
        parts.append(BODY_PARTS.index(f"{side}_{limb}") if side else 0)
    return tuple(parts)


def skeleton_from_description(name: str, recording: UserRecording) -> Skeleton:
    """A :class:`Skeleton` for user data: offsets from the first frame (mm), every non-root joint predicted."""
    scale = _UNITS_TO_MM[recording.units]
    first = recording.positions[0] * scale
    offsets = tuple(
        tuple(float(v) for v in (first[j] - first[p] if p >= 0 else np.zeros(3)))
        for j, p in enumerate(recording.parents)
    )
    pairs = _mirror_pairs(recording.joint_names)
    return Skeleton(
        name=name, joint_names=recording.joint_names, parents=recording.parents, offsets_mm=offsets,
        predicted=tuple(j for j, p in enumerate(recording.parents) if p >= 0), copies=(), mirror_pairs=pairs,
        body_parts=_body_parts(recording.joint_names, pairs), vertical_axis=recording.vertical_axis,
        lateral_axis=recording.lateral_axis,
    )


def resample_positions(positions: np.ndarray, fps: float, target_fps: float = USER_FPS) -> np.ndarray:
    """Positions at ``target_fps``: every k-th frame for an integer ratio k, else linear interpolation.

    Args:
        positions: Array[T, J, 3].
        fps: frame rate of ``positions``.
        target_fps: wanted frame rate.

    Returns:
        Array[T', J, 3] covering the same time span.
    """
    ratio = fps / target_fps
    if abs(ratio - round(ratio)) < 1e-9 and round(ratio) >= 1:
        return positions[:: int(round(ratio))]  # noqa: RUF046 (a NumPy 1.x scalar rounds to a float)
    duration = (positions.shape[0] - 1) / fps
    times = np.arange(0.0, duration + 1e-9, 1.0 / target_fps)
    source = times * fps
    low = np.clip(np.floor(source).astype(int), 0, positions.shape[0] - 1)
    high = np.clip(low + 1, 0, positions.shape[0] - 1)
    weight = (source - low)[:, None, None]
    return positions[low] * (1 - weight) + positions[high] * weight


def user_recording_files(data_dir: str | Path, split: str) -> tuple[list[Path], bool]:
    """The recording files of ``split`` and whether they come from a split sub-folder.

    Raises:
        DataError: unknown split, missing path, or no recording found.
    """
    if split not in USER_SPLITS:
        raise DataError(f"unknown npz split {split!r}; splits: {', '.join(USER_SPLITS)}")
    base = Path(data_dir).expanduser()
    if base.is_file():
        return [base], False
    if not base.is_dir():
        raise DataError(f"{base}: no such file or folder")
    has_split_dirs = any((base / s).is_dir() for s in _TEMPORAL_SPLIT)
    if has_split_dirs and split != "all":
        folder = base / split
        if not folder.is_dir():
            raise DataError(f"{folder}: missing split folder")
        files = sorted(p for p in folder.iterdir() if p.suffix in (".npz", ".npy"))
    elif has_split_dirs:
        files = sorted(p for s in _TEMPORAL_SPLIT if (base / s).is_dir() for p in (base / s).iterdir()
                       if p.suffix in (".npz", ".npy"))
    else:
        files = sorted(p for p in base.iterdir() if p.suffix in (".npz", ".npy"))
    if not files:
        raise DataError(f"{base}: no .npz or .npy recording found for split {split!r}")
    return files, has_split_dirs


def load_user_motion(data_dir: str | Path, split: str = "all", target_fps: float = USER_FPS) -> MotionSet:
    """Load user recordings as a root-centred millimetre :class:`MotionSet` at ``target_fps``.

    Raises:
        DataError: see :func:`read_user_recording`; also recordings with different skeletons in one split.
    """
    files, from_split_dirs = user_recording_files(data_dir, split)
    recordings = [read_user_recording(p) for p in files]
    reference = recordings[0]
    for rec in recordings[1:]:
        if (rec.parents, rec.joint_names) != (reference.parents, reference.joint_names):
            raise DataError(f"{rec.path}: skeleton (parents / joint names) differs from {reference.path}")
    skeleton = skeleton_from_description("npz", reference)
    root = reference.parents.index(-1)
    sequences, keys = [], []
    for number, rec in enumerate(recordings, start=1):
        if rec.fps * _MAX_UPSAMPLING < target_fps:
            raise DataError(f"{rec.path}: fps {rec.fps:g} is implausibly low: resampling to {target_fps:g} fps "
                            f"would create {target_fps / rec.fps:.3g} frames per recorded frame (at most "
                            f"{_MAX_UPSAMPLING:g})")
        mm = rec.positions * _UNITS_TO_MM[rec.units]
        mm = resample_positions(mm - mm[:, root:root + 1], rec.fps, target_fps)
        if split in _TEMPORAL_SPLIT and not from_split_dirs:
            begin, end = _TEMPORAL_SPLIT[split]
            mm = mm[round(begin * len(mm)): round(end * len(mm))]
        if len(mm) == 0:
            continue
        sequences.append(mm.astype(np.float32))
        keys.append(SequenceKey(rec.path.parent.name, rec.action, number))
    if not sequences:
        raise DataError(f"{data_dir}: recordings too short for split {split!r}")
    return MotionSet.from_sequences(sequences, keys, skeleton, target_fps, dataset="npz", split=split)


def _load_entry(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> MotionSet:
    """:data:`~crisscross.data.registry.LoadFn` of the ``npz`` entry (positions are not cached)."""
    motion = load_user_motion(folder, split)
    return motion.subset(actions=actions) if actions is not None else motion


def check_user(report: DataDirReport, cache: ArrayCache) -> None:
    """Check the recordings under ``report.root`` (a file or a folder): per split, and each file parsed."""
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


NPZ_DATASET = DatasetEntry(
    name="npz",
    description="your recordings: .npz/.npy positions + joint names, parents, fps (see data/user.py)",
    needs_data_dir=True,
    splits=USER_SPLITS,
    fps=USER_FPS,
    skeleton="npz",
    load=_load_entry,
    check=check_user,
)
