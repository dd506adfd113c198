"""Pure position metrics with documented shapes (no I/O, no joint or frame selection, no in-place edits).

MPJPE ("mean per-joint position error", protocol 1 of Human3.6M) is the mean over joints of the Euclidean distance
between predicted and true joint positions, as in LTD / HisRepItself / siMLPe (``torch.norm(..., dim=-1).mean``).
Which joints and frames to average, and the mean over samples and actions, are decided by each task's evaluator
(``forecasting.py`` for forecasting). Evaluators look metrics up by name in :data:`METRICS`.

For 2D-to-3D lifting: :func:`p_mpjpe` (protocol 2: MPJPE after the optimal similarity alignment, as in VideoPose3D),
:func:`n_mpjpe` (MPJPE after the optimal scale only, Rhodin et al. 2018) and MPJVE, the mean per-joint velocity error
(:func:`velocity_error`, registered also as ``"mpjve"``).
Every metric is computed in float32 (or float64 if given), even when the inputs are half precision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["METRICS", "Metric", "bone_lengths", "get_metric", "mpjpe", "n_mpjpe", "p_mpjpe", "per_joint_error",
           "velocity", "velocity_error"]


def _promote(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    if pred.shape[-1] != 3:
        raise ValueError(f"expected positions [..., J, 3], got {tuple(pred.shape)}")


def per_joint_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per joint.

    Args:
        pred: Tensor[..., J, 3] predicted positions.
        target: Tensor[..., J, 3] true positions.

    Returns:
        Tensor[..., J] distances, in the unit of the inputs, float32 (float64 if an input is float64).
    """
    _check_pair(pred, target)
    return torch.linalg.vector_norm(_promote(pred) - _promote(target), dim=-1)


def mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint position error, keeping every leading dimension.

    Args:
        pred: Tensor[..., J, 3] predicted positions.
        target: Tensor[..., J, 3] true positions.

    Returns:
        Tensor[...] mean over the J joints of the per-joint distance (e.g. [B, T] for [B, T, J, 3] inputs).
    """
    return per_joint_error(pred, target).mean(dim=-1)


def _safe_denominator(x: torch.Tensor) -> torch.Tensor:
    """``x`` with zeros raised to the smallest normal number, so ``0 / x`` is 0 rather than NaN (degenerate poses)."""
    return x.clamp_min(torch.finfo(x.dtype).tiny)


def p_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE after the optimal similarity alignment of each predicted pose (Human3.6M protocol 2, "P-MPJPE").

    Each pose of ``pred`` (the J joints at one leading index) is scaled, rotated and translated onto its ``target``
    by orthogonal Procrustes: with centred poses ``X`` (pred) and ``Y`` (target) and ``X^T Y = U S V^T`` (SVD over the
    joints), the rotation is ``R = U D V^T`` with ``D = diag(1, 1, sign det(U V^T))`` (a proper rotation, never a
    reflection), the scale ``s = tr(S D) / |X|^2`` and the aligned pose ``s X R + mean(target)``; this minimises
    the summed squared joint error. Batched over all leading dimensions and differentiable (it may be used as a loss;
    the SVD gradient is undefined for poses whose cross-covariance has repeated singular values, e.g. degenerate ones).
    A degenerate prediction (all joints equal) is aligned to the target's centroid (scale 0), without NaN.

    Args:
        pred: Tensor[..., J, 3] predicted positions.
        target: Tensor[..., J, 3] true positions.

    Returns:
        Tensor[...] mean over the J joints of the distance after alignment, in the unit of ``target``.
    """
    _check_pair(pred, target)
    p, t = _promote(pred), _promote(target)
    if p.dtype != t.dtype:
        p, t = p.double(), t.double()
    target_mean = t.mean(dim=-2, keepdim=True)
    x = p - p.mean(dim=-2, keepdim=True)  # [..., J, 3]
    y = t - target_mean
    u, sigma, vh = torch.linalg.svd(x.transpose(-1, -2) @ y)  # [..., 3, 3], [..., 3], [..., 3, 3]
    det = torch.linalg.det(u @ vh)  # +-1
    reflection = torch.where(det < 0, -torch.ones_like(det), torch.ones_like(det))  # [...]
    signs = torch.cat([torch.ones_like(sigma[..., :-1]), reflection[..., None]], dim=-1)  # diagonal of D, [..., 3]
    rotation = (u * signs[..., None, :]) @ vh  # U D V^T, [..., 3, 3]
    scale = (sigma * signs).sum(dim=-1) / _safe_denominator(x.square().sum(dim=(-2, -1)))  # [...]
    aligned = scale[..., None, None] * (x @ rotation) + target_mean
    return mpjpe(aligned, t)


def n_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE after the optimal scale of each predicted pose ("N-MPJPE", Rhodin et al. 2018).

    The scale ``s = <pred, target> / <pred, pred>`` (sums over joints and coordinates, no centring) minimises the
    summed squared joint error of ``s * pred`` (like :func:`p_mpjpe`, N-MPJPE can exceed MPJPE when one joint is
    far off); an all-zero prediction gets ``s = 0`` (no NaN).

    Args:
        pred: Tensor[..., J, 3] predicted positions.
        target: Tensor[..., J, 3] true positions.

    Returns:
        Tensor[...] mean over the J joints of the distance between ``s * pred`` and ``target``.
    """
    _check_pair(pred, target)
    p, t = _promote(pred), _promote(target)
    if p.dtype != t.dtype:
        p, t = p.double(), t.double()
    scale = (p * t).sum(dim=(-2, -1)) / _safe_denominator(p.square().sum(dim=(-2, -1)))  # [...]
    return mpjpe(scale[..., None, None] * p, t)


def velocity(positions: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame displacement along the time axis.

    Args:
        positions: Tensor[..., T, J, 3].

    Returns:
        Tensor[..., T - 1, J, 3], ``positions[..., 1:, :, :] - positions[..., :-1, :, :]`` (unit per frame).
    """
    x = _promote(positions)
    return x[..., 1:, :, :] - x[..., :-1, :, :]


def velocity_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean per-joint error of the frame-to-frame displacements (siMLPe's velocity loss term).

    Args:
        pred: Tensor[..., T, J, 3] predicted positions.
        target: Tensor[..., T, J, 3] true positions.

    Returns:
        Tensor[..., T - 1] mean over joints of the distance between predicted and true displacements.
    """
    _check_pair(pred, target)
    return mpjpe(velocity(pred), velocity(target))


def bone_lengths(positions: torch.Tensor, parents: tuple[int, ...] | list[int]) -> torch.Tensor:
    """Length of the bone from each non-root joint to its parent.

    Args:
        positions: Tensor[..., J, 3].
        parents: parent index per joint, ``-1`` for roots.

    Returns:
        Tensor[..., J_nonroot] lengths, in the order of the non-root joints.
    """
    child = [j for j, p in enumerate(parents) if p >= 0]
    parent = [parents[j] for j in child]
    x = _promote(positions)
    return torch.linalg.vector_norm(x[..., child, :] - x[..., parent, :], dim=-1)


@dataclass(frozen=True)
class Metric:
    """A named pure metric: ``fn(pred, target) -> Tensor`` with its unit and what it reduces over."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    unit: str
    description: str


# The one metric registry: evaluators and losses name a metric here instead of importing a function.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("per_joint_error", per_joint_error, "unit of the inputs",
               "Euclidean distance per joint: [..., J, 3] x 2 -> [..., J]"),
        Metric("mpjpe", mpjpe, "unit of the inputs",
               "mean per-joint position error (Human3.6M protocol 1): [..., J, 3] x 2 -> [...]"),
        Metric("velocity_error", velocity_error, "unit of the inputs per frame",
               "mean per-joint error of frame-to-frame displacements: [..., T, J, 3] x 2 -> [..., T - 1]"),
        Metric("mpjve", velocity_error, "unit of the inputs per frame",
               "mean per-joint velocity error (MPJVE, = velocity_error): [..., T, J, 3] x 2 -> [..., T - 1]"),
        Metric("p_mpjpe", p_mpjpe, "unit of the inputs",
               "MPJPE after optimal similarity (scale, rotation, translation) alignment per pose (Human3.6M "
               "protocol 2): [..., J, 3] x 2 -> [...]"),
        Metric("n_mpjpe", n_mpjpe, "unit of the inputs",
               "MPJPE after optimal scale per pose (N-MPJPE): [..., J, 3] x 2 -> [...]"),
    )
}


def get_metric(name: str) -> Metric:
    """The registered metric ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(METRICS))}")
    return METRICS[name]
