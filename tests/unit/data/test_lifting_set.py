"""LiftingSet: concatenation, root-relative positions, edge-padded windows, subsets and shape validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from crisscross.data.lifting import LiftingKey, LiftingSet
from crisscross.data.skeleton import H36M_17_SKELETON

J = H36M_17_SKELETON.num_joints


def _arrays(lengths, seed=0):
    rng = np.random.default_rng(seed)
    keypoints = [rng.uniform(-1, 1, (n, J, 2)).astype(np.float32) for n in lengths]
    positions = [(rng.normal(0, 500, (n, J, 3)) + [0, 0, 4000]).astype(np.float32) for n in lengths]
    return keypoints, positions


def _set(lengths=(3, 4), keys=None, seed=0, **kwargs) -> LiftingSet:
    keypoints, positions = _arrays(lengths, seed)
    keys = keys or [LiftingKey("S1", f"Act{i}", "1", "c1") for i in range(len(lengths))]
    return LiftingSet.from_sequences(keypoints, positions, keys, H36M_17_SKELETON, 50, **kwargs)


def test_from_sequences_concatenates_and_makes_positions_root_relative():
    keypoints, positions = _arrays((3, 4))
    keys = [LiftingKey("S1", "Walking", "1", "c1"), LiftingKey("S5", "Eating", "2", "c2")]
    data = LiftingSet.from_sequences(keypoints, positions, keys, H36M_17_SKELETON, 50.0, dataset="d", split="test")
    assert data.num_frames == 7 and data.keypoints.shape == (7, J, 2) and data.positions.shape == (7, J, 3)
    assert data.keypoints.dtype == data.positions.dtype == torch.float32
    assert data.seq_starts.tolist() == [0, 3] and data.seq_lengths.tolist() == [3, 4]
    assert torch.equal(data.positions[:, 0], torch.zeros(7, 3))
    # frame 4 is frame 1 of the second sequence; every joint minus its root
    expected = torch.as_tensor(positions[1][1] - positions[1][1][:1])
    torch.testing.assert_close(data.positions[4], expected)
    torch.testing.assert_close(data.keypoints[3:], torch.as_tensor(keypoints[1]))  # keypoints are kept as given
    assert data.confidence is None and data.actions() == ["Walking", "Eating"] and data.subjects() == ["S1", "S5"]
    assert data.frame_sequence().tolist() == [0, 0, 0, 1, 1, 1, 1]
    first, last = data.frame_bounds()
    assert first.tolist() == [0, 0, 0, 3, 3, 3, 3] and last.tolist() == [2, 2, 2, 6, 6, 6, 6]
    assert "2 sequences, 7 frames" in data.summary()


def test_from_sequences_keeps_confidence_and_source():
    keypoints, positions = _arrays((2, 3))
    confidence = [np.full((2, J), 0.5), np.ones((3, J))]
    keys = [LiftingKey("S1", "A", "", "c"), LiftingKey("S1", "B", "", "c")]
    data = LiftingSet.from_sequences(keypoints, positions, keys, H36M_17_SKELETON, 50, confidence=confidence,
                                     source={"data_dir": "x"})
    assert data.confidence.shape == (5, J) and data.confidence[:2].eq(0.5).all() and data.confidence[2:].eq(1).all()
    assert data.source == {"data_dir": "x"}


def test_empty_from_sequences():
    data = LiftingSet.from_sequences([], [], [], H36M_17_SKELETON, 50)
    assert data.num_frames == 0 and data.keypoints.shape == (0, J, 2) and data.seq_starts.numel() == 0


def test_window_frames_repeat_the_first_and_last_frame_of_each_sequence():
    data = _set((3, 4))
    windows = data.window_frames(torch.arange(7), 5)
    assert windows.tolist() == [
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 2],
        [0, 1, 2, 2, 2],
        [3, 3, 3, 4, 5],
        [3, 3, 4, 5, 6],
        [3, 4, 5, 6, 6],
        [4, 5, 6, 6, 6],
    ]
    # precomputed bounds and any order of centres give the same windows
    bounds = data.frame_bounds()
    assert data.window_frames(torch.tensor([6, 0]), 5, bounds).tolist() == [[4, 5, 6, 6, 6], [0, 0, 0, 1, 2]]
    assert data.window_frames(torch.arange(7), 1).tolist() == [[i] for i in range(7)]
    # a field wider than both sequences: every frame of a sequence, padded
    assert data.window_frames(torch.tensor([1]), 9).tolist() == [[0, 0, 0, 0, 1, 2, 2, 2, 2]]


@pytest.mark.parametrize("field", [0, 2, 4, -1])
def test_window_frames_refuse_even_or_non_positive_fields(field):
    with pytest.raises(ValueError, match="odd"):
        _set().window_frames(torch.arange(3), field)


def test_subset_keeps_the_chosen_sequences_and_recomputes_starts():
    keys = [LiftingKey(s, a, "1", c) for s in ("S1", "S2") for a in ("Walking", "Eating") for c in ("c1", "c2")]
    lengths = (2, 3, 4, 5, 6, 7, 8, 9)
    data = _set(lengths, keys=keys, confidence=[np.full((n, J), i / 10) for i, n in enumerate(lengths)])
    starts = data.seq_starts.tolist()

    def frames_of(i):
        return list(range(starts[i], starts[i] + lengths[i]))

    cases = {
        "actions": ({"actions": ["Eating"]}, [2, 3, 6, 7]),
        "subjects": ({"subjects": ["S2"]}, [4, 5, 6, 7]),
        "cameras": ({"cameras": ["c2"]}, [1, 3, 5, 7]),
        "all three": ({"actions": ["Walking"], "subjects": ["S2"], "cameras": ["c1"]}, [4]),
        "none": ({}, list(range(8))),
    }
    for name, (kwargs, chosen) in cases.items():
        sub = data.subset(**kwargs)
        index = [f for i in chosen for f in frames_of(i)]
        assert sub.keys == [keys[i] for i in chosen], name
        assert sub.seq_lengths.tolist() == [lengths[i] for i in chosen], name
        expected_starts = np.concatenate([[0], np.cumsum([lengths[i] for i in chosen])[:-1]]).tolist()
        assert sub.seq_starts.tolist() == expected_starts, name
        assert torch.equal(sub.keypoints, data.keypoints[index]), name
        assert torch.equal(sub.positions, data.positions[index]), name
        assert torch.equal(sub.confidence, data.confidence[index]), name
    # windows of a subset stay inside its own sequences
    sub = data.subset(cameras=["c2"])
    assert sub.window_frames(torch.tensor([0, 3]), 5).tolist() == [[0, 0, 0, 1, 2], [3, 3, 3, 4, 5]]
    empty = data.subset(actions=["Jumping"])
    assert empty.num_frames == 0 and empty.keys == [] and empty.seq_starts.numel() == 0


def test_shape_validation():
    kp, pos = torch.zeros(5, J, 2), torch.zeros(5, J, 3)
    one = {"seq_starts": torch.tensor([0]), "seq_lengths": torch.tensor([5]), "keys": [LiftingKey("S1", "A", "", "c")],
           "skeleton": H36M_17_SKELETON, "fps": 50.0}
    LiftingSet(kp, pos, **one)  # well formed
    with pytest.raises(ValueError, match="keypoints must be"):
        LiftingSet(torch.zeros(5, J - 1, 2), pos, **one)
    with pytest.raises(ValueError, match="keypoints must be"):
        LiftingSet(torch.zeros(5, J, 3), pos, **one)
    with pytest.raises(ValueError, match="positions must be"):
        LiftingSet(kp, torch.zeros(4, J, 3), **one)
    with pytest.raises(ValueError, match="positions must be"):
        LiftingSet(kp, torch.zeros(5, J, 2), **one)
    with pytest.raises(ValueError, match="confidence must be"):
        LiftingSet(kp, pos, confidence=torch.zeros(5, J, 1), **one)
    with pytest.raises(ValueError, match="one entry per sequence"):
        LiftingSet(kp, pos, **{**one, "keys": []})
    with pytest.raises(ValueError, match="add up"):
        LiftingSet(kp, pos, **{**one, "seq_lengths": torch.tensor([4])})
    keypoints, positions = _arrays((3, 4))
    keys = [LiftingKey("S1", "A", "", "c"), LiftingKey("S1", "B", "", "c")]
    with pytest.raises(ValueError, match="one key per sequence"):
        LiftingSet.from_sequences(keypoints, positions, keys[:1], H36M_17_SKELETON, 50)
    with pytest.raises(ValueError, match="as many 3D frames"):
        LiftingSet.from_sequences(keypoints, [positions[0], positions[1][:3]], keys, H36M_17_SKELETON, 50)
    with pytest.raises(ValueError, match="keypoints must be"):
        LiftingSet.from_sequences([k[..., :1] for k in keypoints], positions, keys, H36M_17_SKELETON, 50)


def test_key_text():
    assert str(LiftingKey("S9", "Walking", "1", "54138969")) == "S9/Walking 1/54138969"
    assert str(LiftingKey("S11", "Directions", "", "C1")) == "S11/Directions/C1"  # no take, no dangling space
    assert sorted([LiftingKey("S9", "B", "", "c"), LiftingKey("S11", "A", "", "c")])[0].subject == "S11"
