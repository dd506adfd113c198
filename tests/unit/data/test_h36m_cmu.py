"""H3.6M / CMU text loaders: layout, FK, downsampling, splits, and errors naming file and line."""

from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.data.cache import ArrayCache
from crisscross.data.cmu import cmu_split_files, load_cmu
from crisscross.data.errors import DataError
from crisscross.data.h36m import load_h36m, read_expmap_text
from crisscross.data.kinematics import forward_kinematics
from crisscross.data.skeleton import CMU_SKELETON, H36M_SKELETON

TWO_ACTIONS = ["walking", "eating"]


def test_h36m_loads_downsampled_fk_positions(h36m_dir: Path):
    motion = load_h36m("val", h36m_dir, actions=TWO_ACTIONS)  # S11, archive layout h3.6m/dataset
    assert motion.fps == 25 and motion.dataset == "h36m"
    assert [str(k) for k in motion.keys] == ["S11/walking_1", "S11/walking_2", "S11/eating_2"]  # eating_1 absent
    path = h36m_dir / "h3.6m" / "dataset" / "S11" / "walking_1.txt"
    raw = np.loadtxt(path, delimiter=",")
    expected = forward_kinematics(torch.from_numpy(raw[::2]), H36M_SKELETON).float()
    torch.testing.assert_close(motion.sequence(0), expected)
    assert motion.sequence(0).shape[0] == (raw.shape[0] + 1) // 2


def test_h36m_accepts_subject_folder_layout_and_actions(h36m_dir: Path):
    root = h36m_dir / "h3.6m" / "dataset"
    motion = load_h36m("train", root, actions=["eating"], subjects=["S1"])
    assert [k.action for k in motion.keys] == ["eating", "eating"]
    with pytest.warns(UserWarning, match="no file for action"):
        load_h36m("val", root, actions=["eating", "smoking"])


def test_h36m_missing_subject_folder_is_named(h36m_dir: Path):
    with pytest.raises(DataError, match=r"S5: missing subject folder"):
        load_h36m("test", h36m_dir)
    with pytest.raises(DataError, match="no Human3.6M folder"):
        load_h36m("val", h36m_dir / "nowhere")


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda lines: lines[:-1] + [lines[-1][: len(lines[-1]) // 2]], r":5: truncated line \(\d+ of 99 values"),
        (lambda lines: lines[:2] + [lines[2] + ",0.5"] + lines[3:],
         r":3: wrong column count \(100 values, expected 99\)"),
        (lambda lines: lines[:1] + [lines[1].replace(lines[1].split(",")[7], "nan", 1)] + lines[2:],
         r":2: value \d+ is not finite: 'nan'"),
        (lambda lines: lines[:3] + [lines[3].replace(lines[3].split(",")[4], "abc", 1)] + lines[4:],
         r":4: value \d+ is not a number: 'abc'"),
        (lambda lines: [lines[0], ""] + lines[1:3] + [lines[3] + ",1", lines[4]], r":5: wrong column count"),
    ],
    ids=["truncated", "columns", "nan", "text", "line-numbers-count-blank-lines"],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, expmap_writer, mutate, message):
    path = tmp_path / "S1" / "walking_1.txt"
    expmap_writer(path, 5, 99)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(mutate(lines)) + "\n")
    with pytest.raises(DataError, match=str(path).replace(".", r"\.") + message):
        read_expmap_text(path, 99)
    with pytest.raises(DataError, match=message):
        load_h36m("train", tmp_path, subjects=["S1"])


def test_empty_and_missing_files(tmp_path: Path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="empty file"):
        read_expmap_text(empty, 99)
    with pytest.raises(DataError, match="file not found"):
        read_expmap_text(tmp_path / "absent.txt", 99)


def test_cmu_splits_hold_out_last_recording(cmu_dir: Path):
    root = cmu_dir / "cmu"
    actions = ["walking", "jumping"]
    train = [(a, n) for a, n, _ in cmu_split_files(root, "train", actions)]
    val = [(a, n) for a, n, _ in cmu_split_files(root, "val", actions)]
    assert train == [("walking", 1), ("walking", 2), ("jumping", 1)]
    assert val == [("walking", 5)]
    assert len(cmu_split_files(root, "trainval", actions)) == 4
    with pytest.raises(DataError, match="test: missing folder"):
        cmu_split_files(root, "test", actions)


def test_cmu_loads_38_joints(cmu_dir: Path):
    motion = load_cmu("trainval", cmu_dir, actions=["walking", "jumping"])
    assert motion.positions.shape[1:] == (38, 3)
    assert motion.actions() == ["jumping", "walking"]  # canonical CMU order
    raw = np.loadtxt(cmu_dir / "cmu" / "train" / "walking" / "walking_5.txt", delimiter=",")
    expected = forward_kinematics(torch.from_numpy(raw[::2]), CMU_SKELETON).float()
    index = [str(k) for k in motion.keys].index("train/walking_5")
    torch.testing.assert_close(motion.sequence(index), expected)


def test_cache_hits_on_second_load_and_misses_on_changed_bytes(h36m_dir: Path, tmp_path: Path, expmap_writer):
    cache = ArrayCache(tmp_path / "cache", "motion")
    first = load_h36m("val", h36m_dir, cache, TWO_ACTIONS)
    assert (cache.hits, cache.misses) == (0, 3)
    second = load_h36m("val", h36m_dir, cache, TWO_ACTIONS)
    assert (cache.hits, cache.misses) == (3, 3)
    torch.testing.assert_close(first.positions, second.positions)
    path = h36m_dir / "h3.6m" / "dataset" / "S11" / "walking_2.txt"
    expmap_writer(path, 30, 99, seed=99)  # same name, new content
    third = load_h36m("val", h36m_dir, cache, TWO_ACTIONS)
    assert cache.misses == 4 and third.num_frames != second.num_frames
