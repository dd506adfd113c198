"""STACFormer: an STTFormer encoder with a criss-cross attention decoder (AML 2023/24 course design).

The encoder is :class:`~crisscross.models.sttformer.STTFormerEncoder` (tuple attention); the decoder is the
causal :class:`~crisscross.models.criss_cross.CrissCrossDecoder` of ``stcformer``, with the same temporal
expansions: the decoder queries are the embedded input mapped ``T_in -> T_out`` by a frames-as-channels
convolution, and the spatial half of cross-attention reads the expanded memory. The course found one
encoder block as accurate as the full encoder, hence the default of 1.
"""

from __future__ import annotations

import torch.nn as nn
from torch import Tensor

from crisscross.models.criss_cross import CrissCrossDecoder
from crisscross.models.layers import TemporalExpansion, resolve_body_parts
from crisscross.models.registry import register_model
from crisscross.models.sttformer import STTFormerEncoder

__all__ = ["STACFormer"]


class STACFormer(nn.Module):
    """STTFormer encoder + criss-cross decoder: ``past[B, T_in, J, 3] -> [B, T_out, J, 3]``."""

    def __init__(self, *, num_joints: int, input_frames: int, output_frames: int, dim: int, enc_blocks: int,
                 dec_blocks: int, heads: int, tuple_len: int, mlp_ratio: float, dropout: float, norm: str,
                 body_parts: tuple[int, ...]) -> None:
        super().__init__()
        self.embed = nn.Linear(3, dim)
        self.encoder = STTFormerEncoder(num_joints=num_joints, frames=input_frames, dim=dim, depth=enc_blocks,
                                        heads=2 * heads, tuple_len=tuple_len, mlp_ratio=mlp_ratio, dropout=dropout)
        self.query_expand = TemporalExpansion(input_frames, output_frames)
        self.memory_expand = TemporalExpansion(input_frames, output_frames)
        self.decoder = CrissCrossDecoder(dim, dec_blocks, heads, mlp_ratio=mlp_ratio, dropout=dropout, norm=norm,
                                         spe=True, body_parts=body_parts)
        self.head = nn.Linear(dim, 3)
        nn.init.normal_(self.head.weight, std=1e-3)  # start close to a last-pose repeater
        nn.init.zeros_(self.head.bias)

    def no_weight_decay(self) -> set[str]:
        """Positional and part embeddings."""
        keys = ("frame_embed", "joint_embed", "part_embed")
        return {name for name, _ in self.named_parameters() if any(k in name for k in keys)}

    def forward(self, past: Tensor) -> Tensor:
        """Encode with tuple attention, decode with causal criss-cross blocks, offsets from the last pose."""
        tokens = self.embed(past)
        memory = self.encoder(tokens)
        mem_kv = self.decoder.project_memory(memory, self.memory_expand(memory))
        return self.head(self.decoder(self.query_expand(tokens), mem_kv)) + past[:, -1:]


@register_model("stacformer", description="STTFormer encoder + criss-cross decoder (course design), D=64")
def stacformer(*, num_joints: int, input_frames: int, output_frames: int,
               graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
               **overrides) -> STACFormer:
    """STACFormer: width 64, 1 tuple-attention encoder block, 2 criss-cross decoder blocks."""
    parts, _ = resolve_body_parts(body_parts, num_joints)
    kwargs = dict(dim=64, enc_blocks=1, dec_blocks=2, heads=2, tuple_len=2, mlp_ratio=2.0, dropout=0.0,
                  norm="pre") | overrides
    return STACFormer(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames,
                      body_parts=parts, **kwargs)
