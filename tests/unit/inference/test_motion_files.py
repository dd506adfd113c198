"""3D recordings in (npz, npy, csv, json) and prediction files out (atomic, never overwritten, no pickle)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crisscross.data.errors import DataError
from crisscross.inference.motion_files import read_motion, write_prediction

NAMES = ("Hips", "LeftHip", "RightHip")


def _positions() -> np.ndarray:
    return np.arange(4 * 3 * 3, dtype=np.float64).reshape(4, 3, 3) * 1.5


def test_npz_with_metadata_and_a_lone_array(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", positions=_positions(), fps=60.0, units="m", joints=np.array(NAMES))
    motion = read_motion(tmp_path / "a.npz")
    np.testing.assert_array_equal(motion.positions, _positions())
    assert (motion.fps, motion.units, motion.joints) == (60.0, "m", NAMES)
    np.savez(tmp_path / "b.npz", poses=_positions())
    lone = read_motion(tmp_path / "b.npz")
    assert lone.fps is None and lone.units is None and lone.joints is None
    np.save(tmp_path / "c.npy", _positions())
    np.testing.assert_array_equal(read_motion(tmp_path / "c.npy").positions, _positions())


def test_csv_with_and_without_a_header(tmp_path: Path) -> None:
    x = _positions()
    header = "frame," + ",".join(f"{n}_{c}" for n in NAMES for c in "xyz")
    rows = [f"{t}," + ",".join(str(v) for v in x[t].ravel()) for t in range(4)]
    (tmp_path / "h.csv").write_text("\n".join([header, *rows]) + "\n")
    motion = read_motion(tmp_path / "h.csv")
    np.testing.assert_array_equal(motion.positions, x)
    assert motion.joints == NAMES
    (tmp_path / "n.csv").write_text("\n".join(",".join(str(v) for v in x[t].ravel()) for t in range(4)))
    np.testing.assert_array_equal(read_motion(tmp_path / "n.csv").positions, x)


def test_json_object_and_bare_list(tmp_path: Path) -> None:
    x = _positions()
    (tmp_path / "o.json").write_text(json.dumps({"positions": x.tolist(), "fps": 30, "units": "cm"}))
    motion = read_motion(tmp_path / "o.json")
    assert motion.fps == 30.0 and motion.units == "cm"
    (tmp_path / "l.json").write_text(json.dumps(x.tolist()))
    np.testing.assert_array_equal(read_motion(tmp_path / "l.json").positions, x)


@pytest.mark.parametrize(("name", "write", "message"), [
    ("a.txt", lambda p: p.write_text("1 2 3"), "expected a .npz, .npy, .csv, .json file"),
    ("b.csv", lambda p: p.write_text("1,2,3\n4,5\n"), r"b.csv:2: 2 values, the first row has 3"),
    ("c.csv", lambda p: p.write_text("1,2,3,4\n"), "4 coordinate columns per row"),
    ("d.csv", lambda p: p.write_text("a_x,a_y,a_q\n1,2,3\n"), "are not <joint>_x"),
    ("e.csv", lambda p: p.write_text("1,2,x\n"), r"e.csv:1: expected numbers"),
    ("f.json", lambda p: p.write_text("{"), "cannot parse JSON"),
    ("g.json", lambda p: p.write_text('{"fps": 3}'), "expected a JSON object with 'positions'"),
    ("h.npz", lambda p: np.savez(p, positions=np.zeros((3, 2, 3)), units="km"), "units must be one of"),
    ("i.npz", lambda p: np.savez(p, positions=np.zeros((3, 2, 3)), fps=-1.0), "fps must be a positive number"),
    ("j.npz", lambda p: np.savez(p, positions=np.zeros((3, 2, 3)), joints=np.array(["a"])), "1 joint names for 2"),
    ("k.npz", lambda p: np.savez(p, a=np.zeros(3), b=np.zeros(3)), "no 'positions' array"),
    ("l.npy", lambda p: np.save(p, np.zeros((3, 2))), r"shape \[frames, joints, 3\], got \[3, 2\]"),
    ("m.npy", lambda p: np.save(p, np.full((3, 2, 3), np.inf)), "non-finite position at frame 0, joint 0"),
])
def test_bad_files_get_one_line_naming_the_file(tmp_path: Path, name: str, write, message: str) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(DataError, match=message) as err:
        read_motion(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_predictions_are_written_without_pickle_and_never_overwritten(tmp_path: Path) -> None:
    arrays = {"forecasts": np.ones((2, 5, 3, 3), dtype=np.float32)}
    meta = {"joints": list(NAMES), "units": "mm", "fps": 25.0, "model": "stcformer", "nested": {"a": 1}}
    path = write_prediction(tmp_path / "out.npz", arrays, meta)
    with np.load(path, allow_pickle=False) as stored:
        assert stored["forecasts"].shape == (2, 5, 3, 3)
        assert stored["joints"].tolist() == list(NAMES) and str(stored["units"]) == "mm"
        assert float(stored["fps"]) == 25.0 and json.loads(str(stored["meta_json"]))["nested"] == {"a": 1}
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_prediction(path, arrays, meta)
    body = json.loads(write_prediction(tmp_path / "out.json", arrays, meta).read_text())
    assert np.asarray(body["forecasts"]).shape == (2, 5, 3, 3) and body["units"] == "mm"
    with pytest.raises(DataError, match=r"must be a .npz or .json"):
        write_prediction(tmp_path / "out.csv", arrays, meta)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "out.npz"]  # no temporary file left
