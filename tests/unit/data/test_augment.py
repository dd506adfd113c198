"""Augmentation invariances."""

import math

import torch

from crisscross.data.augment import augment_batch, mirror, reverse_time, rotate_vertical
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.data.synthetic import load_synthetic
from crisscross.evaluation.metrics import bone_lengths

PARENTS = H36M_SKELETON.parents


def _windows() -> torch.Tensor:
    motion = load_synthetic("val", actions=["walking"])
    return motion.gather(torch.tensor([0, 40, 200]), 20)  # [3, 20, 32, 3]


def test_mirror_twice_is_identity_and_swaps_sides():
    x = _windows()
    perm = H36M_SKELETON.mirror_permutation()
    once = mirror(x, perm)
    torch.testing.assert_close(mirror(once, perm), x)
    left_hand, right_hand = H36M_SKELETON.joint_names.index("LeftHand"), H36M_SKELETON.joint_names.index("RightHand")
    torch.testing.assert_close(once[..., right_hand, 0], -x[..., left_hand, 0])
    # each bone of the mirrored body has the length of its mirror bone in the original (left/right bones differ)
    swapped_x = x[..., list(perm), :]
    torch.testing.assert_close(bone_lengths(once, PARENTS), bone_lengths(swapped_x, PARENTS), atol=1e-3, rtol=0)


def test_mirror_on_predicted_subset():
    x = _windows()[:, :, list(H36M_SKELETON.predicted)]
    perm = H36M_SKELETON.mirror_permutation(H36M_SKELETON.predicted)
    torch.testing.assert_close(mirror(mirror(x, perm), perm), x)


def test_rotation_preserves_bone_lengths_and_height_and_inverts():
    x = _windows().double()
    angles = torch.tensor([0.3, -2.0, math.pi], dtype=torch.float64)
    rotated = rotate_vertical(x, angles)
    torch.testing.assert_close(bone_lengths(rotated, PARENTS), bone_lengths(x, PARENTS))
    torch.testing.assert_close(rotated[..., 1], x[..., 1])  # y (up) untouched
    torch.testing.assert_close(rotate_vertical(rotated, -angles), x)
    quarter = rotate_vertical(torch.tensor([[[[0.0, 0.0, 1.0]]]]), math.pi / 2)  # z -> x about y
    torch.testing.assert_close(quarter, torch.tensor([[[[1.0, 0.0, 0.0]]]]), atol=1e-7, rtol=0)


def test_reverse_twice_is_identity():
    x = _windows()
    torch.testing.assert_close(reverse_time(reverse_time(x)), x)
    torch.testing.assert_close(reverse_time(x)[:, 0], x[:, -1])


def test_augment_batch_is_reproducible_and_switchable():
    x = _windows()
    perm = H36M_SKELETON.mirror_permutation()
    a = augment_batch(x, torch.Generator().manual_seed(0), mirror_permutation=perm, reverse=True)
    b = augment_batch(x, torch.Generator().manual_seed(0), mirror_permutation=perm, reverse=True)
    torch.testing.assert_close(a, b)
    off = augment_batch(x, torch.Generator().manual_seed(0), rotate=False)
    torch.testing.assert_close(off, x)
    assert torch.equal(x, _windows())  # input untouched


# Lifting's 17-joint Human3.6M layout: left hip/knee/foot and shoulder/elbow/wrist, and their right counterparts.
LEFT_17, RIGHT_17 = (4, 5, 6, 11, 12, 13), (1, 2, 3, 14, 15, 16)


def _flip_permutation_17() -> list[int]:
    perm = list(range(17))
    for left, right in zip(LEFT_17, RIGHT_17):
        perm[left], perm[right] = right, left
    return perm


def test_mirror_is_the_horizontal_flip_of_2d_keypoints_and_3d_poses():
    perm = _flip_permutation_17()
    gen = torch.Generator().manual_seed(0)
    for channels in (2, 3):
        x = torch.rand(2, 5, 17, channels, generator=gen) * 2 - 1  # [B, T, J, C], x in [-1, 1]
        flipped = mirror(x, perm)
        assert flipped.shape == x.shape
        torch.testing.assert_close(mirror(flipped, perm), x)  # flipping twice is the identity
        # the right wrist (16) lands on the left wrist (13) with x negated, the other coordinates kept, and back
        torch.testing.assert_close(flipped[..., 13, 0], -x[..., 16, 0])
        torch.testing.assert_close(flipped[..., 13, 1:], x[..., 16, 1:])
        torch.testing.assert_close(flipped[..., 16, 0], -x[..., 13, 0])
        torch.testing.assert_close(flipped[..., 0, :], x[..., 0, :] * torch.tensor([-1.0] + [1.0] * (channels - 1)))
        assert flipped.abs().max() <= 1  # normalised screen coordinates stay in [-1, 1]
    single = torch.zeros(17, 2)  # no leading dimensions
    single[16] = torch.tensor([0.25, -0.5])
    expected = torch.zeros(17, 2)
    expected[13] = torch.tensor([-0.25, -0.5])
    torch.testing.assert_close(mirror(single, perm), expected)
    assert single[16, 0] == 0.25  # input untouched
