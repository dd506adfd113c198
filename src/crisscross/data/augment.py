"""Pure augmentations of position windows ``Tensor[B, T, J, 3]`` (no in-place edits, no global RNG).

* :func:`rotate_vertical`: rotation about the vertical axis through the root. In the literature's FK output
  (``kinematics.py``, no axis swap) the vertical axis is ``y`` (index 1): in the rest pose the legs hang along -y and on
  the real H3.6M data the head is ~1.4 m above the toes along +y (checked in ``tests/realdata``).
* :func:`mirror`: left/right reflection: negate the lateral axis (``x``, the subject's left) and swap the left/right
  joints with :meth:`~crisscross.data.skeleton.Skeleton.mirror_permutation`. It takes any ``Tensor[..., J, C]``, so it
  is also the horizontal flip of 2D-to-3D lifting's test-time augmentation: the same call flips the 2D inputs
  (normalised screen coordinates, ``x`` in [-1, 1], C = 2) and the 3D camera-frame outputs (C = 3).
* :func:`reverse_time`: play the window backwards (siMLPe's only augmentation). Apply it to the whole window (past and
  future together) before splitting it.

Rotation and mirroring preserve bone lengths; mirroring and reversal are involutions. :func:`augment_batch` draws
the per-sample choices from an explicit generator, each augmentation switchable.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["augment_batch", "mirror", "reverse_time", "rotate_vertical"]


def rotate_vertical(x: torch.Tensor, angle_rad: torch.Tensor | float, vertical_axis: int = 1) -> torch.Tensor:
    """Rotate positions about the vertical axis (right-handed, counter-clockwise seen from above).

    Args:
        x: Tensor[B, T, J, 3] positions.
        angle_rad: Tensor[B] one angle per sample, or one float for all.
        vertical_axis: index of the up axis (1 = ``y`` for the H3.6M/CMU FK output).

    Returns:
        Tensor[B, T, J, 3] rotated positions.
    """
    first, second = (vertical_axis + 1) % 3, (vertical_axis + 2) % 3
    angle = torch.as_tensor(angle_rad, dtype=x.dtype, device=x.device)
    if angle.ndim == 1:
        angle = angle[:, None, None]  # [B, 1, 1] against [B, T, J]
    cos, sin = torch.cos(angle), torch.sin(angle)
    a, b = x[..., first], x[..., second]
    out = x.clone()
    out[..., first] = cos * a - sin * b
    out[..., second] = sin * a + cos * b
    return out


def mirror(x: torch.Tensor, permutation: Sequence[int] | torch.Tensor, lateral_axis: int = 0) -> torch.Tensor:
    """Reflect left and right (also the horizontal flip of 2D keypoints and 3D camera-frame poses).

    Args:
        x: Tensor[..., J, C] positions, any leading dimensions and any C (3 for 3D positions, 2 for 2D keypoints).
        permutation: joint permutation swapping left and right over these J joints
            (``skeleton.mirror_permutation(joints)``); joint ``j`` of the result is joint ``permutation[j]`` of ``x``.
        lateral_axis: index of the left-right coordinate (0 = ``x``).

    Returns:
        Tensor[..., J, C] with the lateral coordinate negated and left/right joints exchanged.
    """
    perm = torch.as_tensor(permutation, dtype=torch.long, device=x.device)
    if perm.numel() != x.shape[-2]:
        raise ValueError(f"mirror permutation has {perm.numel()} joints, positions have {x.shape[-2]}")
    out = x.index_select(-2, perm).clone()
    out[..., lateral_axis] = -out[..., lateral_axis]
    return out


def reverse_time(x: torch.Tensor) -> torch.Tensor:
    """The window played backwards: Tensor[B, T, J, 3] -> Tensor[B, T, J, 3] with frame t = input frame T-1-t."""
    return x.flip(-3)


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    *,
    rotate: bool = True,
    mirror_permutation: Sequence[int] | torch.Tensor | None = None,
    reverse: bool = False,
    vertical_axis: int = 1,
    lateral_axis: int = 0,
    mirror_probability: float = 0.5,
    reverse_probability: float = 0.5,
) -> torch.Tensor:
    """Random per-sample augmentation of a batch of whole windows.

    Args:
        x: Tensor[B, T, J, 3] windows (past and future together).
        generator: source of the random draws (on ``x``'s device); ``None`` uses torch's default generator.
        rotate: rotate each sample by a uniform angle in [0, 2 pi) about the vertical axis.
        mirror_permutation: when given, mirror each sample with ``mirror_probability``.
        reverse: reverse each sample in time with ``reverse_probability``.
        vertical_axis: up axis for the rotation.
        lateral_axis: left-right axis for the mirror.
        mirror_probability: probability of mirroring one sample.
        reverse_probability: probability of reversing one sample.

    Returns:
        Tensor[B, T, J, 3].
    """
    batch = x.shape[0]
    flags = torch.rand(3, batch, generator=generator, device=x.device)
    if rotate:
        x = rotate_vertical(x, flags[0] * (2 * torch.pi), vertical_axis)
    if mirror_permutation is not None:
        chosen = (flags[1] < mirror_probability)[:, None, None, None]
        x = torch.where(chosen, mirror(x, mirror_permutation, lateral_axis), x)
    if reverse:
        chosen = (flags[2] < reverse_probability)[:, None, None, None]
        x = torch.where(chosen, reverse_time(x), x)
    return x
