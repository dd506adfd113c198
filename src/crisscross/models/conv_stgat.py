"""ConvSTGAT: stacked graph-attention + convolution blocks, one of the AML 2023/24 course designs.

Each block is one graph-attention layer over the skeleton (GAT, Velickovic et al., ICLR 2018: additive
attention ``LeakyReLU(a_src . W h_i + a_dst . W h_j)`` normalised over the neighbours of joint ``i``),
applied to every frame, followed by one 2D convolution over the (frames x joints) grid; both are residual.
The neighbourhood is the tree given by ``graph_parents`` plus self-loops (a chain when absent). The
forecast ends in a two-layer temporal expansion (frames as channels, ``T_in -> T_out -> T_out``), the
"deeper temporal explosion" the course contrasted with STTFormer's single final convolution.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from crisscross.models.attention import AttentionSink
from crisscross.models.layers import ResidualBranch, TemporalExpansion, resolve_parents, skeleton_adjacency
from crisscross.models.registry import register_model

__all__ = ["ConvSTGAT", "GraphAttention"]


class GraphAttention(nn.Module):
    """Multi-head GAT layer over the joints of each frame: ``x[B, T, J, D] -> [B, T, J, D]``."""

    def __init__(self, dim: int, heads: int, adjacency: Tensor, negative_slope: float = 0.2) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be divisible by heads {heads}")
        self.heads, self.negative_slope = heads, negative_slope
        self.lin = nn.Linear(dim, dim, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, dim // heads))
        self.att_dst = nn.Parameter(torch.empty(heads, dim // heads))
        nn.init.xavier_uniform_(self.att_src)
        nn.init.xavier_uniform_(self.att_dst)
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("adjacency", adjacency.clone(), persistent=False)  # [J, J] bool
        self.attention_sink: AttentionSink | None = None

    def forward(self, x: Tensor) -> Tensor:
        """Aggregate each joint's neighbours with learned attention weights."""
        b, t, j, d = x.shape
        h = self.lin(x).reshape(b, t, j, self.heads, -1).transpose(2, 3)  # [B, T, H, J, c]
        score_i = (h * self.att_src[:, None]).sum(-1)  # [B, T, H, J] (receiving joint)
        score_j = (h * self.att_dst[:, None]).sum(-1)  # [B, T, H, J] (sending joint)
        scores = F.leaky_relu(score_i[..., :, None] + score_j[..., None, :], self.negative_slope)
        weights = scores.masked_fill(~self.adjacency, float("-inf")).softmax(dim=-1)  # [B, T, H, J, J]
        if self.attention_sink is not None:
            self.attention_sink.add("graph", "self", weights)
        out = (weights @ h).transpose(2, 3).reshape(b, t, j, d)
        return out + self.bias


class STGATBlock(nn.Module):
    """Graph attention per frame, then a 3x3 convolution over (frames x joints), each residual, pre-norm."""

    def __init__(self, dim: int, heads: int, adjacency: Tensor, dropout: float) -> None:
        super().__init__()
        self.gat = GraphAttention(dim, heads, adjacency)
        self.conv = nn.Conv2d(dim, dim, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.res_gat = ResidualBranch(dim, "pre")
        self.res_conv = ResidualBranch(dim, "pre")

    def _convolve(self, x: Tensor) -> Tensor:
        return self.drop(self.act(self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)))

    def forward(self, x: Tensor) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]``."""
        x = self.res_gat(x, lambda y: self.drop(self.gat(y)))
        return self.res_conv(x, self._convolve)


class ConvSTGAT(nn.Module):
    """ConvSTGAT forecaster: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]``."""

    def __init__(self, *, num_joints: int, input_frames: int, output_frames: int, parents: tuple[int, ...],
                 dim: int, depth: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        adjacency = skeleton_adjacency(parents)
        self.embed = nn.Linear(3, dim)
        self.joint_embed = nn.Parameter(torch.zeros(num_joints, dim))
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        self.blocks = nn.Sequential(*(STGATBlock(dim, heads, adjacency, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Sequential(
            TemporalExpansion(input_frames, output_frames), nn.GELU(), TemporalExpansion(output_frames, output_frames)
        )
        self.head = nn.Linear(dim, 3)
        nn.init.normal_(self.head.weight, std=1e-3)  # start close to a last-pose repeater
        nn.init.zeros_(self.head.bias)

    def no_weight_decay(self) -> set[str]:
        """The joint embedding."""
        return {"joint_embed"}

    def forward(self, past: Tensor) -> Tensor:
        """Blocks over the observed frames, two-layer expansion to ``T_out``, offsets from the last pose."""
        x = self.norm(self.blocks(self.embed(past) + self.joint_embed))
        return self.head(self.expand(x)) + past[:, -1:]


@register_model("conv-stgat", description="Graph attention + 2D conv blocks, two-layer temporal expansion (course)")
def conv_stgat(*, num_joints: int, input_frames: int, output_frames: int,
               graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
               **overrides) -> ConvSTGAT:
    """ConvSTGAT: width 64, 4 blocks, 4 heads over the skeleton graph."""
    kwargs = dict(dim=64, depth=4, heads=4, dropout=0.0) | overrides
    return ConvSTGAT(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames,
                     parents=resolve_parents(graph_parents, num_joints), **kwargs)
