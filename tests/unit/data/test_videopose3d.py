"""The safe VideoPose3D npz readers: round trips of small files in the real format, and one-line errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import videopose3d_fixtures as fx

from crisscross.data.errors import DataError
from crisscross.data.videopose3d import (
    H36M_17_FROM_32,
    align_h36m,
    frame_counts,
    h36m_npz_paths,
    load_npz_member,
    read_positions_2d,
    read_positions_3d,
)


def _error(call, *args, **kwargs) -> str:
    """The message of the DataError that ``call`` raises; it must be one line."""
    with pytest.raises(DataError) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


# --- round trips ---------------------------------------------------------------------------------------------------


def test_h36m_round_trip(tmp_path: Path):
    path_3d, path_2d, positions_3d, positions_2d = fx.write_h36m(tmp_path)
    read_3d = read_positions_3d(path_3d, joints=32)
    read_2d, metadata = read_positions_2d(path_2d, joints=17, cameras=4)
    assert metadata == fx.H36M_METADATA
    assert list(read_3d) == list(fx.H36M_SUBJECTS) and list(read_2d) == list(fx.H36M_SUBJECTS)
    for subject in fx.H36M_SUBJECTS:
        assert list(read_3d[subject]) == list(fx.H36M_ACTIONS)
        for action in fx.H36M_ACTIONS:
            assert read_3d[subject][action].dtype == np.float32
            np.testing.assert_array_equal(read_3d[subject][action], positions_3d[subject][action])
            assert len(read_2d[subject][action]) == 4
            for got, expected in zip(read_2d[subject][action], positions_2d[subject][action]):
                np.testing.assert_array_equal(got, expected)
    assert frame_counts(read_3d) == {"S1": {"Walking": 10, "Directions": 11}, "S11": {"Walking": 13, "Directions": 14}}


def test_align_h36m_keeps_17_joints_trims_2d_and_drops_s11_directions(tmp_path: Path):
    path_3d, path_2d, positions_3d, _ = fx.write_h36m(tmp_path)
    aligned_3d, aligned_2d = align_h36m(read_positions_3d(path_3d), read_positions_2d(path_2d)[0])
    assert {s: list(a) for s, a in aligned_3d.items()} == {"S1": ["Walking", "Directions"], "S11": ["Walking"]}
    assert {s: list(a) for s, a in aligned_2d.items()} == {"S1": ["Walking", "Directions"], "S11": ["Walking"]}
    for subject, actions in aligned_3d.items():
        for action, poses in actions.items():
            assert poses.shape == (len(positions_3d[subject][action]), 17, 3)
            np.testing.assert_array_equal(poses, positions_3d[subject][action][:, list(H36M_17_FROM_32)])
            views = aligned_2d[subject][action]
            assert [v.shape for v in views] == [(len(poses), 17, 2)] * 4
    assert H36M_17_FROM_32 == (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)


def test_align_h36m_tolerates_s11_directions_on_one_side_only():
    positions_3d, positions_2d = fx.h36m_positions()
    del positions_3d["S11"]["Directions"]  # as in the real data_3d_h36m.npz
    aligned_3d, aligned_2d = align_h36m(positions_3d, positions_2d)
    assert list(aligned_3d["S11"]) == list(aligned_2d["S11"]) == ["Walking"]


def test_humaneva_round_trip(tmp_path: Path):
    path_3d, path_2d, positions_3d, positions_2d = fx.write_humaneva(tmp_path)
    read_3d = read_positions_3d(path_3d, joints=15)
    read_2d, metadata = read_positions_2d(path_2d, joints=15, cameras=3)
    assert metadata == fx.HUMANEVA_METADATA
    assert list(read_3d) == list(fx.HUMANEVA_SUBJECTS)
    for subject, actions in positions_3d.items():
        for action, poses in actions.items():
            np.testing.assert_array_equal(read_3d[subject][action], poses)
            assert [len(v) for v in read_2d[subject][action]] == [len(poses)] * 3
            np.testing.assert_array_equal(read_2d[subject][action][2], positions_2d[subject][action][2])


def test_float64_numpy_scalars_and_protocol_5_pickles_are_read(tmp_path: Path):
    positions_3d, positions_2d = fx.humaneva_positions()
    positions_3d["Train/S1"]["Walking 1 chunk0"] = positions_3d["Train/S1"]["Walking 1 chunk0"].astype(np.float64)
    path_3d = fx.write_raw_npy_npz(tmp_path / "p5.npz", {
        "positions_3d": fx.object_npy_header() + fx.object_array_pickle(positions_3d, protocol=5),
    })
    assert read_positions_3d(path_3d)["Train/S1"]["Walking 1 chunk0"].dtype == np.float32
    metadata = {**fx.HUMANEVA_METADATA, "num_joints": np.int64(15), "video_metadata": {"cam": {"w": 640}}}
    path_2d = fx.write_2d(tmp_path / "scalars.npz", positions_2d, metadata)
    _, read_metadata = read_positions_2d(path_2d)
    assert read_metadata["num_joints"] == 15 and type(read_metadata["num_joints"]) is int
    assert read_metadata["video_metadata"] == {"cam": {"w": 640}}


def test_plain_numeric_members_load(tmp_path: Path):
    path = tmp_path / "plain.npz"
    np.savez_compressed(path, grid=np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(load_npz_member(path, "grid"), np.arange(6).reshape(2, 3))


def test_h36m_npz_paths(tmp_path: Path):
    fx.write_h36m(tmp_path, detections="gt")
    fx.write_2d(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", fx.h36m_positions()[1], fx.H36M_METADATA)
    assert h36m_npz_paths(tmp_path) == (tmp_path / "data_3d_h36m.npz", tmp_path / "data_2d_h36m_gt.npz")
    assert h36m_npz_paths(tmp_path, "cpn")[1] == tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    (tmp_path / "data_2d_h36m_gt.npz").unlink()
    assert "data_2d_h36m_gt.npz: file not found" in _error(h36m_npz_paths, tmp_path)
    assert "choices: gt, cpn" in _error(h36m_npz_paths, tmp_path, "sh")
    assert "data_3d_h36m.npz: file not found" in _error(h36m_npz_paths, tmp_path / "nowhere", "cpn")


# --- refused pickles -----------------------------------------------------------------------------------------------


def test_pickled_os_system_is_refused_without_running(tmp_path: Path):
    marker = tmp_path / "ran"
    path = fx.write_raw_npy_npz(tmp_path / "data_2d_h36m_gt.npz", {
        "positions_2d": fx.object_npy_header() + fx.os_system_pickle(f"touch {marker}"),
        "metadata": fx.object_npy_header() + fx.object_array_pickle(fx.H36M_METADATA),
    })
    expected = f"{path}: positions_2d: pickled object refers to os.system; only numpy arrays may be stored"
    assert _error(read_positions_2d, path) == expected
    assert _error(load_npz_member, path, "positions_2d") == expected
    assert not marker.exists()


def test_pickled_user_class_is_refused(tmp_path: Path):
    path = fx.write_3d(tmp_path / "data_3d_h36m.npz", {"S1": {"Walking": fx.NotAnArray()}})
    message = _error(read_positions_3d, path)
    assert message == (f"{path}: positions_3d: pickled object refers to videopose3d_fixtures.NotAnArray; "
                       "only numpy arrays may be stored")


def test_malformed_pickle_and_non_array_pickle(tmp_path: Path):
    path = fx.write_raw_npy_npz(tmp_path / "bad.npz", {
        "truncated": fx.object_npy_header() + fx.object_array_pickle({"S1": {}})[:-5],
        "not_array": fx.object_npy_header() + b"\x80\x03}q\x00.",  # a bare dict, not an object array
        "garbage": b"not a npy member at all",
    })
    assert "bad.npz: truncated: malformed pickle" in _error(load_npz_member, path, "truncated")
    assert "bad.npz: not_array: expected a pickled numpy array of shape (), got dict" in _error(
        load_npz_member, path, "not_array")
    assert "bad.npz: garbage: not a .npy array" in _error(load_npz_member, path, "garbage")


# --- malformed files -----------------------------------------------------------------------------------------------


def test_not_an_npz_missing_file_and_missing_key(tmp_path: Path):
    text = tmp_path / "data_3d_h36m.npz"
    text.write_text("S1,Walking,0.1,0.2\n")
    assert _error(read_positions_3d, text) == f"{text}: not an npz file"
    assert _error(read_positions_3d, tmp_path / "absent.npz") == f"{tmp_path / 'absent.npz'}: file not found"
    path_3d, path_2d, _, _ = fx.write_h36m(tmp_path / "h36m")
    assert _error(read_positions_3d, path_2d) == f"{path_2d}: no key 'positions_3d' (keys: metadata, positions_2d)"
    assert "no key 'metadata' (keys: positions_3d)" in _error(read_positions_2d, path_3d)


def test_zip_of_something_else_is_refused(tmp_path: Path):
    path = tmp_path / "other.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert _error(load_npz_member, path, "positions_3d") == f"{path}: no key 'positions_3d' (keys: none)"


def test_wrong_shape_is_named(tmp_path: Path):
    positions_3d, _ = fx.h36m_positions()
    positions_3d["S1"]["Walking"] = positions_3d["S1"]["Walking"][:, :31]
    path = fx.write_3d(tmp_path / "data_3d_h36m.npz", positions_3d)
    assert _error(read_positions_3d, path, joints=32) == (
        f"{path}: positions_3d['S1']['Walking']: expected (T, 32, 3) floats, got (10, 31, 3)")
    # without ``joints`` the first sequence sets J, and S1 Walking comes first: the 32-joint ones are then wrong
    assert "positions_3d['S1']['Directions']: expected (T, 31, 3) floats, got (11, 32, 3)" in _error(
        read_positions_3d, path)


def test_nan_and_non_float_are_named(tmp_path: Path):
    positions_3d, positions_2d = fx.h36m_positions()
    positions_3d["S11"]["Directions"][4, 7, 1] = np.nan
    path = fx.write_3d(tmp_path / "data_3d_h36m.npz", positions_3d)
    assert _error(read_positions_3d, path) == f"{path}: positions_3d['S11']['Directions']: contains NaN (frame 4)"
    positions_2d["S1"]["Walking"][3] = positions_2d["S1"]["Walking"][3].astype(np.int32)
    path_2d = fx.write_2d(tmp_path / "data_2d_h36m_gt.npz", positions_2d, fx.H36M_METADATA)
    assert _error(read_positions_2d, path_2d) == (
        f"{path_2d}: positions_2d['S1']['Walking'][3]: expected (T, 17, 2) floats, got int32 (12, 17, 2)")


def test_2d_structure_and_metadata_errors(tmp_path: Path):
    _, positions_2d = fx.h36m_positions()
    path = fx.write_2d(tmp_path / "a.npz", positions_2d, fx.H36M_METADATA)
    assert "positions_2d['S1']['Walking']: expected 3 cameras, got 4" in _error(read_positions_2d, path, cameras=3)
    assert "metadata['num_joints']: expected 16, got 17" in _error(read_positions_2d, path, joints=16)
    positions_2d["S11"]["Walking"] = positions_2d["S11"]["Walking"][0]
    path = fx.write_2d(tmp_path / "b.npz", positions_2d, fx.H36M_METADATA)
    assert "positions_2d['S11']['Walking']: expected a list of per-camera arrays, got ndarray" in _error(
        read_positions_2d, path)
    path = fx.write_2d(tmp_path / "c.npz", fx.h36m_positions()[1], {"layout_name": "h36m", "num_joints": 17})
    assert "c.npz: metadata: missing key(s) keypoints_symmetry" in _error(read_positions_2d, path)
    bad_symmetry = {**fx.H36M_METADATA, "keypoints_symmetry": [[4, 5], [1, 17]]}
    path = fx.write_2d(tmp_path / "d.npz", fx.h36m_positions()[1], bad_symmetry)
    assert "metadata['keypoints_symmetry']: expected [[left joints], [right joints]]" in _error(read_positions_2d, path)
    path = fx.write_3d(tmp_path / "e.npz", {"S1": [np.zeros((3, 32, 3))]})
    assert "e.npz: positions_3d['S1']: expected a dict of actions, got list" in _error(read_positions_3d, path)


def test_align_errors_name_subject_and_action(tmp_path: Path):
    path_3d, _, _, positions_2d = fx.write_h36m(tmp_path)
    del positions_2d["S11"]
    path_2d = fx.write_2d(tmp_path / "data_2d_h36m_gt.npz", positions_2d, fx.H36M_METADATA)
    read_3d, (read_2d, _) = read_positions_3d(path_3d), read_positions_2d(path_2d)
    assert _error(align_h36m, read_3d, read_2d) == (
        "subject 'S11' is in the 3D positions but missing from the 2D positions")

    positions_3d, positions_2d = fx.h36m_positions()
    del positions_2d["S1"]["Walking"]
    assert _error(align_h36m, positions_3d, positions_2d) == (
        "S1: action 'Walking' is in the 3D positions but missing from the 2D positions")

    positions_3d, positions_2d = fx.h36m_positions()
    positions_2d["S11"]["Walking"][1] = positions_2d["S11"]["Walking"][1][:12]
    assert _error(align_h36m, positions_3d, positions_2d) == (
        "S11 'Walking': 2D camera 1 has 12 frames, fewer than the 13 frames of the 3D sequence")
