"""The ``h36m-expmap17`` forecasting set on the real exp-map files: S9 and S11 at 50 Hz, DLow's windows.

Run with ``-s`` to see the window counts.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crisscross.data.cache import ArrayCache
from crisscross.data.h36m import PREPROCESSING_VERSION
from crisscross.data.h36m_world17 import load_h36m_world17
from crisscross.data.kinematics import rest_pose
from crisscross.data.skeleton import H36M_17_FROM_32, H36M_17_SKELETON, H36M_SKELETON
from crisscross.evaluation.protocols import get_protocol, protocol_windows

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def test_set(h36m_root: Path, cache_dir: Path):
    return load_h36m_world17("test", h36m_root, ArrayCache(cache_dir, namespace=PREPROCESSING_VERSION))


def test_s9_and_s11_at_50_hz_on_17_root_relative_joints(test_set):
    assert test_set.fps == 50.0 and test_set.skeleton == H36M_17_SKELETON
    assert tuple(test_set.positions.shape[1:]) == (17, 3)
    assert {k.subject for k in test_set.keys} == {"S9", "S11"}
    assert torch.equal(test_set.positions[:, 0], torch.zeros(test_set.num_frames, 3))
    # No downsampling: S9 walking_1 has one position per line of its file (2,446 lines at 50 Hz, 49 s).
    walking = next(i for i, k in enumerate(test_set.keys) if str(k) == "S9/walking_1")
    assert int(test_set.seq_lengths[walking]) == 2446
    # Millimetres: the body's extent (head to ankles) is that of a standing adult, well above a metre.
    head_to_ankle = torch.linalg.norm(test_set.sequence(walking)[:, 10] - test_set.sequence(walking)[:, 3], dim=-1)
    assert 1300.0 < float(head_to_ankle.median()) < 1900.0


def test_bone_lengths_are_the_skeleton_s_and_constant_over_time(test_set):
    rest = rest_pose(H36M_SKELETON, torch.float64)[list(H36M_17_FROM_32)]
    positions = test_set.positions.double()
    for joint, parent in enumerate(H36M_17_SKELETON.parents):
        if parent < 0:
            continue
        length = torch.linalg.norm(positions[:, joint] - positions[:, parent], dim=-1)
        expected = float(torch.linalg.norm(rest[joint] - rest[parent]))
        assert 100.0 < expected < 500.0, H36M_17_SKELETON.joint_names[joint]
        assert float((length - expected).abs().max()) < 0.1, H36M_17_SKELETON.joint_names[joint]


def test_dlow_windows_every_25_frames(test_set):
    protocol = get_protocol("h36m-expmap17-stochastic-25-100")
    starts, _, names = protocol_windows(test_set, protocol)
    expected = sum(len(range(0, int(n) - 125, 25)) for n in test_set.seq_lengths)
    print(f"\nh36m-expmap17 test (S9 S11): {test_set.num_sequences} sequences, {test_set.num_frames} frames, "
          f"{len(starts)} DLow windows over {len(names)} actions")
    assert len(starts) == expected and len(names) == 15
    local = starts - test_set.seq_starts[test_set.sequence_index_of(starts)]
    assert bool((local % 25 == 0).all())
    ends = local + 125
    lengths = test_set.seq_lengths[test_set.sequence_index_of(starts)]
    assert bool((ends < lengths).all())  # strict: no window ends on a sequence's last frame
    if test_set.num_sequences == 55:  # the shared archive (S9 lacks discussion and smoking, S11 sittingdown_1)
        assert len(starts) == 4466
