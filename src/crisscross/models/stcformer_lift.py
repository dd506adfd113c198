"""STCFormer for 2D-to-3D lifting, as published, built from the shared criss-cross encoder.

STCFormer (Tang et al., CVPR 2023, "3D Human Pose Estimation with Spatio-Temporal Criss-cross Attention"; code
``zhenhuat/STCFormer``, ``model/stcformer.py`` with the defaults of ``common/opt.py``) lifts a window of 2D
keypoints ``[B, T, J, 2]`` to the 3D pose of every frame:

* joint embedding: per-joint ``Linear(2 -> d, no bias)`` then GELU;
* ``layers`` STC blocks, each ``x + proj(STC(LN(x)))`` then ``x + MLP(LN(x))``. STC is one ``Linear(d -> 3d)``
  giving Q, K, V, each split in half along channels: the spatial half attends among the joints of each frame,
  the temporal half among the frames of each joint, in heads of 16 channels (8 per half at ``d = 256``); the
  halves are concatenated and projected. The MLP is ``4 d`` wide, GELU, dropout 0.1, without biases;
* SPE (structure-enhanced positional embedding): a depthwise 3x3 convolution over (frames x joints) of each
  pathway's V added to its output, and a learned embedding of 5 body parts on the spatial pathway;
* head: ``Linear(d -> 3, no bias)``, sequence to sequence: training scores every frame, evaluation the centre one.
* ``d = 256``, 6 layers: 4,748,000 parameters at ``J = 17`` (counted from the release); 27/81/243 frames.

Here the blocks are :class:`~crisscross.models.criss_cross.CrissCrossEncoder` (pre-norm, non-causal, SPE on),
the same criss-cross attention as the forecasting STCFormer. The release's layout is restored on top of it
(``release_layout``): bias-free feed-forwards and no LayerNorm after the last block, which makes the
``stcformer-lift-paper`` count exactly 4,748,000 at ``J = 17`` with the 5 body parts of the skeleton; and
dropout 0.1 on the feed-forwards only (``attn_dropout`` 0, as in the release). Remaining differences from the
release, all inside the shared attention:

* the softmax temperature is ``1/sqrt(16)`` (per head) where the release uses ``1/sqrt(d/2)``; the learned Q
  projection absorbs the factor (``sqrt(8)`` at ``d = 256``), so only the initial sharpness of attention differs;
* the part embedding is added at full weight (truncated-normal init, std 0.02); the release multiplies it by
  ``1e-4`` behind a DropPath(0.5) (and adds ``1e-9`` of it to the temporal half), which leaves it almost inert;
* the joint-to-part ids come from the skeleton (``Skeleton.body_parts``): the same five groups as the release's
  ``[0,1,1,1,2,2,2,0,0,0,0,3,3,3,4,4,4]`` for the 17 Human3.6M joints, numbered differently.

No positional table is added (``pos_embed="spe"``, as in the release): frame order reaches the temporal pathway
through the SPE convolution (its 3-frame window and the zero padding at both ends). ``pos_embed="learned"`` adds
learned frame and joint tables on top of SPE, for ablations.

Output: ``output_frames == input_frames`` returns every frame; ``output_frames == 1`` returns the centre frame
(frame ``T // 2`` of the same sequence output; ``T``, the receptive field, must be odd).
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from crisscross.models.criss_cross import CrissCrossEncoder
from crisscross.models.layers import resolve_body_parts, stochastic_depth_rates
from crisscross.models.registry import register_model
from crisscross.models.stcformer import TokenPositions

__all__ = ["LIFT_POS_EMBEDS", "STCFormerLift"]

LIFT_POS_EMBEDS = ("spe", "learned")


def _check_frames(input_frames: int, output_frames: int) -> None:
    if input_frames < 1 or input_frames % 2 == 0:
        raise ValueError(f"input_frames (the receptive field) must be odd, got {input_frames}")
    if output_frames not in (1, input_frames):
        raise ValueError(f"output_frames must be {input_frames} (every frame) or 1 (the centre frame), "
                         f"got {output_frames}")


def _release_layout(encoder: CrissCrossEncoder, mlp_dropout: float, bias_free: bool) -> None:
    """Feed-forward dropout ``mlp_dropout``; with ``bias_free``, no MLP biases and no final LayerNorm (the release)."""
    for block in encoder.blocks:
        block.mlp.drop.p = mlp_dropout
        if bias_free:
            block.mlp.fc1.bias = None  # an existing parameter set to None is deregistered; F.linear skips it
            block.mlp.fc2.bias = None
    if bias_free:
        encoder.norm = nn.Identity()


class STCFormerLift(nn.Module):
    """Criss-cross lifter: ``keypoints[B, T, J, 2] -> [B, T_out, J, 3]`` (metres, root-relative).

    Args:
        num_joints, input_frames, output_frames: ``J``, ``T`` (odd) and ``T_out`` (``T`` or 1).
        dim: model width ``d``.
        depth: number of STC blocks.
        heads: heads per pathway (each pathway has ``d/2`` channels; the release uses 16 per head).
        mlp_ratio: feed-forward width as a multiple of ``d``.
        dropout: dropout inside the feed-forwards.
        attn_dropout: dropout on the attention weights and output projection (0 in the release).
        drop_path: stochastic depth of the last block (rates rise linearly from 0; 0 in the release).
        norm: ``"pre"`` (the release), ``"post"`` or ``"sandwich"`` LayerNorm placement.
        pos_embed: ``"spe"`` (the release) or ``"learned"`` (learned frame and joint tables added to the tokens).
        body_parts: part index per joint for the SPE part embedding (all zeros when ``None``).
        release_layout: bias-free feed-forwards and no final LayerNorm, as in the release.
    """

    def __init__(
        self,
        *,
        num_joints: int,
        input_frames: int,
        output_frames: int,
        dim: int = 64,
        depth: int = 4,
        heads: int = 2,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        attn_dropout: float = 0.0,
        drop_path: float = 0.0,
        norm: str = "pre",
        pos_embed: str = "spe",
        body_parts: tuple[int, ...] | None = None,
        release_layout: bool = True,
    ) -> None:
        super().__init__()
        _check_frames(input_frames, output_frames)
        if pos_embed not in LIFT_POS_EMBEDS:
            raise ValueError(f"pos_embed must be one of {LIFT_POS_EMBEDS}, got {pos_embed!r}")
        body_parts, _ = resolve_body_parts(body_parts, num_joints)
        self.input_frames, self.output_frames = input_frames, output_frames
        self.embed = nn.Linear(2, dim, bias=False)
        self.act = nn.GELU()
        self.pos = TokenPositions(input_frames, num_joints, dim) if pos_embed == "learned" else None
        self.encoder = CrissCrossEncoder(
            dim, depth, heads, mlp_ratio=mlp_ratio, dropout=attn_dropout, norm=norm, spe=True,
            body_parts=body_parts, drop_path=stochastic_depth_rates(drop_path, depth),
        )
        _release_layout(self.encoder, dropout, release_layout)
        self.head = nn.Linear(dim, 3, bias=False)

    def no_weight_decay(self) -> set[str]:
        """Names of the part-embedding (and positional-table) parameters."""
        keys = ("part_embed", "frame_embed", "joint_embed")
        return {name for name, _ in self.named_parameters() if any(k in name for k in keys)}

    def forward(self, keypoints: Tensor) -> Tensor:
        """``keypoints[B, T, J, 2] -> [B, T_out, J, 3]``: every frame, or the centre frame when ``T_out == 1``."""
        if keypoints.shape[1] != self.input_frames:
            raise ValueError(f"expected {self.input_frames} input frames, got {keypoints.shape[1]}")
        x = self.act(self.embed(keypoints))
        if self.pos is not None:
            x = self.pos(x)
        x = self.encoder(x)
        if self.output_frames == 1:
            centre = self.input_frames // 2
            x = x[:, centre:centre + 1]
        return self.head(x)


# -- registered variants ------------------------------------------------------------------------------
def _lifter(defaults: dict, *, num_joints: int, input_frames: int, output_frames: int,
            graph_parents: tuple[int, ...] | None, body_parts: tuple[int, ...] | None, **overrides) -> STCFormerLift:
    del graph_parents  # criss-cross attention is dense over joints; the skeleton enters through body parts
    return STCFormerLift(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames,
                         body_parts=body_parts, **{**defaults, **overrides})


@register_model("stcformer-lift", description="STCFormer lifter (criss-cross, SPE): d=64, 4 blocks, 2+2 heads",
                task="lifting")
def stcformer_lift(*, num_joints: int, input_frames: int, output_frames: int,
                   graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                   **overrides) -> STCFormerLift:
    """CPU-trainable STCFormer lifter: width 64, 4 blocks, heads of 16 channels, MLP x4, release layout."""
    return _lifter(dict(dim=64, depth=4, heads=2), num_joints=num_joints, input_frames=input_frames,
                   output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)


@register_model("stcformer-lift-small", description="STCFormer lifter, small: d=32, 2 blocks, 1+1 heads",
                task="lifting")
def stcformer_lift_small(*, num_joints: int, input_frames: int, output_frames: int,
                         graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                         **overrides) -> STCFormerLift:
    """Small STCFormer lifter: width 32, 2 blocks, one 16-channel head per pathway."""
    return _lifter(dict(dim=32, depth=2, heads=1), num_joints=num_joints, input_frames=input_frames,
                   output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)


@register_model("stcformer-lift-paper", description="STCFormer lifter as published: d=256, 6 blocks, 8+8 heads "
                "(4.75M parameters)", task="lifting")
def stcformer_lift_paper(*, num_joints: int, input_frames: int, output_frames: int,
                         graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                         **overrides) -> STCFormerLift:
    """The published size (``d_hid=256``, ``layers=6``): 4,748,000 parameters for 17 joints in 5 body parts."""
    return _lifter(dict(dim=256, depth=6, heads=8), num_joints=num_joints, input_frames=input_frames,
                   output_frames=output_frames, graph_parents=graph_parents, body_parts=body_parts, **overrides)
