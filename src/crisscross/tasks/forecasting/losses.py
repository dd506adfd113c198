"""Training losses, computed in float32 even under autocast.

Positions are in metres; ``mpjpe_loss`` is the mean per-joint L2 distance (the literature's training
loss), ``velocity_loss`` the same on frame-to-frame differences (siMLPe's auxiliary term).
"""

from __future__ import annotations

import torch

__all__ = ["mpjpe_loss", "mse_loss", "position_loss", "velocity_loss"]


def mpjpe_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over B, T, J of ||pred - target||_2. Shapes: [B, T, J, 3] -> scalar."""
    return torch.linalg.vector_norm(pred.float() - target.float(), dim=-1).mean()


def mse_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared coordinate error. Shapes: [B, T, J, 3] -> scalar."""
    return (pred.float() - target.float()).pow(2).mean()


def velocity_loss(pred: torch.Tensor, target: torch.Tensor, last_observed: torch.Tensor) -> torch.Tensor:
    """MPJPE between predicted and true frame-to-frame displacements, starting from the last observed frame.

    Shapes: pred, target [B, T, J, 3]; last_observed [B, 1, J, 3] -> scalar.
    """
    p = torch.cat([last_observed, pred], dim=1).float()
    t = torch.cat([last_observed, target], dim=1).float()
    return mpjpe_loss(p.diff(dim=1), t.diff(dim=1))


POSITION_LOSSES = {"mpjpe": mpjpe_loss, "mse": mse_loss}


def position_loss(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The configured position loss by name."""
    return POSITION_LOSSES[name](pred, target)
