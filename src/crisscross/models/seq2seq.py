"""Residual GRU sequence-to-sequence forecaster (Martinez et al., CVPR 2017, "On human motion prediction
using recurrent neural networks"; code ``una-dinosauria/human-motion-prediction`` ``seq2seq_model.py``).

One GRU cell, shared by encoder and decoder (the paper's tied seq2seq): the encoder reads the first
``T_in - 1`` observed frames; the decoder starts from the last observed frame and is fed its own previous
output at every step (the paper's "sampling-based loss", so training and inference match). Each output is
its input plus a linear read-out of the hidden state (the residual velocity connection). The paper uses
a 1024-unit GRU (``seq2seq-gru-1024``); the default here is 256 units.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor

from crisscross.models.registry import register_model

__all__ = ["ResidualGRUSeq2Seq"]


class ResidualGRUSeq2Seq(nn.Module):
    """``past[B, T_in, J, 3] -> [B, T_out, J, 3]`` with a tied residual GRU encoder-decoder."""

    def __init__(self, *, num_joints: int, output_frames: int, hidden: int) -> None:
        super().__init__()
        channels = num_joints * 3
        self.output_frames = output_frames
        self.hidden = hidden
        self.cell = nn.GRUCell(channels, hidden)
        self.readout = nn.Linear(hidden, channels)

    def forward(self, past: Tensor) -> Tensor:
        """Encode ``past[:, :-1]``, then decode ``T_out`` frames from ``past[:, -1]``."""
        b, t_in, j, _ = past.shape
        x = past.reshape(b, t_in, j * 3)
        h = x.new_zeros(b, self.hidden)
        for t in range(t_in - 1):
            h = self.cell(x[:, t], h)
        frame = x[:, -1]
        outputs = []
        for _ in range(self.output_frames):
            h = self.cell(frame, h)
            frame = frame + self.readout(h)
            outputs.append(frame)
        return torch.stack(outputs, dim=1).reshape(b, self.output_frames, j, 3)


@register_model("seq2seq-gru", description="Residual GRU seq2seq (Martinez et al. 2017), 256 units")
def seq2seq_gru(*, num_joints: int, input_frames: int, output_frames: int,
                graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                hidden: int = 256) -> ResidualGRUSeq2Seq:
    """Residual GRU seq2seq with a 256-unit GRU."""
    return ResidualGRUSeq2Seq(num_joints=num_joints, output_frames=output_frames, hidden=hidden)


@register_model("seq2seq-gru-1024", description="Residual GRU seq2seq at the paper's size: 1024 units")
def seq2seq_gru_1024(*, num_joints: int, input_frames: int, output_frames: int,
                     graph_parents: tuple[int, ...] | None = None, body_parts: tuple[int, ...] | None = None,
                     hidden: int = 1024) -> ResidualGRUSeq2Seq:
    """Residual GRU seq2seq with the paper's 1024-unit GRU."""
    return ResidualGRUSeq2Seq(num_joints=num_joints, output_frames=output_frames, hidden=hidden)
