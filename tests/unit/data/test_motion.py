"""MotionSet windows and gathering."""

import numpy as np
import pytest
import torch

from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import H36M_SKELETON


def _toy_set(lengths=(10, 5, 7)) -> MotionSet:
    sequences, keys = [], []
    for i, length in enumerate(lengths):
        frames = np.arange(length, dtype=np.float32)[:, None, None] + 100 * i
        sequences.append(np.broadcast_to(frames, (length, 32, 3)))
        keys.append(SequenceKey("S1", ["walking", "eating", "walking"][i], i + 1))
    return MotionSet.from_sequences(sequences, keys, H36M_SKELETON, 25, dataset="toy", split="train",
                                    action_order=["eating", "walking"])


def test_from_sequences_layout():
    motion = _toy_set()
    assert motion.positions.dtype == torch.float32 and motion.positions.shape == (22, 32, 3)
    assert motion.seq_starts.tolist() == [0, 10, 15] and motion.seq_lengths.tolist() == [10, 5, 7]
    assert motion.actions() == ["eating", "walking"]
    assert float(motion.sequence(1)[0, 0, 0]) == 100.0


@pytest.mark.parametrize("length, stride, expected", [(5, 1, 6 + 1 + 3), (5, 2, 3 + 1 + 2), (8, 1, 3), (11, 1, 0)])
def test_train_window_counts(length, stride, expected):
    starts = _toy_set().train_windows(length, stride)
    assert starts.numel() == expected


def test_train_windows_stay_inside_one_sequence_and_gather_matches_slicing():
    motion = _toy_set()
    starts = motion.train_windows(5)
    assert starts.tolist() == [0, 1, 2, 3, 4, 5, 10, 15, 16, 17]
    windows = motion.gather(starts, 5)
    assert windows.shape == (10, 5, 32, 3)
    for w, s in enumerate(starts.tolist()):
        torch.testing.assert_close(windows[w], motion.positions[s:s + 5])
    # every window lies in one sequence: frame values are consecutive
    diffs = windows[:, 1:, 0, 0] - windows[:, :-1, 0, 0]
    assert torch.all(diffs == 1)


def test_sequence_index_of_frames():
    motion = _toy_set()
    assert motion.sequence_index_of(torch.tensor([0, 9, 10, 14, 15, 21])).tolist() == [0, 0, 1, 1, 2, 2]


def test_subset_and_to():
    motion = _toy_set()
    walking = motion.subset(actions=["walking"])
    assert walking.num_sequences == 2 and walking.num_frames == 17
    assert walking.keys[1] == SequenceKey("S1", "walking", 3)
    with pytest.raises(ValueError, match="present"):
        motion.subset(actions=["flying"])
    assert motion.to("cpu").positions.device.type == "cpu"


def test_inconsistent_shapes_rejected():
    with pytest.raises(ValueError, match="positions must be"):
        MotionSet.from_sequences([np.zeros((4, 17, 3))], [SequenceKey("S1", "a", 1)], H36M_SKELETON, 25)
