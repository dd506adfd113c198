"""Skeleton constants: literature joint subsets, subset parents, body parts, mirror permutations."""

import pytest

from crisscross.data.skeleton import (
    BODY_PARTS,
    CMU_SKELETON,
    H36M_SKELETON,
    Skeleton,
    get_skeleton,
    skeleton_from_dict,
    skeleton_from_meta,
    skeleton_to_dict,
)

H36M_PREDICTED = (2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 14, 15, 17, 18, 19, 21, 22, 25, 26, 27, 29, 30)
CMU_PREDICTED = (3, 4, 5, 6, 9, 10, 11, 12, 14, 15, 17, 18, 19, 21, 22, 23, 25, 26, 28, 30, 31, 32, 34, 35, 37)


def test_h36m_literature_subsets():
    s = H36M_SKELETON
    assert s.num_joints == 32 and s.num_angle_values == 99
    assert s.predicted == H36M_PREDICTED
    assert s.copy_destinations() == (16, 20, 23, 24, 28, 31)
    assert s.copy_sources() == (13, 19, 22, 13, 27, 30)
    assert s.unpredicted_joints() == (0, 1, 6, 11)
    assert s.offsets_mm[2] == (0.0, -442.894612, 0.0)
    assert sum(len(row) for row in s.offsets_mm) == 96


def test_h36m_predicted_parents_hand_computed():
    # knees (2, 7) and upper spine (12) have no predicted ancestor; shoulders hang from 12, thumbs from the hands.
    expected = (-1, 0, 1, 2, -1, 4, 5, 6, -1, 8, 9, 10, 8, 12, 13, 14, 14, 8, 17, 18, 19, 19)
    assert H36M_SKELETON.predicted_parents() == expected


def test_body_parts_cover_predicted_joints():
    parts = H36M_SKELETON.predicted_body_parts()
    assert len(parts) == 22 and set(parts) == set(range(len(BODY_PARTS)))
    names = [BODY_PARTS[p] for p in parts]
    assert names[H36M_PREDICTED.index(2)] == "right_leg"  # RightLeg
    assert names[H36M_PREDICTED.index(18)] == "left_arm"  # LeftForeArm
    assert names[H36M_PREDICTED.index(14)] == "torso"  # Head


def test_cmu_literature_subsets():
    s = CMU_SKELETON
    assert s.num_joints == 38 and s.num_angle_values == 117
    assert s.predicted == CMU_PREDICTED
    assert s.unpredicted_joints() == (0, 1, 2, 7, 8, 13)
    assert s.copies == ((16, 15), (20, 15), (29, 15), (24, 23), (27, 23), (33, 32), (36, 32))
    assert s.offsets_mm[3] == pytest.approx((2.5972 * 70, -7.13576 * 70, 0.0))
    assert len(s.predicted_parents()) == 25


@pytest.mark.parametrize("skeleton", [H36M_SKELETON, CMU_SKELETON])
def test_mirror_permutation_is_an_involution_and_swaps_sides(skeleton):
    perm = skeleton.mirror_permutation()
    assert [perm[p] for p in perm] == list(range(skeleton.num_joints))
    for j, name in enumerate(skeleton.joint_names):
        if name.startswith("Left"):
            assert skeleton.joint_names[perm[j]] == "Right" + name[4:]
    sub = skeleton.mirror_permutation(skeleton.predicted)
    assert sorted(sub) == list(range(len(skeleton.predicted)))
    # left joints are on +x in the rest offsets (the lateral axis)
    left_hip = skeleton.joint_names.index("LeftUpLeg")
    assert skeleton.offsets_mm[left_hip][skeleton.lateral_axis] > 0


def test_mirror_subset_missing_partner_raises():
    with pytest.raises(ValueError, match="not in the subset"):
        H36M_SKELETON.mirror_permutation([2, 3])


def test_invalid_skeleton_rejected():
    with pytest.raises(ValueError, match="earlier joint"):
        Skeleton("bad", ("a", "b"), (1, -1), ((0, 0, 0), (0, 0, 0)), (0,))


def test_get_skeleton():
    assert get_skeleton("h36m") is H36M_SKELETON
    with pytest.raises(KeyError, match="cmu, h36m"):
        get_skeleton("nope")


@pytest.mark.parametrize("skeleton", [H36M_SKELETON, CMU_SKELETON])
def test_skeleton_description_round_trips_through_plain_lists(skeleton):
    import json

    values = json.loads(json.dumps(skeleton_to_dict(skeleton)))  # what a checkpoint or YAML file would hold
    assert skeleton_from_dict(values) == skeleton
    assert skeleton_from_meta({"skeleton": "unused", "skeleton_spec": values}) == skeleton


def test_skeleton_from_meta_falls_back_to_a_built_in_name_and_rejects_bad_descriptions():
    assert skeleton_from_meta({"skeleton": "cmu"}) is CMU_SKELETON  # checkpoints written before descriptions
    user = Skeleton("mine", ("root", "knee"), (-1, 0), ((0.0, 0.0, 0.0), (0.0, -400.0, 0.0)), (1,))
    assert skeleton_from_meta({"skeleton": "mine", "skeleton_spec": skeleton_to_dict(user)}) == user
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\], missing fields \['predicted'\]"):
        skeleton_from_dict({**{k: v for k, v in skeleton_to_dict(user).items() if k != "predicted"}, "colour": 1})
    with pytest.raises(ValueError, match="parent 1 of joint 1 is not an earlier joint"):
        skeleton_from_dict({**skeleton_to_dict(user), "parents": [-1, 1]})
