"""Property-based fuzzing of the data file readers: each one loads its input or raises a one-line DataError.

The promise to users: a reader returns normally, or raises :class:`~crisscross.data.errors.DataError` (or a subclass
such as :class:`~crisscross.data.keypoints.KeypointError`) whose message is one line naming the file, and never
another exception. Hypothesis writes random garbage and near-valid files (a valid file with one thing broken: a
shape, a dtype, a NaN, a missing or extra key, a value of the wrong type at any level, truncated or corrupted bytes,
another text encoding) into a temporary folder and calls the reader on it.

Each test builds its folder with :func:`tempfile.TemporaryDirectory` in the test body, since pytest's ``tmp_path``
is created once per test, not once per example. Inputs that once escaped are pinned by the plain regression tests
at the end of the file, so they are checked on every run whatever Hypothesis draws.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pickle
import string
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from numpy.lib import format as npy_format

from crisscross.data.cache import ArrayCache
from crisscross.data.cmu import load_cmu
from crisscross.data.errors import DataError
from crisscross.data.h36m import expmap_file_positions, read_expmap_text
from crisscross.data.keypoints import KeypointError, read_keypoints
from crisscross.data.lifting_sources import (
    HUMANEVA_FILES,
    _check_h36m_npz,
    _check_humaneva,
    _expmap_arrays,
    _load_h36m_npz,
    _load_humaneva,
)
from crisscross.data.registry import DataDirReport
from crisscross.data.skeleton import CMU_SKELETON, H36M_SKELETON
from crisscross.data.user import load_user_motion, read_user_recording
from crisscross.data.videopose3d import H36M_2D_FILES, H36M_3D_FILE, read_positions_2d, read_positions_3d
from crisscross.inference.motion_files import read_motion

# The suite runs on 2 slow cores: a few dozen examples per reader, no per-example deadline (file I/O varies).
# CRISSCROSS_FUZZ_EXAMPLES=2000 fuzzes harder by hand, e.g. after changing a reader.
FUZZ = settings(max_examples=int(os.environ.get("CRISSCROSS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

Files = dict[str, bytes]


# ---------------------------------------------------------------------------------------------------------------------
# The property


def assert_loads_or_fails_cleanly(read: Callable[[], Any], *paths: Path, error: type[DataError] = DataError) -> Any:
    """Call ``read``: it returns (what it returns is returned), or raises ``error`` whose message is one line naming
    one of ``paths`` (None is returned). Any other exception propagates and fails the test, which is the point.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the promise is about exceptions; overflow or empty-mean warnings are fine
            result = read()
        event("read: loaded")  # --hypothesis-show-statistics tells how many near-valid inputs still load
        return result
    except error as err:
        event("read: refused")
        message = str(err)
        assert message.splitlines() == [message], f"message is not one line: {message!r}"
        assert any(p.name in message for p in paths), f"message names none of {[p.name for p in paths]}: {message!r}"
    return None


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``{relative name: bytes}`` under ``folder``."""
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# ---------------------------------------------------------------------------------------------------------------------
# Generic strategies: junk values, broken structures, corrupted bytes

HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64 + 1, 10**400, -(10**400)])
JSON_SCALARS = st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | st.text(max_size=8)
JSON_JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
# Keys a pickle can hold but JSON cannot: the VideoPose3D readers must check the key types themselves.
PICKLE_KEYS = st.text(max_size=6) | st.integers() | st.none() | st.tuples(st.integers()) | st.booleans()
NPZ_KEYS = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=8)

DTYPES = ("float32", "float16", "int64", "uint8", "bool", "complex128", "U8", "S8", "object", "datetime64[s]",
          "timedelta64[s]", "structured")

# What one example breaks: nothing (the file must load), the values, the structure (shapes, keys, types), the bytes
# (encoding, truncation, corruption), or several of these at once.
FAULTS = st.sampled_from(("none", "none", "values", "structure", "bytes", "several"))


def breaks(fault: str, part: str) -> bool:
    """Whether an example whose fault is ``fault`` breaks ``part`` (``values``, ``structure`` or ``bytes``)."""
    return fault in (part, "several")


def as_dtype(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` converted to ``dtype`` (zeros of it where numpy refuses the conversion)."""
    target = np.dtype([("a", "f8"), ("b", "i4")]) if dtype == "structured" else np.dtype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN to int and the like: the garbage value is what we want
        try:
            return values.astype(target)
        except (TypeError, ValueError):
            return np.zeros(values.shape, dtype=target)


@st.composite
def number_arrays(draw: st.DrawFn, shape: tuple[int, ...], broken: bool = False, scale: float = 1.0) -> np.ndarray:
    """Random float64 numbers of ``shape``; when ``broken``, maybe a NaN/inf/huge value or another dtype."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.normal(0.0, scale, shape)
    if not broken:
        return values
    values *= draw(st.sampled_from((1.0, 1e3, 1e300)))
    if values.size and draw(st.booleans()):
        values.flat[draw(st.integers(0, values.size - 1))] = draw(st.sampled_from((np.nan, np.inf, -np.inf, 1e308,
                                                                                   -0.0, 5e-324)))
    return as_dtype(values, draw(st.sampled_from(DTYPES))) if draw(st.booleans()) else values


@st.composite
def shaped_arrays(draw: st.DrawFn, frames: int, joints: int, dims: int, fault: str = "none",
                  scale: float = 1.0) -> np.ndarray:
    """``[frames, joints, dims]`` numbers; a wrong shape if ``fault`` breaks the structure (a missing or extra axis,
    0 or 1 frame, 0 joints), odd values or dtypes if it breaks the values."""
    shape: tuple[int, ...] = (frames, joints, dims)
    if breaks(fault, "structure"):
        shape = draw(st.sampled_from([
            shape, (frames, joints), (frames,), (), (frames, joints, dims + 1), (frames, joints, dims - 1),
            (frames, joints, dims, 1), (0, joints, dims), (frames, 0, dims), (1, joints, dims),
        ]))
    return draw(number_arrays(shape, breaks(fault, "values"), scale))


ARRAY_JUNK = st.one_of(
    st.tuples(st.lists(st.integers(0, 3), max_size=3), st.sampled_from(DTYPES), st.integers(0, 2**32 - 1)).map(
        lambda t: as_dtype(np.random.default_rng(t[2]).normal(size=tuple(t[0])), t[1])),
    st.sampled_from([np.array([]), np.array("text"), np.array(b"bytes"), np.array([np.nan]), np.array(True),
                     np.array([[1, 2], [3, 4]]), np.array(2**62), np.array(-1), np.array([-1] * 3)]),
)


def mutate(draw: st.DrawFn, value: Any, junk: st.SearchStrategy, keys: st.SearchStrategy = NPZ_KEYS) -> Any:
    """``value`` (nested dicts and lists) with at most one thing broken at one level.

    The level is chosen by descending into a random key or item; there the value is kept, replaced by ``junk``,
    emptied, wrapped in a list, or (for a container) loses an entry or gains one.
    """
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(list(value)))
        return {**value, key: mutate(draw, value[key], junk, keys)}
    if isinstance(value, list | tuple) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], mutate(draw, value[index], junk, keys), *value[index + 1:]]
    how = draw(st.sampled_from(("keep", "junk", "drop", "extra", "empty", "wrap")))
    if how == "junk":
        return draw(junk)
    if how == "drop" and isinstance(value, dict) and value:
        key = draw(st.sampled_from(list(value)))
        return {k: v for k, v in value.items() if k != key}
    if how == "drop" and isinstance(value, list | tuple) and value:
        return list(value[1:]) if draw(st.booleans()) else list(value[:-1])
    if how == "extra" and isinstance(value, dict):
        return {**value, draw(keys): draw(junk)}
    if how == "extra" and isinstance(value, list | tuple):
        return [*value, draw(junk)]
    if how == "empty":
        return type(value)() if isinstance(value, list | dict | str) else np.zeros((0,)) if isinstance(
            value, np.ndarray) else None
    if how == "wrap":
        return [value]
    return value


def corrupt(draw: st.DrawFn, data: bytes, broken: bool = True) -> bytes:
    """``data``, or if ``broken`` maybe truncated, with a byte changed, with junk inserted, or replaced by junk."""
    if not broken:
        return data
    how = draw(st.sampled_from(("keep", "truncate", "truncate", "flip", "insert", "junk", "empty")))
    if how == "truncate" and data:
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if how == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    if how == "junk":
        return draw(st.binary(max_size=200))
    if how == "empty":
        return b""
    return data


DEEP_JSON = (b"[" * 100_000) + (b"]" * 100_000)


def encode_text(draw: st.DrawFn, text: str, broken: bool = True) -> bytes:
    """``text`` in UTF-8, or if ``broken`` maybe with a BOM, in UTF-16 or Latin-1, truncated or corrupted."""
    if not broken:
        return text.encode()
    encoding = draw(st.sampled_from(("utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1")))
    return corrupt(draw, text.encode(encoding, errors="replace"))


@st.composite
def json_files(draw: st.DrawFn, valid: Any) -> bytes:
    """``valid`` as JSON text, maybe with one thing broken at any level, in another encoding or corrupted; now and
    then absurdly deep nesting instead."""
    fault = draw(FAULTS)
    if breaks(fault, "structure") and draw(st.integers(0, 10)) == 0:
        return DEEP_JSON
    value = mutate(draw, valid, JSON_JUNK, st.text(max_size=6)) if breaks(fault, "structure") else valid
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), default=str)  # str: bytes, complex, dates of odd dtypes
    return encode_text(draw, text, breaks(fault, "bytes"))


def object_member(value: Any) -> np.ndarray:
    """``value`` as np.savez stores it: an array as is, anything else as a 0-d object array (pickled)."""
    if isinstance(value, np.ndarray):
        return value
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def npz_bytes(arrays: Any, compressed: bool = False, default_key: str = "positions") -> bytes:
    """An npz file holding ``arrays`` (non-array values pickled, as np.savez does).

    ``arrays`` is a mutated dict of members: its non-string keys are left out (an npz member needs a name) and
    anything but a dict is stored as the one member ``default_key``.
    """
    if not isinstance(arrays, dict):
        arrays = {default_key: arrays}
    members = {}
    for key, value in arrays.items():
        if not (isinstance(key, str) and key):
            continue
        try:  # a list becomes a numeric or string array, as np.savez would make it
            members[key] = value if isinstance(value, np.ndarray) else np.asarray(value)
        except (ValueError, OverflowError):  # ragged lists and huge ints: stored pickled, which readers must refuse
            members[key] = object_member(value)
        if members[key].dtype.hasobject:  # keep dicts and lists whole (VideoPose3D pickles them as 0-d arrays)
            members[key] = object_member(value)
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **members)
    return buffer.getvalue()


def npy_bytes(array: Any) -> bytes:
    """An npy file holding ``array`` (object arrays pickled)."""
    buffer = io.BytesIO()
    np.save(buffer, object_member(array), allow_pickle=True)
    return buffer.getvalue()


def npy_header(shape: Any, descr: Any = "<f8", fortran: Any = False) -> bytes:
    """An npy version 1.0 header declaring ``shape`` and ``descr``, whatever they are."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return npy_format.magic(1, 0) + len(header).to_bytes(2, "little") + header


# An npy whose header lies: a huge or negative shape, an unknown dtype, a broken header; then a few data bytes.
LYING_NPY = st.builds(
    lambda shape, descr, fortran, tail: npy_header(shape, descr, fortran) + tail,
    st.sampled_from([(10**10,), (10**12, 3), (2**62,), (2**40, 2**40), (-1, 3), (3,), (), (2, 17, 3), (1.5,), "x",
                     (10**9, 17, 3)]),
    st.sampled_from(["<f8", "|O", "<U3", "junk", "<f8<", 3, "|V8", "<i8"]),
    st.sampled_from([False, True, "yes"]),
    st.binary(max_size=48),
)


@st.composite
def npz_with_lying_member(draw: st.DrawFn, key: str) -> bytes:
    """An npz whose member ``key`` has a lying header (see :data:`LYING_NPY`) or a junk pickle payload."""
    if draw(st.booleans()):
        member = draw(LYING_NPY)
    else:
        member = npy_header((), "|O") + draw(st.binary(max_size=64) | st.sampled_from(
            [pickle.dumps({"a": 1})[:-3], b"\x80\x04K\x01.", pickle.dumps(1 + 2j), b"(" * 5000]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{key}.npy", member)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------------
# Human3.6M and CMU exp-map text

ODD_TOKENS = st.sampled_from(
    ["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-1e999", "1_0", "0x1F", "1.2.3", "+-1", "\u0663", "1e", ".",
     "True", "None", "\t1", "1 2", "\x00", "\u00e9", "\ufeff1", '"1"', "1;2", "1e308", "5e-324", "\x0c", "\u2028"]
) | st.text(max_size=5)


@st.composite
def expmap_texts(draw: st.DrawFn, num_values: int) -> bytes:
    """Exp-map text of 0 to 4 frames; depending on the fault, odd tokens, short or long or blank lines and other line
    ends, or another encoding and corrupted bytes."""
    fault = draw(FAULTS)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from((0.3, 100.0, 1e300))) if breaks(fault, "values") else 0.3
    frames = draw(st.integers(0, 4) if breaks(fault, "structure") else st.integers(1, 4))
    rows = [[repr(float(v)) for v in rng.normal(0.0, scale, num_values)] for _ in range(frames)]
    if breaks(fault, "values") and rows:
        for _ in range(draw(st.integers(1, 2))):
            row = rows[draw(st.integers(0, len(rows) - 1))]
            row[draw(st.integers(0, len(row) - 1))] = draw(ODD_TOKENS)
    if breaks(fault, "structure") and rows:
        row = rows[draw(st.integers(0, len(rows) - 1))]
        how = draw(st.sampled_from(("cut", "extra", "blank")))
        if how == "cut":
            del row[draw(st.integers(0, len(row))):]
        elif how == "extra":
            row.append(draw(ODD_TOKENS | st.just("0.5")))
        else:
            row[:] = [draw(st.sampled_from(("", " ", "\t")))]
    newline, end = "\n", "\n"
    if breaks(fault, "structure"):
        newline = draw(st.sampled_from(("\n", "\r\n", "\r", "\n\n", "\n \n")))
        end = draw(st.sampled_from(("", "\n", " \n", "\n\x00", "\n#")))
    return encode_text(draw, newline.join(",".join(row) for row in rows) + end, breaks(fault, "bytes"))


@FUZZ
@given(data=expmap_texts(99))
def test_h36m_expmap_reader_loads_or_raises_one_line(data: bytes) -> None:
    """H3.6M exp-map text (99 values a line): the parser and the parse + FK step."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "walking_1.txt"
        path.write_bytes(data)
        assert_loads_or_fails_cleanly(lambda: read_expmap_text(path, 99), path)
        positions = assert_loads_or_fails_cleanly(lambda: expmap_file_positions(path, H36M_SKELETON), path)
        assert positions is None or np.isfinite(positions).all()


@FUZZ
@given(data=expmap_texts(117))
def test_cmu_expmap_reader_loads_or_raises_one_line(data: bytes) -> None:
    """CMU exp-map text (117 values a line): parse + FK, and the whole ``load_cmu`` on a one-file folder."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train" / "walking" / "walking_1.txt"
        write_files(Path(tmp), {"train/walking/walking_1.txt": data})
        positions = assert_loads_or_fails_cleanly(lambda: expmap_file_positions(path, CMU_SKELETON), path)
        assert positions is None or np.isfinite(positions).all()
        assert_loads_or_fails_cleanly(lambda: load_cmu("trainval", tmp), path)


@FUZZ
@given(data=expmap_texts(99))
def test_h36m_expmap_lifting_source_loads_or_raises_one_line(data: bytes) -> None:
    """The ``h36m-expmap`` lifting source: parse, world frame (root integration, floor fit), 4 camera views."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "S1" / "walking_1.txt"
        write_files(Path(tmp), {"S1/walking_1.txt": data})
        cache = ArrayCache(Path(tmp) / "cache")
        arrays = assert_loads_or_fails_cleanly(lambda: _expmap_arrays(path, "S1", cache), path)
        assert arrays is None or all(np.isfinite(a).all() for a in arrays.values())


# ---------------------------------------------------------------------------------------------------------------------
# User recordings (.npz / .npy + sidecar)


def user_meta(joints: int) -> dict[str, Any]:
    """A valid description of a ``joints``-joint chain."""
    return {"parents": [-1, *range(joints - 1)], "joint_names": [f"joint{j}" for j in range(joints)], "fps": 50.0,
            "units": "m", "action": "walk", "vertical_axis": 1, "lateral_axis": 0}


@st.composite
def user_recordings(draw: st.DrawFn) -> Files:
    """A ``.npz`` (description inside) or ``.npy`` + sidecar recording; depending on the fault, odd values or dtypes,
    a broken shape or description (at any level, in the npz or the sidecar), or corrupted bytes."""
    fault = draw(FAULTS)
    joints = draw(st.integers(1, 3))
    positions = draw(shaped_arrays(draw(st.sampled_from((2, 3, 6))), joints, 3, fault))
    kind = draw(st.sampled_from(("npz", "npz", "npz+yaml", "npy+yaml", "npy+json", "npy+skeleton")))
    meta: Any = user_meta(joints)
    if breaks(fault, "values"):
        key = draw(st.sampled_from(list(meta)))
        meta[key] = draw(st.sampled_from((0, -1, 1e-300, 1e300, float("nan"), 2**63, "", "x\ny", -(2**70))))
    if breaks(fault, "structure"):
        meta = mutate(draw, meta, JSON_JUNK | ARRAY_JUNK if kind == "npz" else JSON_JUNK)
    files: Files = {}
    if kind.startswith("npz"):
        arrays = {"positions": positions, **meta} if isinstance(meta, dict) else {"positions": positions}
        files["take.npz"] = corrupt(draw, npz_bytes(arrays, compressed=draw(st.booleans())), breaks(fault, "bytes"))
    else:
        npy = draw(LYING_NPY) if breaks(fault, "bytes") and draw(st.booleans()) else npy_bytes(positions)
        files["take.npy"] = corrupt(draw, npy, breaks(fault, "bytes"))
    if "+" in kind:
        name = {"yaml": "take.yaml", "json": "take.json", "skeleton": "skeleton.yaml"}[kind.split("+")[1]]
        if breaks(fault, "bytes") and draw(st.booleans()):
            text = draw(st.sampled_from(["key: [unclosed\n  - x", "a: b: c", "- [", "{", "\t- tab", "[" * 500,
                                         "!!python/object:os.system {}", "%YAML 9.9\n---\na: 1", "&a [*a]",
                                         "fps: 2001-01-01", "parents: !!set {1, 2}", "fps: !!binary aGVsbG8="]))
        else:
            text = json.dumps(meta) if name.endswith(".json") else yaml.safe_dump(meta)
        files[name] = encode_text(draw, text, breaks(fault, "bytes"))
    return files


def _recording(folder: Path, files: Files) -> Path:
    return folder / next(name for name in files if name.endswith((".npz", ".npy")))


@FUZZ
@given(files=user_recordings())
def test_user_recording_reader_loads_or_raises_one_line(files: Files) -> None:
    """``read_user_recording`` and ``load_user_motion`` (which also resamples) on one recording file."""
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        path = _recording(Path(tmp), files)
        names = [Path(tmp) / name for name in files]
        assert_loads_or_fails_cleanly(lambda: read_user_recording(path), *names)
        assert_loads_or_fails_cleanly(lambda: load_user_motion(path), *names)


# ---------------------------------------------------------------------------------------------------------------------
# VideoPose3D npz files and the lifting sources that read them


def vp3d_3d(draw: st.DrawFn, subjects: tuple[str, ...], actions: tuple[str, ...], joints: int,
            fault: str = "none") -> dict:
    """``{subject: {action: (T, joints, 3)}}`` metres; odd values or dtypes if ``fault`` breaks the values."""
    return {s: {a: draw(number_arrays((draw(st.integers(1, 4)), joints, 3), breaks(fault, "values")))
                for a in actions}
            for s in subjects}


def vp3d_2d(positions_3d: dict, joints: int, cameras: int, extra: int = 0) -> dict:
    """2D positions matching ``positions_3d``: ``cameras`` arrays (T + ``extra``, joints, 2) per action, pixels."""
    rng = np.random.default_rng(0)
    return {s: {a: [rng.uniform(0, 640, (len(v) + extra, joints, 2)).astype(np.float32) for _ in range(cameras)]
                for a, v in actions.items()}
            for s, actions in positions_3d.items()}


def vp3d_metadata(joints: int) -> dict:
    """``metadata`` of a 2D file with a plausible left/right symmetry."""
    return {"layout_name": "test", "num_joints": joints, "keypoints_symmetry": [[1, 2], [3, 4]]}


VP3D_JUNK = JSON_JUNK | ARRAY_JUNK | st.sampled_from([{1, 2}, (1, 2), b"bytes", 1 + 2j, frozenset()])


@st.composite
def vp3d_3d_files(draw: st.DrawFn) -> bytes:
    """A ``positions_3d`` npz; depending on the fault, odd values or dtypes, one thing broken at any level of the
    pickled dict (keys of any type included), or a corrupted file or one with a lying member."""
    fault = draw(FAULTS)
    if breaks(fault, "bytes") and draw(st.integers(0, 2)) == 0:
        return draw(npz_with_lying_member("positions_3d"))
    members: Any = {"positions_3d": vp3d_3d(draw, ("S1", "S5"), ("Walking", "Eating 2"), 17, fault)}
    if breaks(fault, "structure"):
        members = mutate(draw, members, VP3D_JUNK, PICKLE_KEYS)
    data = npz_bytes(members, compressed=draw(st.booleans()), default_key="positions_3d")
    return corrupt(draw, data, breaks(fault, "bytes"))


@st.composite
def vp3d_2d_files(draw: st.DrawFn) -> bytes:
    """A ``positions_2d`` + ``metadata`` npz; faults as :func:`vp3d_3d_files`."""
    fault = draw(FAULTS)
    if breaks(fault, "bytes") and draw(st.integers(0, 2)) == 0:
        return draw(npz_with_lying_member(draw(st.sampled_from(("positions_2d", "metadata")))))
    positions_2d = vp3d_2d(vp3d_3d(draw, ("S1",), ("Walking", "Eating 2"), 17), 17, 2)
    if breaks(fault, "values"):
        views = positions_2d["S1"]["Walking"]
        views[0] = draw(number_arrays(views[0].shape, broken=True))
    members: Any = {"positions_2d": positions_2d, "metadata": vp3d_metadata(17)}
    if breaks(fault, "structure"):
        members = mutate(draw, members, VP3D_JUNK, PICKLE_KEYS)
    data = npz_bytes(members, compressed=draw(st.booleans()), default_key="positions_2d")
    return corrupt(draw, data, breaks(fault, "bytes"))


@FUZZ
@given(data=vp3d_3d_files())
def test_videopose3d_3d_reader_loads_or_raises_one_line(data: bytes) -> None:
    """``read_positions_3d`` with and without a fixed joint count."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / H36M_3D_FILE
        path.write_bytes(data)
        assert_loads_or_fails_cleanly(lambda: read_positions_3d(path), path)
        assert_loads_or_fails_cleanly(lambda: read_positions_3d(path, joints=17), path)


@FUZZ
@given(data=vp3d_2d_files())
def test_videopose3d_2d_reader_loads_or_raises_one_line(data: bytes) -> None:
    """``read_positions_2d`` with and without a fixed joint and camera count."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / H36M_2D_FILES["gt"]
        path.write_bytes(data)
        assert_loads_or_fails_cleanly(lambda: read_positions_2d(path), path)
        assert_loads_or_fails_cleanly(lambda: read_positions_2d(path, joints=17, cameras=2), path)


@st.composite
def lifting_npz_pairs(draw: st.DrawFn, dataset: str) -> Files:
    """A 3D and a 2D npz of ``dataset`` (``humaneva`` or ``h36m``), each valid alone, that may disagree: a subject
    or action on one side only, a 2D sequence shorter or longer than its 3D one, another camera count."""
    if dataset == "humaneva":
        subjects, actions, joints_3d, joints_2d, cameras = ("Train/S1", "Validate/S2"), ("Walking 1 chunk0", "Box 1"), \
            15, 15, 3
        names = HUMANEVA_FILES
    else:
        subjects, actions, joints_3d, joints_2d, cameras = ("S1", "S9"), ("Walking 1", "Directions"), 32, 17, 4
        names = (H36M_3D_FILE, H36M_2D_FILES["gt"])
    positions_3d = vp3d_3d(draw, subjects, actions, joints_3d)
    positions_2d = vp3d_2d(positions_3d, joints_2d, cameras, extra=draw(st.sampled_from((0, 0, 2, -1))))
    how = draw(st.sampled_from(("keep", "drop_subject_2d", "drop_subject_3d", "drop_action_2d", "drop_action_3d",
                                "camera", "mutate")))
    subject, action = draw(st.sampled_from(subjects)), draw(st.sampled_from(actions))
    if how == "drop_subject_2d":
        del positions_2d[subject]
    elif how == "drop_subject_3d":
        del positions_3d[subject]
    elif how == "drop_action_2d":
        del positions_2d[subject][action]
    elif how == "drop_action_3d":
        del positions_3d[subject][action]
    elif how == "camera":
        positions_2d[subject][action] = positions_2d[subject][action][:-1]
    elif how == "mutate":
        positions_3d = mutate(draw, positions_3d, VP3D_JUNK)
        positions_2d = mutate(draw, positions_2d, VP3D_JUNK)
    return {names[0]: npz_bytes({"positions_3d": positions_3d}),
            names[1]: npz_bytes({"positions_2d": positions_2d, "metadata": vp3d_metadata(joints_2d)})}


@FUZZ
@given(files=lifting_npz_pairs("humaneva"))
def test_humaneva_lifting_source_loads_or_raises_one_line(files: Files) -> None:
    """The ``humaneva`` loader (both splits) and its data-folder check on a pair of npz files."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(folder, files)
        paths = [folder / name for name in files]
        cache = ArrayCache(folder / "cache")
        for split in ("train", "test"):
            assert_loads_or_fails_cleanly(lambda s=split: _load_humaneva(s, folder, cache, None), *paths)
        report = DataDirReport("humaneva", folder)
        _check_humaneva(report, cache)  # records problems in the report; must not raise
        for message in report.malformed + report.errors:
            assert message.splitlines() == [message] and any(p.name in message for p in paths), message


@FUZZ
@given(files=lifting_npz_pairs("h36m"))
def test_h36m_npz_lifting_source_loads_or_raises_one_line(files: Files) -> None:
    """The ``h36m-npz`` loader (both splits) and its data-folder check on a pair of npz files."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(folder, files)
        paths = [folder / name for name in files]
        cache = ArrayCache(folder / "cache")
        load = _load_h36m_npz("gt", "h36m-npz")
        for split in ("train", "test"):
            assert_loads_or_fails_cleanly(lambda s=split: load(s, folder, cache, None), *paths)
        report = DataDirReport("h36m-npz", folder)
        _check_h36m_npz("gt", "h36m-npz")(report, cache)  # records problems in the report; must not raise
        for message in report.malformed + report.errors:
            assert message.splitlines() == [message] and any(p.name in message for p in paths), message


# ---------------------------------------------------------------------------------------------------------------------
# 2D keypoints (MMPose, COCO results, OpenPose, MediaPipe, npz/npy)


def _points(rng: np.random.Generator, count: int) -> list[list[float]]:
    return rng.uniform(0, 640, (count, 2)).round(2).tolist()


def mmpose_frames(rng: np.random.Generator, frames: int, count: int) -> list[dict]:
    """MMPoseInferencer's per-frame list: one or two instances per frame."""
    return [{"frame_id": t, "instances": [{"keypoints": _points(rng, count),
                                           "keypoint_scores": rng.uniform(0, 1, count).round(3).tolist(),
                                           "bbox": [[0.0, 0.0, 10.0, 10.0]], "bbox_score": 0.9}
                                          for _ in range(1 + t % 2)]}
            for t in range(frames)]


def coco_results(rng: np.random.Generator, frames: int, count: int) -> list[dict]:
    """AlphaPose / Detectron2 COCO keypoint results, image ids as names."""
    return [{"image_id": f"{t}.jpg", "category_id": 1, "score": 0.9,
             "keypoints": np.column_stack([rng.uniform(0, 640, (count, 2)), rng.uniform(0, 1, count)]).round(2)
             .ravel().tolist()}
            for t in range(frames)]


def openpose_frame(rng: np.random.Generator, people: int) -> dict:
    """One OpenPose ``*_keypoints.json``: BODY_25 people plus the empty face/hand fields."""
    return {"version": 1.3, "people": [
        {"person_id": [-1], "face_keypoints_2d": [],
         "pose_keypoints_2d": np.column_stack([rng.uniform(0, 640, (25, 2)), rng.uniform(0, 1, 25)]).round(2)
         .ravel().tolist()} for _ in range(people)]}


def mediapipe_frames(rng: np.random.Generator, frames: int, style: str) -> Any:
    """MediaPipe frames as a bare list, a ``frames`` object, Tasks ``pose_landmarks`` or legacy ``landmark``."""
    def landmarks() -> list[dict]:
        return [{"x": float(x), "y": float(y), "z": 0.0, "visibility": float(v)}
                for x, y, v in rng.uniform(0, 1, (33, 3)).round(3)]

    items: list[Any] = [landmarks() for _ in range(frames)]
    if style == "tasks":
        items = [{"pose_landmarks": [lm]} for lm in items]
    elif style == "legacy":
        items = [{"landmark": lm} for lm in items]
    if style == "object":
        return {"frames": items, "image_width": 640, "image_height": 480, "fps": 30}
    return items


@st.composite
def keypoint_files(draw: st.DrawFn) -> Files:
    """One keypoint file (or an OpenPose folder) of any supported format; depending on the fault, odd values or
    dtypes, a broken structure (at any level), or another encoding and corrupted bytes."""
    fault = draw(FAULTS)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames = draw(st.integers(0, 3) if breaks(fault, "structure") else st.integers(1, 3))
    count = draw(st.sampled_from((17, 26, 25, 33, 15, 5) if breaks(fault, "structure") else (17, 26, 25, 33, 15)))
    kind = draw(st.sampled_from(("mmpose", "mmpose-meta", "mmpose-image", "coco", "openpose", "openpose-folder",
                                 "mediapipe", "mediapipe-object", "mediapipe-tasks", "mediapipe-legacy", "npz", "npy")))
    if kind in ("npz", "npy"):
        keypoints = draw(shaped_arrays(frames, count, draw(st.sampled_from((2, 3))), fault, scale=100.0))
        if kind == "npy":
            npy = draw(LYING_NPY) if breaks(fault, "bytes") and draw(st.booleans()) else npy_bytes(keypoints)
            return {"pose.npy": corrupt(draw, npy, breaks(fault, "bytes"))}
        arrays: Any = {"keypoints": keypoints, "scores": np.ones((frames, count)), "image_size": np.array([640, 480]),
                       "fps": np.array(30.0), "layout": np.array(draw(st.sampled_from(("coco17", "body25"))))}
        if count not in (17, 26):
            del arrays["layout"]
        if breaks(fault, "values"):
            key = draw(st.sampled_from(["scores", "image_size", "fps"]))
            arrays[key] = draw(ARRAY_JUNK)
        if breaks(fault, "structure"):
            arrays = mutate(draw, arrays, ARRAY_JUNK | JSON_JUNK)
        data = npz_bytes(arrays, compressed=draw(st.booleans()), default_key="keypoints")
        return {"pose.npz": corrupt(draw, data, breaks(fault, "bytes"))}
    if kind == "openpose-folder":
        return {f"video/video_{t:012d}_keypoints.json": draw(json_files(openpose_frame(rng, t % 3)))
                for t in range(max(frames, 1))}
    valid: Any
    if kind == "mmpose":
        valid = mmpose_frames(rng, frames, count)
    elif kind == "mmpose-meta":
        valid = {"meta_info": {"dataset_name": draw(st.sampled_from(("coco", "h36m")))},
                 "instance_info": mmpose_frames(rng, frames, count)}
    elif kind == "mmpose-image":
        valid = mmpose_frames(rng, 1, count)[0]["instances"]
    elif kind == "coco":
        valid = coco_results(rng, frames, count)
    elif kind == "openpose":
        valid = openpose_frame(rng, frames)
    else:
        valid = mediapipe_frames(rng, frames, kind.partition("-")[2] or "list")
    name = "000000000007_keypoints.json" if kind == "openpose" else "pose.json"
    return {name: draw(json_files(valid))}


@FUZZ
@given(files=keypoint_files())
def test_keypoint_reader_loads_or_raises_one_line(files: Files) -> None:
    """``read_keypoints`` on every format; OpenPose folders are read as a folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_files(folder, files)
        first = folder / next(iter(files))
        path = first.parent if first.parent != folder else first
        assert_loads_or_fails_cleanly(lambda: read_keypoints(path), path, error=KeypointError)
        # A MediaPipe file without an image size is refused; with one given it is read through the scaling too.
        assert_loads_or_fails_cleanly(lambda: read_keypoints(path, image_size=(640, 480)), path, error=KeypointError)


# ---------------------------------------------------------------------------------------------------------------------
# 3D recordings for inference (.npz / .npy / .csv / .json)


def csv_text(draw: st.DrawFn, positions: np.ndarray, fault: str) -> str:
    """``positions`` as CSV (header ``frame, j0_x, ...`` or none), maybe with a cell or row broken."""
    flat = positions.reshape(-1, 1) if positions.ndim < 2 else positions.reshape(len(positions),
                                                                                 math.prod(positions.shape[1:]))
    rows = [[str(v) for v in row] for row in flat.tolist()]
    header = draw(st.sampled_from(("names", "frame", "none")))
    names = [f"j{j}_{axis}" for j in range(flat.shape[1] // 3) for axis in "xyz"]
    if header == "frame":
        names = ["frame", *names]
        rows = [[str(t), *row] for t, row in enumerate(rows)]
    table = ([names] if header != "none" else []) + rows
    if (breaks(fault, "values") or breaks(fault, "structure")) and table:
        row = table[draw(st.integers(0, len(table) - 1))]
        how = draw(st.sampled_from(("cell", "cut", "extra")))
        if how == "cell" and row:
            row[draw(st.integers(0, len(row) - 1))] = draw(ODD_TOKENS | st.sampled_from(('a"b', "x\ny", "j0_w",
                                                                                          "x" * 200_000)))
        elif how == "cut":
            del row[draw(st.integers(0, len(row))):]
        else:
            row.append(draw(ODD_TOKENS))
    out = io.StringIO()
    terminator = draw(st.sampled_from(("\n", "\r\n", "\r"))) if breaks(fault, "structure") else "\n"
    csv.writer(out, lineterminator=terminator).writerows(table)
    return out.getvalue()


@st.composite
def motion_files(draw: st.DrawFn) -> Files:
    """A 3D recording in one of the four input formats; depending on the fault, odd values or dtypes, a broken
    structure (at any level), or another encoding and corrupted bytes."""
    fault = draw(FAULTS)
    joints = draw(st.integers(1, 3))
    positions = draw(shaped_arrays(draw(st.sampled_from((1, 2, 4))), joints, 3, fault))
    meta: dict[str, Any] = {"fps": 25.0, "units": "mm", "joints": [f"j{j}" for j in range(joints)]}
    if breaks(fault, "values"):
        key = draw(st.sampled_from(list(meta)))
        meta[key] = draw(st.sampled_from((0, -1, 1e-300, 1e300, float("nan"), 2**63, "", "x\ny", -(2**70), True,
                                          "25", ["mm"], None)))
    kind = draw(st.sampled_from(("npz", "npy", "csv", "json")))
    if kind == "npy":
        npy = draw(LYING_NPY) if breaks(fault, "bytes") and draw(st.booleans()) else npy_bytes(positions)
        return {"take.npy": corrupt(draw, npy, breaks(fault, "bytes"))}
    if kind == "csv":
        return {"take.csv": encode_text(draw, csv_text(draw, positions, fault), breaks(fault, "bytes"))}
    if kind == "json":
        listed = positions.tolist()
        valid = {"positions": listed, **meta} if draw(st.booleans()) else listed
        return {"take.json": draw(json_files(valid))}
    arrays: Any = {"positions": positions, **meta}
    if breaks(fault, "structure"):
        arrays = mutate(draw, arrays, JSON_JUNK | ARRAY_JUNK)
    data = npz_bytes(arrays, compressed=draw(st.booleans()))
    return {"take.npz": corrupt(draw, data, breaks(fault, "bytes"))}


@FUZZ
@given(files=motion_files())
def test_motion_file_reader_loads_or_raises_one_line(files: Files) -> None:
    """``read_motion`` (the ``predict`` input reader) on every input format."""
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        path = Path(tmp) / next(iter(files))
        assert_loads_or_fails_cleanly(lambda: read_motion(path), path)


# ---------------------------------------------------------------------------------------------------------------------
# Plain regression tests: inputs that once escaped as another exception or a multi-line message


def fails_cleanly(read: Callable[[], object], path: Path, error: type[DataError] = DataError) -> str:
    """The message of the ``error`` that ``read()`` must raise, checked to be one line naming ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error) as caught:
            read()
    message = str(caught.value)
    assert message.splitlines() == [message], f"message is not one line: {message!r}"
    assert path.name in message, f"message does not name {path.name}: {message!r}"
    return message


def zip_with_flags(member: str, data: bytes, flag_bits: int = 0, method: int | None = None) -> bytes:
    """A one-member zip whose headers claim ``flag_bits`` (1: encrypted) and compression ``method``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
    raw = bytearray(buffer.getvalue())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local header, central directory
        at = raw.index(signature) + flags_at
        raw[at] |= flag_bits
        if method is not None:
            raw[at + 2:at + 4] = method.to_bytes(2, "little")
    return bytes(raw)


def one_member_npz(member: str, data: bytes) -> bytes:
    """A zip holding ``data`` as ``member``, however broken ``data`` is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member, data)
    return buffer.getvalue()


HUGE_NPY = npy_header((10**10,)) + b"\0" * 16  # declares 74.5 GiB: np.load raised MemoryError
# A header byte flipped so that the dict no longer parses: numpy's repair of old headers raised tokenize.TokenError.
BROKEN_HEADER_NPY = npy_header((2, 1, 3)).replace(b"(2, 1, 3)", b"(2, 1, 3(") + b"\0" * 48
ENCRYPTED = 0x1  # the zip flag bit for an encrypted entry: zipfile raised RuntimeError (no password)
AES = 99  # a compression method zipfile does not support: NotImplementedError
# Shared by the npz readers: damaged files that escaped as EOFError, BadZipFile, RuntimeError, NotImplementedError,
# MemoryError, tokenize.TokenError, TypeError (an npy under a .npz name) or AttributeError (an npz as .npy).
DAMAGED_NPZ = {
    "empty": b"",
    "zip-signature-then-junk": b"PK\x03\x04garbage",
    "encrypted-member": zip_with_flags("positions.npy", npy_bytes(np.zeros((2, 1, 3))), flag_bits=ENCRYPTED),
    "unsupported-compression": zip_with_flags("positions.npy", npy_bytes(np.zeros((2, 1, 3))), method=AES),
    "member-declares-74-GiB": one_member_npz("positions.npy", HUGE_NPY),
    "member-header-unparsable": one_member_npz("positions.npy", BROKEN_HEADER_NPY),
    "an-npy-named-npz": npy_bytes(np.zeros((2, 1, 3))),
}
DAMAGED_NPY = {
    "empty": b"",
    "declares-74-GiB": HUGE_NPY,
    "header-unparsable": BROKEN_HEADER_NPY,
    "an-npz-named-npy": npz_bytes({"positions": np.zeros((2, 1, 3))}),
}


@pytest.mark.parametrize("skeleton", [H36M_SKELETON, CMU_SKELETON], ids=["h36m", "cmu"])
def test_expmap_values_that_overflow_forward_kinematics_are_refused(tmp_path: Path, skeleton) -> None:
    """1e300 is a finite number, but the rotations overflow: positions were NaN, silently."""
    path = tmp_path / "walking_1.txt"
    path.write_text("\n".join(",".join(["1e300"] * skeleton.num_angle_values) for _ in range(3)))
    assert "too large" in fails_cleanly(lambda: expmap_file_positions(path, skeleton), path)


def test_expmap_lifting_source_refuses_values_that_overflow(tmp_path: Path) -> None:
    """The h36m-expmap world frame raised numpy.linalg.LinAlgError (SVD did not converge) from the floor fit."""
    path = tmp_path / "S1" / "walking_1.txt"
    path.parent.mkdir()
    values = np.random.default_rng(0).normal(0.0, 1e300, (2, 99))
    path.write_text("\n".join(",".join(repr(float(v)) for v in row) for row in values))
    assert "too large" in fails_cleanly(lambda: _expmap_arrays(path, "S1", ArrayCache(tmp_path / "cache")), path)


@pytest.mark.parametrize("name", sorted(DAMAGED_NPZ))
def test_damaged_npz_files_are_refused(tmp_path: Path, name: str) -> None:
    """Every npz reader: user recordings, keypoints, 3D motion, VideoPose3D (its members are ``positions_3d``)."""
    data = DAMAGED_NPZ[name]
    for read, file_name in ((read_user_recording, "take.npz"), (read_motion, "take.npz"),
                            (read_keypoints, "pose.npz")):
        path = tmp_path / file_name
        path.write_bytes(data)
        fails_cleanly(lambda r=read, p=path: r(p), path)
    path = tmp_path / H36M_3D_FILE
    path.write_bytes(data.replace(b"positions.npy", b"positions_3d.npy"))
    fails_cleanly(lambda: read_positions_3d(path), path)


def test_npz_member_names_with_a_line_break_stay_on_one_line(tmp_path: Path) -> None:
    """A flipped byte turned ``positions_2d.npy`` into ``positions_\\nd.npy``: the list of keys broke the line."""
    data = one_member_npz("positions_\nd.npy", npy_bytes(np.zeros((2, 17, 2))))
    for read, file_name in ((read_positions_2d, H36M_2D_FILES["gt"]), (read_user_recording, "take.npz")):
        path = tmp_path / file_name
        path.write_bytes(data)
        assert "positions_" in fails_cleanly(lambda r=read, p=path: r(p), path)


@pytest.mark.parametrize("name", sorted(DAMAGED_NPY))
def test_damaged_npy_files_are_refused(tmp_path: Path, name: str) -> None:
    """Every npy reader: user recordings (with a valid sidecar), keypoints, 3D motion."""
    (tmp_path / "take.yaml").write_text(yaml.safe_dump(user_meta(1)))
    for read, file_name in ((read_user_recording, "take.npy"), (read_motion, "take.npy"),
                            (read_keypoints, "pose.npy")):
        path = tmp_path / file_name
        path.write_bytes(DAMAGED_NPY[name])
        fails_cleanly(lambda r=read, p=path: r(p), path)


@pytest.mark.parametrize(("sidecar", "expected"), [
    # YAML errors span several lines; so did the message
    pytest.param("a: b: c\n", "cannot parse", id="yaml-syntax"),
    pytest.param("- [\n", "cannot parse", id="yaml-unclosed"),
    pytest.param("[" * 500 + "\n", "cannot parse", id="yaml-deep"),  # RecursionError
    pytest.param("parents: [-1, .nan]\nfps: 25\n", "whole numbers", id="parent-nan"),  # ValueError from int(nan)
    pytest.param("parents: [-1, x]\nfps: 25\n", "whole numbers", id="parent-word"),  # ValueError from int('x')
    pytest.param("parents: [-1, null]\nfps: 25\n", "whole numbers", id="parent-null"),  # TypeError from int(None)
    pytest.param("parents: [[-1], [0, 1]]\nfps: 25\n", "whole numbers", id="parents-ragged"),  # numpy ValueError
    pytest.param("parents: [-1, 0]\nfps: []\n", "one number", id="fps-empty"),  # IndexError
    pytest.param("parents: [-1, 0]\nfps: fast\n", "one number", id="fps-word"),  # ValueError from float()
    pytest.param("parents: [-1, 0]\nfps: {a: 1}\n", "one number", id="fps-mapping"),  # TypeError from float()
    pytest.param("parents: [-1, 0]\nfps: 25\nvertical_axis: up\n", "vertical_axis", id="axis-word"),  # ValueError
    pytest.param("parents: [-1, 0]\nfps: 25\nvertical_axis: 7\n", "axes", id="axis-7"),
    pytest.param("parents: [-1, 0]\nfps: 25\njoint_names: [[a], [b, c]]\n", "joint_names", id="names-ragged"),
    pytest.param("parents: [0, 0]\nfps: 25\njoint_names: [\"a\\nb\", c]\n", "earlier joint",
                 id="name-with-line-break"),  # the name went into the message as it is
])
def test_user_recording_description_errors_are_one_line(tmp_path: Path, sidecar: str, expected: str) -> None:
    """Sidecar descriptions of a 2-joint recording that escaped or gave a multi-line message."""
    path = tmp_path / "take.npy"
    np.save(path, np.zeros((4, 2, 3)))
    (tmp_path / "take.yaml").write_text(sidecar)
    assert expected in fails_cleanly(lambda: read_user_recording(path), tmp_path / "take.yaml"
                                     if expected == "cannot parse" else path)


def test_user_recording_with_an_absurdly_low_fps_is_refused(tmp_path: Path) -> None:
    """fps 1e-300 passed the reader, then resampling to 25 fps raised ValueError (maximum allowed size exceeded)."""
    path = tmp_path / "take.npz"
    np.savez(path, positions=np.zeros((4, 1, 3)), parents=[-1], fps=1e-300)
    assert "implausibly low" in fails_cleanly(lambda: load_user_motion(path), path)


def test_user_recording_without_joints_is_refused(tmp_path: Path) -> None:
    """Positions [T, 0, 3] were read, then loading raised ValueError looking for the root joint."""
    path = tmp_path / "take.npz"
    np.savez(path, positions=np.zeros((4, 0, 3)), parents=np.zeros(0, dtype=int), fps=25.0)
    fails_cleanly(lambda: read_user_recording(path), path)
    fails_cleanly(lambda: load_user_motion(path), path)


def _vp3d_pair(folder: Path, dataset: str, positions_2d_edit: Callable[[dict], None]) -> tuple[Path, Path]:
    """A valid 3D and 2D npz pair of ``dataset`` with ``positions_2d_edit`` applied to the 2D positions."""
    rng = np.random.default_rng(0)
    if dataset == "humaneva":
        subjects, joints_3d, joints_2d, cameras, names = ("Train/S1", "Train/S2"), 15, 15, 3, HUMANEVA_FILES
    else:
        subjects, joints_3d, joints_2d, cameras, names = ("S1", "S5"), 32, 17, 4, (H36M_3D_FILE, H36M_2D_FILES["gt"])
    positions_3d = {s: {"Walking 1": rng.normal(size=(5, joints_3d, 3)).astype(np.float32)} for s in subjects}
    positions_2d = vp3d_2d(positions_3d, joints_2d, cameras)
    positions_2d_edit(positions_2d)
    path_3d, path_2d = folder / names[0], folder / names[1]
    path_3d.write_bytes(npz_bytes({"positions_3d": positions_3d}))
    path_2d.write_bytes(npz_bytes({"positions_2d": positions_2d, "metadata": vp3d_metadata(joints_2d)}))
    return path_3d, path_2d


def _drop_subject(positions_2d: dict) -> None:
    del positions_2d[next(iter(positions_2d))]


def _shorten(positions_2d: dict) -> None:
    for actions in positions_2d.values():
        for action, views in actions.items():
            actions[action] = [v[:-1] for v in views]


@pytest.mark.parametrize("edit", [_drop_subject, _shorten])
def test_lifting_npz_pairs_that_disagree_are_refused(tmp_path: Path, edit: Callable[[dict], None]) -> None:
    """humaneva: KeyError (subject missing from 2D), ValueError from LiftingSet (2D shorter); h36m-npz: a message
    that named no file ("subject 'S1' is in the 3D positions but missing from the 2D positions")."""
    cache = ArrayCache(tmp_path / "cache")
    _, path_2d = _vp3d_pair(tmp_path, "humaneva", edit)
    fails_cleanly(lambda: _load_humaneva("train", tmp_path, cache, None), path_2d)
    if edit is _drop_subject:
        _, path_2d = _vp3d_pair(tmp_path, "h36m", edit)
        fails_cleanly(lambda: _load_h36m_npz("gt", "h36m-npz")("train", tmp_path, cache, None), path_2d)


KEYPOINT_JSON_ESCAPES = {
    "deep": DEEP_JSON.decode(),  # RecursionError
    "key-with-line-break": json.dumps({"a\u001eb": 1, "c\nd": 2}),  # the keys went into the message as they are
    "huge-int-keypoint": json.dumps([{"keypoints": [[10**400, 0]] * 17, "keypoint_scores": [1] * 17}]),  # Overflow
    "frame-id-beyond-int64": json.dumps([{"image_id": 2**64, "keypoints": [1, 2, 1] * 17}]),  # OverflowError
    "image-name-of-5000-digits": json.dumps([{"image_id": "9" * 5000, "keypoints": [1, 2, 1] * 17}]),  # ValueError
    "landmarks-are-pairs": json.dumps([[{"x": [1, 2], "y": [3, 4]}] * 33]),  # ValueError from reshape
    "pose-keypoints-an-int": json.dumps({"people": [{"pose_keypoints_2d": 5}]}),  # TypeError from len()
    "image-width-huge": json.dumps({"frames": [[{"x": 0.5, "y": 0.5}] * 33], "image_width": 10**400,
                                    "image_height": 480}),  # OverflowError from float()
    "fps-huge": json.dumps({"frames": [[{"x": 0.5, "y": 0.5}] * 33], "image_width": 640, "image_height": 480,
                            "fps": 10**400}),  # OverflowError from float()
}


@pytest.mark.parametrize("name", sorted(KEYPOINT_JSON_ESCAPES))
def test_keypoint_json_escapes_are_refused(tmp_path: Path, name: str) -> None:
    """JSON keypoint files that escaped from ``read_keypoints`` or gave a multi-line message."""
    path = tmp_path / "pose.json"
    path.write_text(KEYPOINT_JSON_ESCAPES[name])
    fails_cleanly(lambda: read_keypoints(path), path, KeypointError)


def test_keypoint_npz_with_an_empty_width_is_refused(tmp_path: Path) -> None:
    """``width`` of shape (0,) raised IndexError."""
    path = tmp_path / "pose.npz"
    np.savez(path, keypoints=np.ones((2, 17, 3)), width=np.array([]), height=np.array(480))
    fails_cleanly(lambda: read_keypoints(path), path, KeypointError)


MOTION_FILE_ESCAPES = {
    "deep.json": DEEP_JSON.decode(),  # RecursionError
    "fps-word.json": json.dumps({"positions": [[[0, 0, 0]]], "fps": "fast"}),  # ValueError from float()
    "fps-list.json": json.dumps({"positions": [[[0, 0, 0]]], "fps": [25]}),  # TypeError from float()
    "fps-huge.json": json.dumps({"positions": [[[0, 0, 0]]], "fps": 10**400}),  # OverflowError from float()
    "units-list.json": json.dumps({"positions": [[[0, 0, 0]]], "units": ["mm"]}),  # TypeError: unhashable
    "joints-int.json": json.dumps({"positions": [[[0, 0, 0]]], "joints": 5}),  # TypeError: not iterable
    "huge-position.json": json.dumps([[[10**400, 0, 0]]]),  # OverflowError from np.asarray
    "huge-field.csv": "j0_x,j0_y,j0_z\n" + "1" * 200_000 + ",0,0\n",  # csv.Error: field larger than field limit
}


@pytest.mark.parametrize("name", sorted(MOTION_FILE_ESCAPES))
def test_motion_file_escapes_are_refused(tmp_path: Path, name: str) -> None:
    """3D recordings that escaped from ``read_motion`` as another exception."""
    path = tmp_path / name
    path.write_text(MOTION_FILE_ESCAPES[name])
    fails_cleanly(lambda: read_motion(path), path)
