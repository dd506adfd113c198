"""3D joint sequences of one's own in (``.npz``, ``.npy``, ``.csv``, ``.json``), predictions out (``.npz``, ``.json``).

Input, one recording ``[T, J, 3]``:

* ``.npz``: the joints under ``positions`` (or as the file's only array), optionally ``fps``, ``units``
  (``mm``, ``cm`` or ``m``) and ``joints`` (one name per joint);
* ``.npy``: the array alone;
* ``.csv``: one row per frame; a header row naming ``<joint>_x, <joint>_y, <joint>_z`` columns (a leading ``frame``
  or ``time`` column is skipped), or no header and ``3 J`` numbers per row;
* ``.json``: ``{"positions": [[[x, y, z], ...], ...], "fps": .., "units": .., "joints": [..]}`` or the bare list.

Output files are written atomically and never overwrite an existing file; every array comes with the joints'
names, the units and the frame rate.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from crisscross.data.errors import NUMPY_FILE_ERRORS, DataError, one_line_error
from crisscross.runtime import atomic_write

__all__ = ["MOTION_SUFFIXES", "OUTPUT_SUFFIXES", "UNITS_TO_MM", "Motion3D", "read_motion", "resample_frames",
           "write_prediction"]

MOTION_SUFFIXES = (".npz", ".npy", ".csv", ".json")
OUTPUT_SUFFIXES = (".npz", ".json")
UNITS_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}


@dataclass(frozen=True)
class Motion3D:
    """One recording as read: positions in the file's units and frame rate (None where the file does not say)."""

    path: Path | None
    positions: np.ndarray  # [T, J, 3] float64
    fps: float | None = None
    units: str | None = None
    joints: tuple[str, ...] | None = None


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters (file contents quoted in a message)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _scalar(value: Any, key: str, path: Path) -> Any:
    array = np.asarray(value)
    if array.size != 1:
        raise DataError(f"{path}: '{key}' must be one value, got shape {array.shape}")
    return array.reshape(()).item()


def _read_npz(path: Path) -> dict[str, Any]:
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an npz archive (a single .npy array? name it .npy)")
    with loaded as stored:
        keys = stored.files
        if "positions" in keys:
            name = "positions"
        elif len([k for k in keys if k not in ("fps", "units", "joints")]) == 1:
            name = next(k for k in keys if k not in ("fps", "units", "joints"))
        else:
            raise DataError(f"{path}: no 'positions' array and more than one array (keys: {_short(keys, 120)})")
        out: dict[str, Any] = {"positions": stored[name]}
        if "fps" in keys:
            out["fps"] = _scalar(stored["fps"], "fps", path)
        if "units" in keys:
            out["units"] = str(_scalar(stored["units"], "units", path))
        if "joints" in keys:
            out["joints"] = [str(n) for n in np.ravel(stored["joints"])]
    return out


def _read_csv(path: Path) -> dict[str, Any]:
    with path.open(newline="", encoding="utf-8") as fh:
        try:
            rows = [row for row in csv.reader(fh) if row and any(cell.strip() for cell in row)]
        except csv.Error as err:  # e.g. a field over the csv module's size limit
            raise DataError(f"{path}: not a readable CSV file ({one_line_error(err)})") from None
    if not rows:
        raise DataError(f"{path}: empty CSV file")
    header: list[str] | None = None
    try:
        float(rows[0][0])
    except ValueError:
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    skip = 1 if header and header[0].lower() in ("frame", "time", "t") else 0
    values = []
    for number, row in enumerate(rows, start=2 if header else 1):
        try:
            values.append([float(c) for c in row[skip:]])
        except ValueError:
            raise DataError(f"{path}:{number}: expected numbers, got {_short(row[skip:][:4])}...") from None
        if len(values[-1]) != len(values[0]):
            raise DataError(f"{path}:{number}: {len(values[-1])} values, the first row has {len(values[0])}")
    columns = len(values[0]) if values else 0
    if columns % 3:
        raise DataError(f"{path}: {columns} coordinate columns per row; expected 3 per joint (x, y, z)")
    out: dict[str, Any] = {"positions": np.asarray(values, dtype=np.float64).reshape(len(values), columns // 3, 3)}
    if header:
        names = header[skip:]
        joints = []
        for j in range(0, len(names), 3):
            stems = [n.rsplit("_", 1) for n in names[j:j + 3]]
            if any(len(s) != 2 for s in stems) or [s[1].lower() for s in stems] != ["x", "y", "z"] or \
                    len({s[0] for s in stems}) != 1:
                raise DataError(f"{path}: header columns {_short(names[j:j + 3])} are not <joint>_x, <joint>_y, "
                                "<joint>_z")
            joints.append(stems[0][0])
        out["joints"] = joints
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: nesting deeper than the decoder recurses
        raise DataError(f"{path}: cannot parse JSON ({one_line_error(err)})") from None
    if isinstance(loaded, list):
        loaded = {"positions": loaded}
    if not isinstance(loaded, Mapping) or "positions" not in loaded:
        raise DataError(f"{path}: expected a JSON object with 'positions' (or a bare [frames][joints][3] list) of 3D "
                        "joints; 2D keypoints from a detector need a lifting checkpoint")
    try:
        positions = np.asarray(loaded["positions"], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond the float range
        raise DataError(f"{path}: 'positions' must be a [frames][joints][3] list of numbers (3D joints; 2D keypoints "
                        "from a detector need a lifting checkpoint)") from None
    return {"positions": positions, **{k: loaded[k] for k in ("fps", "units", "joints") if k in loaded}}


def read_motion(path: str | Path) -> Motion3D:
    """Read one recording (see the module docstring for the formats).

    Raises:
        DataError: unreadable file, unknown suffix, positions not ``[T >= 1, J, 3]``, non-finite values (naming
            frame and joint), units other than mm, cm or m, a non-positive frame rate, or a joint-name count that
            differs from the joints.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: a folder, expected a 3D recording file (an OpenPose folder of 2D keypoints needs a "
                        "lifting checkpoint)")
    if path.suffix not in MOTION_SUFFIXES:
        raise DataError(f"{path}: expected a {', '.join(MOTION_SUFFIXES)} file of 3D joint positions")
    try:
        if path.suffix == ".npz":
            raw = _read_npz(path)
        elif path.suffix == ".npy":
            raw = {"positions": np.load(path, allow_pickle=False)}
            if not isinstance(raw["positions"], np.ndarray):
                raw["positions"].close()
                raise DataError(f"{path}: an npz archive, not a .npy array (name it .npz)")
        elif path.suffix == ".csv":
            raw = _read_csv(path)
        else:
            raw = _read_json(path)
    except DataError:
        raise
    except NUMPY_FILE_ERRORS as err:  # includes UnicodeDecodeError (a ValueError) from the text formats
        raise DataError(f"{path}: cannot read ({one_line_error(err)})") from None
    joints = raw.get("joints")
    if joints is not None:
        if isinstance(joints, np.ndarray):
            joints = joints.tolist()
        if not isinstance(joints, list | tuple) or not all(isinstance(n, str) for n in joints):
            raise DataError(f"{path}: 'joints' must be a list of joint names, got {_short(joints)}")
    return check_motion(Motion3D(path, np.asarray(raw["positions"]), raw.get("fps"), raw.get("units"),
                                 tuple(joints) if joints is not None else None))


def check_motion(motion: Motion3D) -> Motion3D:
    """``motion`` validated, positions as float64 (see :func:`read_motion` for what is checked)."""
    where = motion.path if motion.path is not None else "input"
    positions = motion.positions
    if not np.issubdtype(positions.dtype, np.number):
        raise DataError(f"{where}: positions must be numbers, got {positions.dtype}")
    if positions.ndim != 3 or positions.shape[2] != 3 or positions.shape[0] < 1:
        hint = "; 2D keypoints need a lifting checkpoint" if positions.ndim == 3 and positions.shape[2] == 2 else ""
        raise DataError(f"{where}: positions must have shape [frames, joints, 3], got {list(positions.shape)}{hint}")
    bad = np.argwhere(~np.isfinite(positions))
    if len(bad):
        raise DataError(f"{where}: non-finite position at frame {bad[0][0]}, joint {bad[0][1]}")
    fps = motion.fps
    if fps is not None:
        try:
            fps = float(fps) if not isinstance(fps, bool) else math.nan
        except (TypeError, ValueError, OverflowError):  # a list, a dict, an int beyond the float range
            fps = math.nan
        if not np.isfinite(fps) or fps <= 0:
            raise DataError(f"{where}: fps must be a positive number, got {_short(motion.fps)}")
    if motion.units is not None and (not isinstance(motion.units, str) or motion.units not in UNITS_TO_MM):
        raise DataError(f"{where}: units must be one of {', '.join(UNITS_TO_MM)}, got {_short(motion.units)}")
    if motion.joints is not None and len(motion.joints) != positions.shape[1]:
        raise DataError(f"{where}: {len(motion.joints)} joint names for {positions.shape[1]} joints")
    return Motion3D(motion.path, positions.astype(np.float64), fps, motion.units, motion.joints)


def resample_frames(x: np.ndarray, source_times: np.ndarray, target_times: np.ndarray) -> np.ndarray:
    """Array[T', ...]: ``x`` (Array[T, ...] sampled at ``source_times``) linearly interpolated at ``target_times``
    (clamped to the ends)."""
    index = np.interp(target_times, source_times, np.arange(len(source_times), dtype=np.float64))
    low = np.floor(index).astype(int)
    high = np.minimum(low + 1, len(source_times) - 1)
    weight = (index - low).reshape(-1, *([1] * (x.ndim - 1)))
    return x[low] * (1 - weight) + x[high] * weight


def write_prediction(path: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> Path:
    """Write ``arrays`` and ``meta`` (strings, numbers, lists) to a new ``.npz`` or ``.json`` file, atomically.

    In an ``.npz`` every ``meta`` entry is an array too (strings as 0-d string arrays, ``meta`` as one JSON string
    under ``meta_json``), so ``np.load(path)`` needs no pickle. Never overwrites ``path``.
    """
    path = Path(path)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise DataError(f"{path}: the output must be a {' or '.join(OUTPUT_SUFFIXES)} file")
    if path.exists():
        raise FileExistsError(f"{path} exists; choose a new file name (outputs are never overwritten)")

    def write(fh: BinaryIO) -> None:
        if path.suffix == ".npz":
            plain = {k: np.asarray(v) for k, v in meta.items() if isinstance(v, (str, int, float))}
            lists = {k: np.asarray(v) for k, v in meta.items() if isinstance(v, (list, tuple)) and v and
                     all(isinstance(x, (str, int, float)) for x in v)}
            np.savez_compressed(fh, **{k: np.asarray(v) for k, v in arrays.items()}, **plain, **lists,
                                meta_json=np.asarray(json.dumps(dict(meta))))
        else:
            body = {**dict(meta), **{k: np.asarray(v).tolist() for k, v in arrays.items()}}
            fh.write(json.dumps(body).encode())

    return atomic_write(path, write)
