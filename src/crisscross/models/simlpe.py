"""siMLPe: a DCT + all-MLP forecaster (Guo et al., WACV 2023, "Back to MLP: A Simple Baseline for Human
Motion Prediction"; code ``dulucas/siMLPe`` ``exps/baseline_h36m/mlp.py`` and ``model.py``).

``past[B, T_in, J, 3]`` is flattened to ``J*3`` channels, transformed by an orthonormal DCT over time,
mixed by ``fc_in`` over channels, then by ``depth`` blocks of ``Linear(T -> T)`` over the DCT axis followed by
a LayerNorm over the channels with a residual, ``fc_out`` over channels, the inverse DCT; the first
``T_out`` frames plus the last observed frame are the prediction. No activations anywhere.

Lengths: the published model maps 50 -> 10 frames and keeps all 50 coefficients. Here ``T = max(T_in,
T_out)``: when ``T_out > T_in`` (10 -> 25) the input is first padded to ``T`` frames by repeating its last
frame, so the inverse DCT yields enough frames; otherwise ``T = T_in``. With 66 channels and ``T = 50``,
48 blocks give the published 137,580 parameters (``simlpe-48``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.layers import dct_matrix
from crisscross.models.registry import register_model

__all__ = ["SiMLPe"]


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of ``x[B, C, T]`` (siMLPe's spatial normalisation)."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1))
        self.bias = nn.Parameter(torch.zeros(channels, 1))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each frame's ``C`` channels."""
        mean = x.mean(dim=1, keepdim=True)
        var = (x - mean).square().mean(dim=1, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight + self.bias


class TemporalMLPBlock(nn.Module):
    """``x + LN_C(Linear_T(x))`` on ``x[B, C, T]``."""

    def __init__(self, channels: int, frames: int) -> None:
        super().__init__()
        self.fc = nn.Linear(frames, frames)
        self.norm = ChannelLayerNorm(channels)
        # As in siMLPe: near-zero init (gain 1e-8) so every block starts as the identity.
        nn.init.xavier_uniform_(self.fc.weight, gain=1e-8)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, T] -> [B, C, T]``."""
        return x + self.norm(self.fc(x))


class SiMLPe(nn.Module):
    """siMLPe: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]`` (see module docstring)."""

    def __init__(self, *, num_joints: int, input_frames: int, output_frames: int, depth: int) -> None:
        super().__init__()
        channels = num_joints * 3
        self.frames = max(input_frames, output_frames)
        self.input_frames, self.output_frames = input_frames, output_frames
        self.register_buffer("dct", dct_matrix(self.frames), persistent=False)
        self.fc_in = nn.Linear(channels, channels)
        self.blocks = nn.Sequential(*(TemporalMLPBlock(channels, self.frames) for _ in range(depth)))
        self.fc_out = nn.Linear(channels, channels)
        # siMLPe initialises fc_out with gain 1e-8: the model starts as a last-frame repeater.
        nn.init.xavier_uniform_(self.fc_out.weight, gain=1e-8)
        nn.init.zeros_(self.fc_out.bias)

    def forward(self, past: Tensor) -> Tensor:
        """``past[B, T_in, J, 3] -> [B, T_out, J, 3]``."""
        b, t_in, j, _ = past.shape
        x = past.reshape(b, t_in, j * 3)
        if self.frames > t_in:
            x = torch.cat([x, x[:, -1:].expand(-1, self.frames - t_in, -1)], dim=1)
        coeffs = torch.matmul(self.dct.to(x.dtype), x)  # [B, T, C]
        h = self.fc_in(coeffs).transpose(1, 2)  # [B, C, T]
        h = self.fc_out(self.blocks(h).transpose(1, 2))  # [B, T, C]
        y = torch.matmul(self.dct.t().to(h.dtype), h)[:, : self.output_frames]
        return (y + x[:, t_in - 1 : t_in]).reshape(b, self.output_frames, j, 3)


@register_model("simlpe", description="siMLPe (DCT + temporal MLP blocks), 16 blocks")
def simlpe(*, num_joints: int, input_frames: int, output_frames: int, graph_parents: tuple[int, ...] | None = None,
           body_parts: tuple[int, ...] | None = None, depth: int = 16) -> SiMLPe:
    """siMLPe with a depth suited to short 10 -> 25 windows."""
    return SiMLPe(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames, depth=depth)


@register_model("simlpe-48", description="siMLPe at the published size: 48 blocks")
def simlpe_48(*, num_joints: int, input_frames: int, output_frames: int,
              graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
              depth: int = 48) -> SiMLPe:
    """siMLPe with the published 48 blocks (137,580 parameters at 50 -> 10 frames, 22 joints)."""
    return SiMLPe(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames, depth=depth)
