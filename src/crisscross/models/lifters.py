"""The learned 2D-to-3D lifters that lifting papers compare with; each predicts the centre frame of its window.

Every model maps ``keypoints[B, T, J, 2]`` (normalised screen coordinates, ``T`` = the receptive field, odd) to
``[B, 1, J, 3]`` (metres, root-relative): the 3D pose of the window's centre frame.

* ``videopose3d`` / ``videopose3d-small``: the temporal convolutional model of Pavllo et al., "3D human pose
  estimation in video with temporal convolutions and semi-supervised training" (CVPR 2019; facebookresearch/
  VideoPose3D, ``common/model.py`` ``TemporalModel``). The J*2 coordinates of a frame are the channels of a 1D
  convolution over time: an input convolution of width 3 (no padding, no bias), BatchNorm (momentum 0.1), ReLU,
  dropout 0.25; then one residual block per further filter width, each ``[Conv1d width 3, dilation 3^k, BN, ReLU,
  dropout, Conv1d width 1, BN, ReLU, dropout]`` added to the centre slice of its input (the unpadded convolution
  shortens the sequence by ``2 * 3^k``); then a width-1 convolution (with bias) to J*3. Filter widths (3,3,3) give
  a receptive field of 27 frames, (3,3,3,3) 81 and (3,3,3,3,3) 243; the published 243-frame model has 1024
  channels and 16.95M parameters at 17 joints. An input of ``T >= R`` frames gives ``T - R + 1`` outputs, one per
  window, as in VideoPose3D's evaluation of whole sequences.
* ``poseformer`` / ``poseformer-small``: PoseFormer of Zheng et al., "3D Human Pose Estimation with Spatial and
  Temporal Transformers" (ICCV 2021; zczcwh/PoseFormer, ``common/model_poseformer.py``). A spatial transformer
  attends over the J joints of each frame (joint embedding ``Linear(2, c)``, c = 32, learned spatial position
  embedding, 4 pre-norm blocks, 8 heads, MLP ratio 2, GELU, final LayerNorm); each frame's J*c features are
  flattened into one token; a temporal transformer attends over the T frames (learned temporal position embedding,
  4 blocks, 8 heads, width J*c, final LayerNorm); a learned ``Conv1d(T, 1, 1)`` takes the weighted mean over
  frames; a head ``LayerNorm, Linear(J*c, J*3)`` gives the centre pose. Stochastic depth rises linearly to 0.1 over
  each transformer's blocks (the rate PoseFormer's training script passes). The paper reports 9.6M parameters
  for 81 frames.
* ``simple-baseline`` / ``simple-baseline-small``: the residual MLP of Martinez et al., "A simple yet effective
  baseline for 3d human pose estimation" (ICCV 2017), on the centre frame alone: ``Linear(J*2, 1024)``, BN, ReLU,
  dropout 0.5; two residual blocks, each two ``[Linear(1024, 1024), BN, ReLU, dropout 0.5]``; ``Linear(1024,
  J*3)``. The paper's max-norm weight constraint is left out.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.attention import attend
from crisscross.models.layers import FeedForward, ResidualBranch, stochastic_depth_rates
from crisscross.models.registry import register_model

__all__ = ["PoseFormer", "SimpleBaseline", "TemporalConvLifter", "filter_widths_for"]

# Receptive field -> VideoPose3D filter widths (9 is a test size, not a published one).
_FILTER_WIDTHS: dict[int, tuple[int, ...]] = {9: (3, 3), 27: (3, 3, 3), 81: (3, 3, 3, 3), 243: (3, 3, 3, 3, 3)}


def _check_centre_output(model: str, output_frames: int) -> None:
    if output_frames != 1:
        raise ValueError(f"model {model!r} predicts the centre frame only: output_frames must be 1, "
                         f"got {output_frames}")


def _check_window(model: str, keypoints: Tensor, num_joints: int) -> None:
    if keypoints.ndim != 4 or keypoints.shape[2:] != (num_joints, 2):
        raise ValueError(f"{model}: expected keypoints [B, T, {num_joints}, 2], got {list(keypoints.shape)}")


def filter_widths_for(input_frames: int, model: str = "videopose3d") -> tuple[int, ...]:
    """VideoPose3D's filter widths for a receptive field of ``input_frames`` (9, 27, 81 or 243)."""
    if input_frames not in _FILTER_WIDTHS:
        raise ValueError(f"model {model!r} has receptive fields {sorted(_FILTER_WIDTHS)}, "
                         f"got input_frames={input_frames}")
    return _FILTER_WIDTHS[input_frames]


class TemporalConvLifter(nn.Module):
    """VideoPose3D's temporal convolutional model (see the module docstring)."""

    def __init__(self, num_joints: int, filter_widths: tuple[int, ...], channels: int = 1024,
                 dropout: float = 0.25) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.receptive_field = 1
        for width in filter_widths:
            self.receptive_field *= width
        self.expand = nn.Sequential(
            nn.Conv1d(num_joints * 2, channels, filter_widths[0], bias=False),
            nn.BatchNorm1d(channels, momentum=0.1), nn.ReLU(), nn.Dropout(dropout),
        )
        self.blocks = nn.ModuleList()
        self.trims: list[int] = []  # frames cut from each end of a block's input for its residual
        dilation = filter_widths[0]
        for width in filter_widths[1:]:
            self.trims.append((width - 1) * dilation // 2)
            self.blocks.append(nn.Sequential(
                nn.Conv1d(channels, channels, width, dilation=dilation, bias=False),
                nn.BatchNorm1d(channels, momentum=0.1), nn.ReLU(), nn.Dropout(dropout),
                nn.Conv1d(channels, channels, 1, bias=False),
                nn.BatchNorm1d(channels, momentum=0.1), nn.ReLU(), nn.Dropout(dropout),
            ))
            dilation *= width
        self.shrink = nn.Conv1d(channels, num_joints * 3, 1)

    def forward(self, keypoints: Tensor) -> Tensor:
        """``keypoints[B, T, J, 2] -> [B, T - R + 1, J, 3]`` (one pose per window of ``R`` frames)."""
        _check_window("videopose3d", keypoints, self.num_joints)
        b, t = keypoints.shape[:2]
        if t < self.receptive_field:
            raise ValueError(f"videopose3d: needs at least {self.receptive_field} frames, got {t}")
        x = self.expand(keypoints.reshape(b, t, -1).transpose(1, 2))  # [B, C, T - 2]
        for trim, block in zip(self.trims, self.blocks):
            x = x[:, :, trim:x.shape[2] - trim] + block(x)
        return self.shrink(x).transpose(1, 2).reshape(b, -1, self.num_joints, 3)


class _SelfAttention(nn.Module):
    """Multi-head self-attention with a joint QKV projection (bias on, as in PoseFormer's blocks)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"poseformer: width {dim} is not divisible by {heads} heads")
        self.heads, self.dropout = heads, dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """``x[N, L, D] -> [N, L, D]``."""
        n, length, dim = x.shape
        q, k, v = self.qkv(x).view(n, 1, length, 3, self.heads, dim // self.heads).permute(3, 0, 1, 4, 2, 5)
        out = attend(q, k, v, dropout_p=self.dropout if self.training else 0.0)  # [N, 1, H, L, c]
        return self.proj(out[:, 0].transpose(1, 2).reshape(n, length, dim))


class _TransformerBlock(nn.Module):
    """Pre-norm transformer block ``x + attn(LN(x))``, ``x + mlp(LN(x))`` with stochastic depth."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float, dropout: float) -> None:
        super().__init__()
        self.attn_branch = ResidualBranch(dim, "pre", drop_path)
        self.attn = _SelfAttention(dim, heads, dropout)
        self.mlp_branch = ResidualBranch(dim, "pre", drop_path)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)

    def forward(self, x: Tensor) -> Tensor:
        """``x[N, L, D] -> [N, L, D]``."""
        return self.mlp_branch(self.attn_branch(x, self.attn), self.mlp)


def _encoder(dim: int, depth: int, heads: int, mlp_ratio: float, drop_path: float, dropout: float) -> nn.Sequential:
    rates = stochastic_depth_rates(drop_path, depth)
    blocks = [_TransformerBlock(dim, heads, mlp_ratio, rate, dropout) for rate in rates]
    return nn.Sequential(*blocks, nn.LayerNorm(dim))


class PoseFormer(nn.Module):
    """PoseFormer: spatial transformer per frame, temporal transformer over frames (see the module docstring)."""

    def __init__(self, num_joints: int, input_frames: int, embed: int = 32, spatial_depth: int = 4,
                 temporal_depth: int = 4, heads: int = 8, mlp_ratio: float = 2.0, drop_path: float = 0.1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_joints, self.input_frames = num_joints, input_frames
        width = num_joints * embed
        self.joint_embed = nn.Linear(2, embed)
        self.spatial_pos = nn.Parameter(torch.zeros(1, num_joints, embed))
        self.temporal_pos = nn.Parameter(torch.zeros(1, input_frames, width))
        self.pos_drop = nn.Dropout(dropout)
        self.spatial = _encoder(embed, spatial_depth, heads, mlp_ratio, drop_path, dropout)
        self.temporal = _encoder(width, temporal_depth, heads, mlp_ratio, drop_path, dropout)
        self.weighted_mean = nn.Conv1d(input_frames, 1, 1)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, num_joints * 3))
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """The position embeddings."""
        return {"spatial_pos", "temporal_pos"}

    def forward(self, keypoints: Tensor) -> Tensor:
        """``keypoints[B, T, J, 2] -> [B, 1, J, 3]``."""
        _check_window("poseformer", keypoints, self.num_joints)
        b, t = keypoints.shape[:2]
        if t != self.input_frames:
            raise ValueError(f"poseformer: built for {self.input_frames} frames, got {t}")
        x = self.pos_drop(self.joint_embed(keypoints.reshape(b * t, self.num_joints, 2)) + self.spatial_pos)
        x = self.spatial(x).reshape(b, t, -1)  # [B, T, J*c]
        x = self.temporal(self.pos_drop(x + self.temporal_pos))
        x = self.weighted_mean(x)  # [B, 1, J*c]
        return self.head(x).reshape(b, 1, self.num_joints, 3)


class SimpleBaseline(nn.Module):
    """Martinez et al.'s residual MLP on the centre frame (see the module docstring)."""

    def __init__(self, num_joints: int, width: int = 1024, blocks: int = 2, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_joints = num_joints

        def layer(n_in: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(n_in, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout))

        self.stem = layer(num_joints * 2)
        self.blocks = nn.ModuleList(nn.Sequential(layer(width), layer(width)) for _ in range(blocks))
        self.head = nn.Linear(width, num_joints * 3)

    def forward(self, keypoints: Tensor) -> Tensor:
        """``keypoints[B, T, J, 2] -> [B, 1, J, 3]`` from frame ``T // 2`` alone."""
        _check_window("simple-baseline", keypoints, self.num_joints)
        x = self.stem(keypoints[:, keypoints.shape[1] // 2].reshape(keypoints.shape[0], -1))
        for block in self.blocks:
            x = x + block(x)
        return self.head(x).reshape(keypoints.shape[0], 1, self.num_joints, 3)


@register_model("videopose3d", description="VideoPose3D temporal convolutions (Pavllo et al. 2019), 1024 channels",
                task="lifting")
def videopose3d(*, num_joints: int, input_frames: int, output_frames: int,
                graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                channels: int = 1024, dropout: float = 0.25) -> TemporalConvLifter:
    """VideoPose3D at the published size (16.95M parameters at 243 frames, 17 joints)."""
    _check_centre_output("videopose3d", output_frames)
    widths = filter_widths_for(input_frames, "videopose3d")
    return TemporalConvLifter(num_joints, widths, channels=channels, dropout=dropout)


@register_model("videopose3d-small", description="VideoPose3D temporal convolutions, 256 channels", task="lifting")
def videopose3d_small(*, num_joints: int, input_frames: int, output_frames: int,
                      graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                      channels: int = 256, dropout: float = 0.25) -> TemporalConvLifter:
    """VideoPose3D with 256 channels."""
    _check_centre_output("videopose3d-small", output_frames)
    widths = filter_widths_for(input_frames, "videopose3d-small")
    return TemporalConvLifter(num_joints, widths, channels=channels, dropout=dropout)


@register_model("poseformer", description="PoseFormer spatial + temporal transformers (Zheng et al. 2021), c=32",
                task="lifting")
def poseformer(*, num_joints: int, input_frames: int, output_frames: int,
               graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
               embed: int = 32, spatial_depth: int = 4, temporal_depth: int = 4, heads: int = 8,
               drop_path: float = 0.1) -> PoseFormer:
    """PoseFormer at the published size (c = 32, 4 spatial and 4 temporal blocks)."""
    _check_centre_output("poseformer", output_frames)
    return PoseFormer(num_joints, input_frames, embed=embed, spatial_depth=spatial_depth,
                      temporal_depth=temporal_depth, heads=heads, drop_path=drop_path)


@register_model("poseformer-small", description="PoseFormer, c=16, 2 spatial + 2 temporal blocks", task="lifting")
def poseformer_small(*, num_joints: int, input_frames: int, output_frames: int,
                     graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                     embed: int = 16, spatial_depth: int = 2, temporal_depth: int = 2, heads: int = 8,
                     drop_path: float = 0.1) -> PoseFormer:
    """PoseFormer with c = 16 and 2 + 2 blocks."""
    _check_centre_output("poseformer-small", output_frames)
    return PoseFormer(num_joints, input_frames, embed=embed, spatial_depth=spatial_depth,
                      temporal_depth=temporal_depth, heads=heads, drop_path=drop_path)


@register_model("simple-baseline", description="Residual MLP on the centre frame (Martinez et al. 2017), 1024 wide",
                task="lifting")
def simple_baseline(*, num_joints: int, input_frames: int, output_frames: int,
                    graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                    width: int = 1024, blocks: int = 2, dropout: float = 0.5) -> SimpleBaseline:
    """Martinez et al.'s baseline at the published size (1024 wide, 2 residual blocks)."""
    _check_centre_output("simple-baseline", output_frames)
    return SimpleBaseline(num_joints, width=width, blocks=blocks, dropout=dropout)


@register_model("simple-baseline-small", description="Residual MLP on the centre frame, 256 wide, 1 block",
                task="lifting")
def simple_baseline_small(*, num_joints: int, input_frames: int, output_frames: int,
                          graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                          width: int = 256, blocks: int = 1, dropout: float = 0.5) -> SimpleBaseline:
    """Martinez et al.'s baseline, 256 wide with 1 residual block."""
    _check_centre_output("simple-baseline-small", output_frames)
    return SimpleBaseline(num_joints, width=width, blocks=blocks, dropout=dropout)
