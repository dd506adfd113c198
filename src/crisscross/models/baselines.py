"""Parameter-free baselines: repeat the last observed pose, or extrapolate its last velocity.

The zero-velocity baseline is the classic strong short-horizon reference of Martinez et al. (CVPR 2017,
"On human motion prediction using recurrent neural networks").
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.registry import register_model

__all__ = ["ConstantVelocity", "ZeroVelocity"]


class ZeroVelocity(nn.Module):
    """Repeat the last observed frame: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]``."""

    def __init__(self, output_frames: int) -> None:
        super().__init__()
        self.output_frames = output_frames

    def forward(self, past: Tensor) -> Tensor:
        """Last frame repeated ``T_out`` times."""
        return past[:, -1:].expand(-1, self.output_frames, -1, -1).clone()


class ConstantVelocity(nn.Module):
    """Extrapolate the last frame-to-frame velocity linearly (zero velocity when ``T_in == 1``)."""

    def __init__(self, output_frames: int) -> None:
        super().__init__()
        self.register_buffer("steps", torch.arange(1, output_frames + 1, dtype=torch.float32).view(1, -1, 1, 1),
                             persistent=False)

    def forward(self, past: Tensor) -> Tensor:
        """``last + k * (last - previous)`` for ``k = 1..T_out``."""
        last = past[:, -1:]
        velocity = last - past[:, -2:-1] if past.shape[1] > 1 else torch.zeros_like(last)
        return last + self.steps.to(past.dtype) * velocity


@register_model("zero-velocity", description="Repeat the last observed pose (no parameters)", trainable=False)
def zero_velocity(*, num_joints: int, input_frames: int, output_frames: int,
                  graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None
                  ) -> ZeroVelocity:
    """Zero-velocity baseline."""
    return ZeroVelocity(output_frames)


@register_model("constant-velocity", description="Extrapolate the last velocity (no parameters)", trainable=False)
def constant_velocity(*, num_joints: int, input_frames: int, output_frames: int,
                      graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None
                      ) -> ConstantVelocity:
    """Constant-velocity baseline."""
    return ConstantVelocity(output_frames)
