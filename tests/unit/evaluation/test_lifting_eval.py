"""evaluate_lifter and flip_averaged: oracle lifters score 0, hand-computed offsets, action and subject averaging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crisscross.data.augment import mirror
from crisscross.data.lifting import LiftingKey, LiftingSet
from crisscross.data.skeleton import H36M_17_SKELETON
from crisscross.evaluation.lifting import evaluate_lifter, flip_averaged, scored_frames
from crisscross.evaluation.protocols import LiftingProtocol

SK = H36M_17_SKELETON
J = SK.num_joints
PERM = SK.mirror_permutation()
KEYS = ("mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "mpjve_mm")


def _protocol(receptive_field: int = 5, by_subject: bool = False, actions=()) -> LiftingProtocol:
    return LiftingProtocol("test-lift", "test", receptive_field, ("S1",), ("S2",), actions=actions,
                           by_subject=by_subject)


def _dataset(lengths=(6, 9, 4), actions=("Walking", "Eating", "Walking"), subjects=("S1", "S1", "S2"),
             seed=0) -> LiftingSet:
    """Random camera-frame poses (mm, 4 to 6 m in front) seen through x / z, y / z."""
    rng = np.random.default_rng(seed)
    keypoints, positions, keys = [], [], []
    for i, (n, action, subject) in enumerate(zip(lengths, actions, subjects)):
        pose = rng.normal(0, 400, (n, J, 3)) + [0, 0, 5000]
        positions.append(pose)
        keypoints.append(pose[..., :2] / pose[..., 2:])
        keys.append(LiftingKey(subject, action, str(i), "c1"))
    return LiftingSet.from_sequences(keypoints, positions, keys, SK, 50, dataset="toy", split="test")


def _lookup(dataset: LiftingSet):
    """``keypoints[B, R, J, 2] -> (frame index [B], mirrored [B])`` by matching the centre frame exactly."""
    table = torch.cat([dataset.keypoints, mirror(dataset.keypoints, PERM)]).flatten(1)

    def find(keypoints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        centre = keypoints[:, keypoints.shape[1] // 2].flatten(1)
        dist, index = torch.cdist(centre, table, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1)
        assert dist.max() < 1e-5
        return index % dataset.num_frames, index >= dataset.num_frames

    return find


def _lifter(dataset: LiftingSet, offset=None):
    """The true pose (mirrored for mirrored inputs) plus ``offset(frame index) -> [B, J, 3]`` in the input's frame."""
    find = _lookup(dataset)

    def lift(keypoints: torch.Tensor) -> torch.Tensor:
        index, mirrored = find(keypoints)
        truth = dataset.positions[index]
        truth = torch.where(mirrored[:, None, None], mirror(truth, PERM), truth)
        return truth + (offset(index) if offset is not None else 0) + 1000.0  # a translation is ignored

    return lift


def _joint_offset(joint: int, vector=(30.0, 40.0, 0.0)):
    def offset(index: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(index.numel(), J, 3)
        out[:, joint] = torch.tensor(vector)
        return out

    return offset


@pytest.mark.parametrize("flip", [False, True])
def test_an_oracle_scores_zero(flip):
    data = _dataset()
    result = evaluate_lifter(_lifter(data), data, _protocol(), flip=flip, batch_size=4)
    for key in KEYS:
        assert result[key]["mean"] == pytest.approx(0.0, abs=1e-3), key
        assert all(v == pytest.approx(0.0, abs=1e-3) for v in result[key]["per_action"].values()), key
    assert result["flip"] is flip and result["num_frames"] == 19 and result["joints"] == J
    assert result["actions"] == ["Walking", "Eating"]
    assert result["num_frames_per_action"] == {"Walking": 10, "Eating": 9}
    assert result["receptive_field"] == 5 and result["protocol"] == "test-lift" and result["dataset"] == "toy"
    assert "per_subject" not in result


@pytest.mark.parametrize("flip", [False, True])
def test_an_offset_on_one_joint_gives_the_hand_computed_mpjpe(flip):
    data = _dataset()
    # |(30, 40, 0)| = 50 mm on one joint of 17; with flip the error is split over both ankles: 2 x 25 mm, same mean
    result = evaluate_lifter(_lifter(data, _joint_offset(3)), data, _protocol(), flip=flip)
    assert result["mpjpe_mm"]["mean"] == pytest.approx(50 / 17, rel=1e-4)
    assert result["mpjve_mm"]["mean"] == pytest.approx(0.0, abs=1e-3)  # a constant offset moves nothing
    # the alignments minimise squared errors, so they spread one joint's error and may exceed P1
    assert result["p_mpjpe_mm"]["mean"] > 0.1 and result["n_mpjpe_mm"]["mean"] > 0.1


def test_an_offset_on_the_root_moves_every_other_joint():
    data = _dataset()
    # the predicted root is subtracted: the 16 other joints are each 50 mm off, the root 0
    result = evaluate_lifter(_lifter(data, _joint_offset(0)), data, _protocol(), flip=False)
    assert result["mpjpe_mm"]["mean"] == pytest.approx(16 * 50 / 17, rel=1e-4)
    # the same offset on every joint is a translation: nothing moves once the root is subtracted
    every = _lifter(data, lambda index: torch.tensor([30.0, 40.0, 0.0]).expand(index.numel(), J, 3))
    assert evaluate_lifter(every, data, _protocol(), flip=False)["mpjpe_mm"]["mean"] == pytest.approx(0, abs=1e-3)


def test_a_scaled_pose_is_aligned_by_p2_and_n_mpjpe():
    data = _dataset()
    find = _lookup(data)

    def scaled(keypoints: torch.Tensor) -> torch.Tensor:
        return 1.25 * data.positions[find(keypoints)[0]]

    result = evaluate_lifter(scaled, data, _protocol(), flip=False)
    norms = data.positions.norm(dim=-1).mean(-1).double()  # mean joint distance from the root, per frame
    walking = torch.tensor([k.action == "Walking" for k in data.keys]).repeat_interleave(data.seq_lengths)
    expected = 0.25 * (norms[walking].mean() + norms[~walking].mean()) / 2
    assert result["mpjpe_mm"]["mean"] == pytest.approx(float(expected), rel=1e-4)
    # MPJVE: 0.25 x the true per-joint speed, over consecutive frames of one sequence only (never across two)
    speeds: dict[str, list[torch.Tensor]] = {"Walking": [], "Eating": []}
    for key, start, n in zip(data.keys, data.seq_starts.tolist(), data.seq_lengths.tolist()):
        frames = data.positions[start:start + n].double()
        speeds[key.action].append((frames[1:] - frames[:-1]).norm(dim=-1).mean(-1))
    expected_v = 0.25 * sum(float(torch.cat(v).mean()) for v in speeds.values()) / 2
    assert result["mpjve_mm"]["mean"] == pytest.approx(expected_v, rel=1e-4)
    assert result["p_mpjpe_mm"]["mean"] == pytest.approx(0.0, abs=1e-2)
    assert result["n_mpjpe_mm"]["mean"] == pytest.approx(0.0, abs=1e-2)


def test_the_headline_is_the_unweighted_mean_over_action_groups():
    data = _dataset()  # Walking: 6 + 4 frames, Eating: 9 frames
    walking = torch.tensor([k.action == "Walking" for k in data.keys]).repeat_interleave(data.seq_lengths)

    def offset(index: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(index.numel(), J, 3)
        out[:, 5, 2] = torch.where(walking[index], 34.0, 68.0)  # 2 mm and 4 mm averaged over 17 joints
        return out

    result = evaluate_lifter(_lifter(data, offset), data, _protocol(), flip=False)
    per_action = result["mpjpe_mm"]["per_action"]
    assert per_action["Walking"] == pytest.approx(2.0, rel=1e-4)
    assert per_action["Eating"] == pytest.approx(4.0, rel=1e-4)
    assert result["mpjpe_mm"]["mean"] == pytest.approx(3.0, rel=1e-4)  # not (10 * 2 + 9 * 4) / 19
    # restricting the actions (argument, then protocol) scores only those frames
    only = evaluate_lifter(_lifter(data, offset), data, _protocol(), flip=False, actions=["Eating"])
    assert only["actions"] == ["Eating"] and only["num_frames"] == 9
    assert only["mpjpe_mm"]["mean"] == pytest.approx(4.0, rel=1e-4)
    by_protocol = evaluate_lifter(_lifter(data, offset), data, _protocol(actions=("Walking",)), flip=False)
    assert by_protocol["num_frames"] == 10 and by_protocol["mpjpe_mm"]["mean"] == pytest.approx(2.0, rel=1e-4)
    with pytest.raises(ValueError, match="no frame"):
        evaluate_lifter(_lifter(data), data, _protocol(), actions=["Jumping"])


def test_by_subject_reports_every_subject():
    data = _dataset()  # S1: Walking (6), Eating (9); S2: Walking (4)
    subject_2 = torch.tensor([k.subject == "S2" for k in data.keys]).repeat_interleave(data.seq_lengths)

    def offset(index: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(index.numel(), J, 3)
        out[:, 9, 0] = torch.where(subject_2[index], 170.0, 17.0)  # 10 mm (S2) and 1 mm (S1) per frame
        return out

    result = evaluate_lifter(_lifter(data, offset), data, _protocol(by_subject=True), flip=False)
    s1, s2 = result["per_subject"]["S1"], result["per_subject"]["S2"]
    assert list(result["per_subject"]) == ["S1", "S2"]
    assert s1["mpjpe_mm"]["per_action"] == pytest.approx({"Walking": 1.0, "Eating": 1.0}, rel=1e-4)
    assert s1["mpjpe_mm"]["mean"] == pytest.approx(1.0, rel=1e-4)
    assert s2["mpjpe_mm"]["per_action"]["Walking"] == pytest.approx(10.0, rel=1e-4)
    assert math.isnan(s2["mpjpe_mm"]["per_action"]["Eating"])  # S2 has no Eating frame
    assert s2["mpjpe_mm"]["mean"] == pytest.approx(10.0, rel=1e-4)  # NaN groups are skipped
    # overall: Walking (6 x 1 + 4 x 10) / 10 = 4.6, Eating 1, mean 2.8
    assert result["mpjpe_mm"]["per_action"]["Walking"] == pytest.approx(4.6, rel=1e-4)
    assert result["mpjpe_mm"]["mean"] == pytest.approx(2.8, rel=1e-4)


@pytest.mark.parametrize("shape", [(J - 1, 3), (1, J, 3), (J, 2)])
def test_a_wrongly_shaped_output_raises(shape):
    data = _dataset()
    with pytest.raises(ValueError, match="expected"):
        evaluate_lifter(lambda kp: torch.zeros(kp.shape[0], *shape), data, _protocol(), flip=False)


def test_a_wrong_batch_size_raises():
    data = _dataset()
    with pytest.raises(ValueError, match="expected"):
        evaluate_lifter(lambda kp: torch.zeros(kp.shape[0] + 1, J, 3), data, _protocol(), flip=False)


def test_the_lifter_sees_edge_padded_windows():
    data = _dataset(lengths=(3, 4), actions=("A", "A"), subjects=("S1", "S1"))
    seen = []

    def lift(keypoints: torch.Tensor) -> torch.Tensor:
        seen.append(keypoints.clone())
        return torch.zeros(keypoints.shape[0], J, 3)

    evaluate_lifter(lift, data, _protocol(receptive_field=5), flip=False, batch_size=7)
    windows = data.window_frames(torch.arange(7), 5)
    assert len(seen) == 1 and torch.equal(seen[0], data.keypoints[windows])


def test_flip_averaged_of_an_equivariant_function_is_the_function():
    def equivariant(keypoints: torch.Tensor) -> torch.Tensor:
        centre = keypoints[:, keypoints.shape[1] // 2]
        return torch.cat([centre, centre[..., :1] ** 2 + centre[..., 1:].abs()], dim=-1)  # x odd, y and z even

    x = torch.randn(6, 3, J, 2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(equivariant(mirror(x, PERM)), mirror(equivariant(x), PERM))
    torch.testing.assert_close(flip_averaged(equivariant, PERM)(x), equivariant(x))


def test_flip_averaged_symmetrises_a_constant():
    pose = torch.randn(J, 3, generator=torch.Generator().manual_seed(1))

    def constant(keypoints: torch.Tensor) -> torch.Tensor:
        return pose.expand(keypoints.shape[0], J, 3)

    out = flip_averaged(constant, PERM)(torch.zeros(2, 1, J, 2))
    expected = (pose + mirror(pose, PERM)) / 2
    torch.testing.assert_close(out, expected.expand(2, J, 3))
    torch.testing.assert_close(mirror(out, PERM), out)  # the flip-averaged output is itself symmetric


def test_a_frame_stride_scores_every_sth_frame_of_each_sequence_from_its_first():
    data = _dataset()  # lengths 6, 9, 4: with stride 4, frames 0 4 | 0 4 8 | 0 of each sequence
    assert scored_frames(data, 4).tolist() == [0, 4, 6, 10, 14, 15]
    assert scored_frames(data, 1).tolist() == list(range(19))
    seen: list[int] = []
    find = _lookup(data)

    def lift(keypoints: torch.Tensor) -> torch.Tensor:
        index, _ = find(keypoints)
        seen.extend(index.tolist())
        # frame f is f mm off on joint 1 (f / 17 mm MPJPE): the headline then averages the scored frames only
        out = data.positions[index].clone()
        out[:, 1, 0] += index.double().float()
        return out

    stride = LiftingProtocol("strided", "test", 5, ("S1",), ("S2",), frame_stride=4)
    result = evaluate_lifter(lift, data, stride, flip=False, batch_size=4)
    assert sorted(seen) == [0, 4, 6, 10, 14, 15]
    assert result["num_frames"] == 6 and result["frame_stride"] == 4
    assert result["num_frames_per_action"] == {"Walking": 3, "Eating": 3}
    # Walking: frames 0, 4, 15; Eating: 6, 10, 14 -> means 19/3 and 30/3, over 17 joints
    assert result["mpjpe_mm"]["per_action"]["Walking"] == pytest.approx(19 / 3 / 17, rel=1e-4)
    assert result["mpjpe_mm"]["mean"] == pytest.approx((19 / 3 + 10) / 2 / 17, rel=1e-4)
    assert math.isnan(result["mpjve_mm"]["mean"])  # no two scored frames are consecutive
    with pytest.raises(ValueError, match="frame_stride"):
        LiftingProtocol("bad", "test", 5, ("S1",), ("S2",), frame_stride=0)
