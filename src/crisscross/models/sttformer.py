"""STTFormer: spatio-temporal tuple attention (Qiu et al., 2022, "Spatio-Temporal Tuple Transformer for
Skeleton-Based Action Recognition", code ``heleiqiu/STTFormer``), as adapted to forecasting by the
AML 2023/24 course's provided baseline.

The ``T`` frames are cut into non-overlapping tuples of ``tuple_len`` consecutive frames; self-attention runs
among all ``tuple_len * J`` joint tokens of a tuple (so a joint can attend to other joints in neighbouring
frames), then an inter-frame feature aggregation (IFFA: a temporal convolution across tuples) mixes
tuples, then a feed-forward. When ``T`` is not a multiple of ``tuple_len`` the sequence is front-padded with
copies of its first frame. Forecasting head: a single final convolution from input frames to output
frames (frames as channels, :class:`~crisscross.models.layers.TemporalExpansion`), a ``Linear(D -> 3)``
read-out, and the last observed pose added back.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.attention import AttentionSink, attend
from crisscross.models.layers import FeedForward, ResidualBranch, TemporalExpansion
from crisscross.models.registry import register_model

__all__ = ["STTFormer", "STTFormerEncoder", "TupleAttention"]


class TupleAttention(nn.Module):
    """Multi-head self-attention among the ``n * J`` tokens of each tuple of ``x[B, P, n*J, D]``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_sink: AttentionSink | None = None

    def forward(self, x: Tensor) -> Tensor:
        """``[B, P, L, D] -> [B, P, L, D]``."""
        b, p, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, p, n, 3, self.heads, d // self.heads).permute(3, 0, 1, 4, 2, 5)
        out = attend(q, k, v, dropout_p=self.dropout if self.training else 0.0, sink=self.attention_sink,
                     kind="tuple", mode="self")  # [B, P, H, L, c]
        return self.proj(out.transpose(2, 3).reshape(b, p, n, d))


class STTBlock(nn.Module):
    """Tuple attention, inter-tuple temporal convolution (IFFA) and a feed-forward, each residual."""

    def __init__(self, dim: int, heads: int, tuple_len: int, *, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.tuple_len = tuple_len
        self.attn = TupleAttention(dim, heads, dropout)
        self.iffa = nn.Conv2d(dim, dim, kernel_size=(3, 1), padding=(1, 0))
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.res_attn = ResidualBranch(dim, "pre")
        self.res_iffa = ResidualBranch(dim, "pre")
        self.res_mlp = ResidualBranch(dim, "pre")

    def _tuples(self, x: Tensor) -> Tensor:
        b, t, j, d = x.shape
        return x.reshape(b, t // self.tuple_len, self.tuple_len * j, d)

    def _aggregate(self, x: Tensor) -> Tensor:
        """IFFA over ``x[B, P, n*J, D]``: convolution along the tuple axis."""
        return self.iffa(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]`` with ``T`` a multiple of ``tuple_len``."""
        shape = x.shape
        x = self._tuples(x)
        x = self.res_attn(x, self.attn)
        x = self.res_iffa(x, self._aggregate)
        return self.res_mlp(x, self.mlp).reshape(shape)


class STTFormerEncoder(nn.Module):
    """Learned frame/joint positions and a stack of :class:`STTBlock`: ``[B, T, J, D] -> [B, T, J, D]``."""

    def __init__(self, *, num_joints: int, frames: int, dim: int, depth: int, heads: int, tuple_len: int,
                 mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.tuple_len = tuple_len
        self.pad = (-frames) % tuple_len
        self.frame_embed = nn.Parameter(torch.zeros(frames + self.pad, 1, dim))
        self.joint_embed = nn.Parameter(torch.zeros(num_joints, dim))
        nn.init.trunc_normal_(self.frame_embed, std=0.02)
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        self.blocks = nn.Sequential(
            *(STTBlock(dim, heads, tuple_len, mlp_ratio=mlp_ratio, dropout=dropout) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x[B, T, J, D]`` (front-padded to whole tuples internally, cropped back)."""
        if self.pad:
            x = torch.cat([x[:, :1].expand(-1, self.pad, -1, -1), x], dim=1)
        x = self.blocks(x + self.frame_embed + self.joint_embed)
        return self.norm(x[:, self.pad :])


class STTFormer(nn.Module):
    """STTFormer forecaster: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]``."""

    def __init__(self, *, num_joints: int, input_frames: int, output_frames: int, dim: int, depth: int,
                 heads: int, tuple_len: int, mlp_ratio: float = 2.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.embed = nn.Linear(3, dim)
        self.encoder = STTFormerEncoder(num_joints=num_joints, frames=input_frames, dim=dim, depth=depth,
                                        heads=heads, tuple_len=tuple_len, mlp_ratio=mlp_ratio, dropout=dropout)
        self.expand = TemporalExpansion(input_frames, output_frames)
        self.head = nn.Linear(dim, 3)
        nn.init.normal_(self.head.weight, std=1e-3)  # start close to a last-pose repeater
        nn.init.zeros_(self.head.bias)

    def no_weight_decay(self) -> set[str]:
        """Positional embeddings."""
        return {"encoder.frame_embed", "encoder.joint_embed"}

    def forward(self, past: Tensor) -> Tensor:
        """Encode the observed frames, expand ``T_in -> T_out`` with one convolution, read out offsets."""
        return self.head(self.expand(self.encoder(self.embed(past)))) + past[:, -1:]


@register_model("sttformer", description="Spatio-temporal tuple transformer + final frame convolution (course)")
def sttformer(*, num_joints: int, input_frames: int, output_frames: int,
              graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
              **overrides) -> STTFormer:
    """STTFormer: width 64, 3 blocks, 4 heads, tuples of 2 frames."""
    kwargs = dict(dim=64, depth=3, heads=4, tuple_len=2, mlp_ratio=2.0, dropout=0.0) | overrides
    return STTFormer(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames, **kwargs)
