"""Training losses, computed in float32 even under autocast.

Positions are in metres; ``mpjpe_loss`` is the mean per-joint L2 distance (the literature's training
loss), ``velocity_loss`` the same on frame-to-frame differences (siMLPe's auxiliary term).

``frame_weights`` (``[T]``, optional, ``train.frame_weights``) turns the mean over frames into a weighted mean,
``sum_t w_t e_t / sum_t w_t``: a schedule of weights that falls over the predicted frames trades accuracy at the
far frames of a training window for accuracy at the near ones. Uniform weights give the plain mean.
"""

from __future__ import annotations

import torch

__all__ = ["mpjpe_loss", "mse_loss", "position_loss", "velocity_loss"]


def _frame_mean(err: torch.Tensor, frame_weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``err`` ``[B, T, ...]``, over frames weighted by ``frame_weights`` ``[T]`` when given."""
    if frame_weights is None:
        return err.mean()
    if frame_weights.shape != (err.shape[1],):
        raise ValueError(f"frame_weights has shape {tuple(frame_weights.shape)}, expected ({err.shape[1]},): one "
                         f"weight per predicted frame")
    per_frame = err.reshape(err.shape[0], err.shape[1], -1).mean(dim=(0, 2))
    w = frame_weights.to(per_frame)
    return (per_frame * w).sum() / w.sum()


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor, frame_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over B, T, J of ||pred - target||_2 (T weighted by ``frame_weights``). Shapes: [B, T, J, 3] -> scalar."""
    return _frame_mean(torch.linalg.vector_norm(pred.float() - target.float(), dim=-1), frame_weights)


def mse_loss(pred: torch.Tensor, target: torch.Tensor, frame_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared coordinate error (T weighted by ``frame_weights``). Shapes: [B, T, J, 3] -> scalar."""
    return _frame_mean((pred.float() - target.float()).pow(2), frame_weights)


def velocity_loss(pred: torch.Tensor, target: torch.Tensor, last_observed: torch.Tensor,
                  frame_weights: torch.Tensor | None = None) -> torch.Tensor:
    """MPJPE between predicted and true frame-to-frame displacements, starting from the last observed frame.

    The displacement into predicted frame t carries frame t's weight. Shapes: pred, target [B, T, J, 3];
    last_observed [B, 1, J, 3]; frame_weights [T] -> scalar.
    """
    p = torch.cat([last_observed, pred], dim=1).float()
    t = torch.cat([last_observed, target], dim=1).float()
    return mpjpe_loss(p.diff(dim=1), t.diff(dim=1), frame_weights)


POSITION_LOSSES = {"mpjpe": mpjpe_loss, "mse": mse_loss}


def position_loss(name: str, pred: torch.Tensor, target: torch.Tensor,
                  frame_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The configured position loss by name."""
    return POSITION_LOSSES[name](pred, target, frame_weights)
