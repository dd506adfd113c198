"""Criss-cross (spatio-temporal) attention layers and the encoder/decoder stacks built from them.

Criss-cross attention follows STCFormer (Tang et al., CVPR 2023, "3D Human Pose Estimation with
Spatio-Temporal Criss-cross Attention"; code ``zhenhuat/STCFormer`` ``model/stcformer.py``): Q, K and V
are split along channels into two halves; the first half attends across the joints of each frame
(spatial), the second across the frames of each joint (temporal); the halves are concatenated and
projected. Its structure-enhanced positional embedding (SPE) adds a depthwise 3x3 convolution of each
pathway's V over the (frames x joints) grid to that pathway's output, and a learned body-part embedding to
the spatial pathway.

The course project extended this to an encoder-decoder (see ``docs/models.md``): the decoder's
self-attention is causal along frames (triangular mask on the temporal half; the spatial half stays within
a frame, and the SPE convolution is made causal by padding only past frames), and its cross-attention
reads the encoder frames of the same joint (temporal half) and the joints of the frame-aligned, expanded
memory (spatial half). SPE is used in self-attention only: in cross-attention the temporal values have
the encoder's frame count, not the queries'.

Shapes: ``x[B, T, J, D]``; per pathway ``D/2`` channels in ``H`` heads of ``c = D / (2H)`` channels.
Incremental decoding keeps, per decoder block, the temporal keys/values of all frames so far (one frame
is added per step), the last two frames of values for the causal SPE convolution, and the projected
cross-attention memory, computed once per sequence.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from crisscross.models.attention import AttentionSink, attend, fast_layouts_enabled
from crisscross.models.layers import FeedForward, Linear, ResidualBranch, normed_linear, project_out

__all__ = [
    "CrissCrossAttention",
    "CrissCrossDecoder",
    "CrissCrossDecoderBlock",
    "CrissCrossEncoder",
    "CrissCrossEncoderBlock",
    "DecoderCache",
    "MemoryKV",
]

# Projected cross-attention memory: (k_s, v_s) [B, T_out, H, J, c] and (k_t, v_t) [B, J, H, T_mem, c].
MemoryKV = tuple[Tensor, Tensor, Tensor, Tensor]
# Per-block incremental state; see CrissCrossAttention.step.
DecoderCache = list[dict[str, Tensor]]


def _to_spatial(x: Tensor, heads: int) -> Tensor:
    """``[B, T, J, H*c] -> [B, T, H, J, c]`` (groups are frames, sequence is joints)."""
    b, t, j, _ = x.shape
    return x.reshape(b, t, j, heads, -1).transpose(2, 3)


def _to_temporal(x: Tensor, heads: int) -> Tensor:
    """``[B, T, J, H*c] -> [B, J, H, T, c]`` (groups are joints, sequence is frames)."""
    b, t, j, _ = x.shape
    return x.reshape(b, t, j, heads, -1).permute(0, 2, 3, 1, 4)


def _from_spatial(x: Tensor) -> Tensor:
    """``[B, T, H, J, c] -> [B, T, J, H*c]``."""
    b, t, h, j, c = x.shape
    return x.transpose(2, 3).reshape(b, t, j, h * c)


def _from_temporal(x: Tensor) -> Tensor:
    """``[B, J, H, T, c] -> [B, T, J, H*c]``."""
    b, j, h, t, c = x.shape
    return x.permute(0, 3, 1, 2, 4).reshape(b, t, j, h * c)


class CrissCrossAttention(nn.Module):
    """Criss-cross self- or cross-attention over ``[B, T, J, D]`` tokens.

    Args:
        dim: model width ``D`` (divisible by ``2 * heads``).
        heads: heads per pathway.
        cross: cross-attention (queries from ``x``, keys/values from the memories) instead of self-attention.
        causal: triangular mask on the temporal half (self-attention only) and a causal SPE convolution.
        spe: add the structure-enhanced positional embedding (self-attention only).
        body_parts: part index per joint for the SPE part embedding.
        dropout: dropout on the attention weights and on the output projection.
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        cross: bool = False,
        causal: bool = False,
        spe: bool = False,
        body_parts: tuple[int, ...] = (0,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % (2 * heads):
            raise ValueError(f"dim {dim} must be divisible by 2 * heads ({2 * heads})")
        if cross and (causal or spe):
            raise ValueError("cross-attention takes neither a causal mask nor SPE")
        self.dim, self.heads, self.half = dim, heads, dim // 2
        self.cross, self.causal, self.use_spe = cross, causal, spe
        self.dropout = dropout
        if cross:
            self.q = Linear(dim, dim)
            self.kv_s = Linear(dim, dim)  # keys and values of the spatial half (D/2 each)
            self.kv_t = Linear(dim, dim)  # keys and values of the temporal half
        else:
            self.qkv = Linear(dim, 3 * dim)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(dropout)
        if spe:
            # Causal: pad two past frames explicitly and none in time inside the convolution.
            pad = (0, 1) if causal else (1, 1)
            self.spe_s = nn.Conv2d(self.half, self.half, 3, padding=pad, groups=self.half)
            self.spe_t = nn.Conv2d(self.half, self.half, 3, padding=pad, groups=self.half)
            self.part_embed = nn.Embedding(max(body_parts) + 1, self.half // heads)
            nn.init.trunc_normal_(self.part_embed.weight, std=0.02)
            self.register_buffer("body_parts", torch.tensor(body_parts, dtype=torch.long), persistent=False)
        self.attention_sink: AttentionSink | None = None

    # -- helpers -------------------------------------------------------------------------------------
    def _spe_conv(self, conv: nn.Conv2d, v: Tensor) -> Tensor:
        """Depthwise conv of ``v[B, T, J, D/2]`` over (frames x joints), same layout out."""
        v = v.permute(0, 3, 1, 2)  # [B, D/2, T, J]
        if self.causal:
            v = F.pad(v, (0, 0, 2, 0))
        return conv(v).permute(0, 2, 3, 1)

    def _spe_conv_channels_last(self, conv: nn.Conv2d, v: Tensor) -> Tensor:
        """:meth:`_spe_conv` (the same numbers) with its input made dense channels-last first.

        Used unless :func:`~crisscross.models.attention.fast_layouts` is off. ``v`` is a strided slice of the QKV
        projection; permuted, it is neither layout oneDNN knows, and the causal padding in the permuted view
        allocates the default layout, whose depthwise kernels are slower (forward + backward of the decoder's causal
        SPE at batch 256: 41 against 44 ms at one thread, 92 against 104 at two on a busy machine). Padding the
        frames of ``[B, T, J, D/2]`` keeps the channels innermost.
        """
        v = F.pad(v, (0, 0, 0, 0, 2, 0)) if self.causal else v.contiguous()  # two past frames, or a dense copy
        return conv(v.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def _part_bias(self, like: Tensor) -> Tensor:
        """``[J, D/2]``: the part embedding of each joint, shared by the spatial heads, in ``like``'s dtype.

        Why the dtype: autocast leaves embeddings in fp32, and adding one to the bf16 attention output would
        promote that output, the concatenation and the projection's input to fp32 (measured: a cast and an
        fp32 copy of the whole token grid per block, in the forward and the backward).
        """
        return self.part_embed(self.body_parts).repeat(1, self.heads).to(like.dtype)

    def _qkv_halves(self, x: Tensor, scaled: bool = False, norm: nn.Module | None = None) -> tuple[Tensor, ...]:
        """``(q_s, q_t, k_s, k_t, v_s, v_t)``, each ``[B, T, J, D/2]``: the spatial and temporal halves of Q, K, V.

        One ``unbind`` rather than nested ``chunk`` calls: the backward then assembles the projection's gradient
        with one stack instead of four concatenations (measured, a few percent of a CPU training step). ``scaled``
        and ``norm``: see :meth:`_project`.
        """
        return self._project(self.qkv, x, scaled, norm).unflatten(-1, (6, self.half)).unbind(-2)

    def _project(self, layer: nn.Linear, x: Tensor, scaled: bool, norm: nn.Module | None) -> Tensor:
        """``layer(norm(x))`` (:func:`~crisscross.models.layers.normed_linear`), the queries scaled when ``scaled``.

        ``scaled``: the first ``D`` outputs (the queries) come multiplied by ``1 / sqrt(c)``, the attention's factor.

        The factor goes onto the weight and bias rows (a few thousand numbers) instead of onto the queries
        (``B * T * J * D`` of them), and the weights' gradient takes it back: one element-wise pass fewer over the
        queries forward and over their gradient backward. For the default width (``c = 16``) the factor is 1/4, a
        power of two, so the products are bitwise those of scaling the queries. Used for training only: at batch 1
        the operations on the weights took 173 against 116 us for the plain projection, one thread.
        """
        w, b = layer.weight, layer.bias
        if scaled:
            scale = 1.0 / math.sqrt(self.half // self.heads)  # as attend computes it
            w = torch.cat((w[: self.dim] * scale, w[self.dim :]))
            b = torch.cat((b[: self.dim] * scale, b[self.dim :]))
        return normed_linear(x, norm, w, b)

    def _drop_p(self) -> float:
        return self.dropout if self.training else 0.0

    def project_memory(self, memory_t: Tensor, memory_s: Tensor) -> MemoryKV:
        """Keys/values of the cross-attention memories (computed once per sequence).

        Args:
            memory_t: encoder output ``[B, T_mem, J, D]`` (temporal half).
            memory_s: frame-aligned (expanded) memory ``[B, T_q, J, D]`` (spatial half).
        """
        k_s, v_s = self.kv_s(memory_s).chunk(2, dim=-1)
        k_t, v_t = self.kv_t(memory_t).chunk(2, dim=-1)
        h = self.heads
        kv = (_to_spatial(k_s, h), _to_spatial(v_s, h), _to_temporal(k_t, h), _to_temporal(v_t, h))
        return tuple(x.contiguous() for x in kv)  # reused by every decoding step

    # -- full sequence -------------------------------------------------------------------------------
    def forward(
        self, x: Tensor, memory: MemoryKV | None = None, *, norm: nn.Module | None = None,
        residual: Tensor | None = None,
    ) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]``; cross-attention needs ``memory`` from :meth:`project_memory`.

        ``norm``: a LayerNorm for the input, applied in the first projection (see :meth:`_project`). ``residual``:
        returned plus the output (added in the output projection's GEMM where it can be,
        :func:`~crisscross.models.layers.linear_add`).
        """
        h, sink, p = self.heads, self.attention_sink, self._drop_p()
        t = x.shape[1]
        mode = "cross" if self.cross else "self"
        # Queries scaled in the projection (see _project) when a backward will follow; without gradients (eval,
        # prediction) the few small operations on the weights cost more at batch 1 than the product they spare.
        scaled = fast_layouts_enabled() and sink is None and torch.is_grad_enabled()
        scale = 1.0 if scaled else None
        if self.cross:
            assert memory is not None, "cross-attention needs the projected memory"
            q_s, q_t = self._project(self.q, x, scaled, norm).chunk(2, dim=-1)
            k_s, v_s, k_t, v_t = memory
            k_s, v_s = k_s[:, :t], v_s[:, :t]  # frame-aligned memory, possibly decoded only up to T
            out_s = attend(_to_spatial(q_s, h), k_s, v_s, dropout_p=p, sink=sink, kind="spatial", mode=mode,
                           scale=scale)
            out_t = attend(_to_temporal(q_t, h), k_t, v_t, dropout_p=p, sink=sink, kind="temporal", mode=mode,
                           scale=scale)
            out_s, out_t = _from_spatial(out_s), _from_temporal(out_t)
        else:
            q_s, q_t, k_s, k_t, v_s, v_t = self._qkv_halves(x, scaled, norm)
            out_s = attend(
                _to_spatial(q_s, h), _to_spatial(k_s, h), _to_spatial(v_s, h),
                dropout_p=p, sink=sink, kind="spatial", mode=mode, scale=scale,
            )
            out_t = attend(
                _to_temporal(q_t, h), _to_temporal(k_t, h), _to_temporal(v_t, h),
                causal=self.causal, dropout_p=p, sink=sink, kind="temporal", mode=mode, scale=scale,
            )
            out_s, out_t = _from_spatial(out_s), _from_temporal(out_t)
            if self.use_spe:
                spe_conv = self._spe_conv_channels_last if fast_layouts_enabled() else self._spe_conv
                out_s = out_s + spe_conv(self.spe_s, v_s) + self._part_bias(out_s)
                out_t = out_t + spe_conv(self.spe_t, v_t)
        return project_out(torch.cat([out_s, out_t], dim=-1), self.proj, self.proj_drop, residual)

    # -- one frame at a time -------------------------------------------------------------------------
    def step(self, x: Tensor, t: int, cache: dict[str, Tensor], memory: MemoryKV | None = None) -> Tensor:
        """Incremental forward of frame ``t``: ``x[B, 1, J, D] -> [B, 1, J, D]``, updating ``cache``.

        For causal self-attention, equals frame ``t`` of :meth:`forward` on frames ``0..t`` (the spatial half
        only needs the current frame; the temporal half attends to the cached keys/values of frames
        ``0..t``). For cross-attention, ``t`` selects the frame of the expanded memory.
        """
        h = self.heads
        if self.cross:
            assert memory is not None, "cross-attention needs the projected memory"
            q_s, q_t = self.q(x).chunk(2, dim=-1)
            k_s, v_s, k_t, v_t = memory
            out_s = attend(_to_spatial(q_s, h), k_s[:, t : t + 1], v_s[:, t : t + 1])
            out_t = attend(_to_temporal(q_t, h), k_t, v_t)
            out = torch.cat([_from_spatial(out_s), _from_temporal(out_t)], dim=-1)
            return self.proj(out)
        assert self.causal, "incremental decoding needs causal self-attention"
        q_s, q_t, k_s, k_t, v_s, v_t = self._qkv_halves(x)
        out_s = _from_spatial(attend(_to_spatial(q_s, h), _to_spatial(k_s, h), _to_spatial(v_s, h)))
        k_new, v_new = _to_temporal(k_t, h), _to_temporal(v_t, h)  # [B, J, H, 1, c]
        if "k" in cache:
            k_new = torch.cat([cache["k"], k_new], dim=3)
            v_new = torch.cat([cache["v"], v_new], dim=3)
        cache["k"], cache["v"] = k_new, v_new
        out_t = _from_temporal(attend(_to_temporal(q_t, h), k_new, v_new))
        if self.use_spe:
            out_s = out_s + self._spe_step(self.spe_s, v_s, cache, "spe_s") + self._part_bias(out_s)
            out_t = out_t + self._spe_step(self.spe_t, v_t, cache, "spe_t")
        return self.proj(torch.cat([out_s, out_t], dim=-1))

    def _spe_step(self, conv: nn.Conv2d, v: Tensor, cache: dict[str, Tensor], key: str) -> Tensor:
        """Causal SPE convolution at the newest frame from a window of the last three frames of ``v``."""
        window = torch.cat([cache[key], v], dim=1) if key in cache else v  # [B, <=3, J, D/2]
        cache[key] = window[:, -2:]
        missing = 3 - window.shape[1]
        w = window.permute(0, 3, 1, 2)
        if missing:
            w = F.pad(w, (0, 0, missing, 0))
        return conv(w).permute(0, 2, 3, 1)


class CrissCrossEncoderBlock(nn.Module):
    """Criss-cross self-attention and a feed-forward, each as a residual branch."""

    def __init__(
        self, dim: int, heads: int, *, mlp_ratio: float, dropout: float, norm: str, spe: bool,
        body_parts: tuple[int, ...], drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.attn = CrissCrossAttention(dim, heads, spe=spe, body_parts=body_parts, dropout=dropout)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.res_attn = ResidualBranch(dim, norm, drop_path)
        self.res_mlp = ResidualBranch(dim, norm, drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]``."""
        x = self.res_attn(x, self.attn, fn_takes_norm=True)
        return self.res_mlp(x, self.mlp, fn_takes_norm=True)


class CrissCrossDecoderBlock(nn.Module):
    """Causal criss-cross self-attention, criss-cross cross-attention and a feed-forward."""

    def __init__(
        self, dim: int, heads: int, *, mlp_ratio: float, dropout: float, norm: str, spe: bool,
        body_parts: tuple[int, ...], drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.self_attn = CrissCrossAttention(
            dim, heads, causal=True, spe=spe, body_parts=body_parts, dropout=dropout
        )
        self.cross_attn = CrissCrossAttention(dim, heads, cross=True, dropout=dropout)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio), dropout)
        self.res_self = ResidualBranch(dim, norm, drop_path)
        self.res_cross = ResidualBranch(dim, norm, drop_path)
        self.res_mlp = ResidualBranch(dim, norm, drop_path)

    def forward(self, x: Tensor, memory: MemoryKV) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]`` given this block's projected ``memory``."""
        x = self.res_self(x, self.self_attn, fn_takes_norm=True)
        x = self.res_cross(x, lambda y, **kw: self.cross_attn(y, memory, **kw), fn_takes_norm=True)
        return self.res_mlp(x, self.mlp, fn_takes_norm=True)

    def step(self, x: Tensor, t: int, cache: dict[str, Tensor], memory: MemoryKV) -> Tensor:
        """Frame ``t`` only: ``x[B, 1, J, D] -> [B, 1, J, D]``."""
        x = self.res_self(x, lambda y: self.self_attn.step(y, t, cache))
        x = self.res_cross(x, lambda y: self.cross_attn.step(y, t, {}, memory))
        return self.res_mlp(x, self.mlp)


def _block_rates(drop_path: tuple[float, ...] | None, depth: int) -> tuple[float, ...]:
    """One stochastic-depth rate per block (all 0 when ``drop_path`` is None)."""
    rates = drop_path if drop_path is not None else (0.0,) * depth
    if len(rates) != depth:
        raise ValueError(f"drop_path needs one rate per block ({depth}), got {len(rates)}")
    return rates


class CrissCrossEncoder(nn.Module):
    """A stack of encoder blocks; a final LayerNorm for pre/sandwich norms."""

    def __init__(
        self, dim: int, depth: int, heads: int, *, mlp_ratio: float, dropout: float, norm: str, spe: bool,
        body_parts: tuple[int, ...], drop_path: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        rates = _block_rates(drop_path, depth)
        self.blocks = nn.ModuleList(
            CrissCrossEncoderBlock(
                dim, heads, mlp_ratio=mlp_ratio, dropout=dropout, norm=norm, spe=spe, body_parts=body_parts,
                drop_path=rate,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(dim) if norm != "post" else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]``."""
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class CrissCrossDecoder(nn.Module):
    """A stack of decoder blocks with full-sequence (:meth:`forward`) and incremental (:meth:`step`) paths."""

    def __init__(
        self, dim: int, depth: int, heads: int, *, mlp_ratio: float, dropout: float, norm: str, spe: bool,
        body_parts: tuple[int, ...], drop_path: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        rates = _block_rates(drop_path, depth)
        self.blocks = nn.ModuleList(
            CrissCrossDecoderBlock(
                dim, heads, mlp_ratio=mlp_ratio, dropout=dropout, norm=norm, spe=spe, body_parts=body_parts,
                drop_path=rate,
            )
            for rate in rates
        )
        self.norm = nn.LayerNorm(dim) if norm != "post" else nn.Identity()

    def project_memory(self, memory_t: Tensor, memory_s: Tensor) -> list[MemoryKV]:
        """Each block's cross-attention keys/values (see :meth:`CrissCrossAttention.project_memory`)."""
        return [block.cross_attn.project_memory(memory_t, memory_s) for block in self.blocks]

    def forward(self, x: Tensor, memory: list[MemoryKV]) -> Tensor:
        """``x[B, T, J, D] -> [B, T, J, D]``, causal along frames."""
        for block, mem in zip(self.blocks, memory):
            x = block(x, mem)
        return self.norm(x)

    def new_cache(self) -> DecoderCache:
        """An empty incremental-decoding state."""
        return [{} for _ in self.blocks]

    def step(self, x: Tensor, t: int, cache: DecoderCache, memory: list[MemoryKV]) -> Tensor:
        """Decode frame ``t`` from ``x[B, 1, J, D]`` given frames ``< t`` in ``cache``; returns ``[B, 1, J, D]``."""
        for block, block_cache, mem in zip(self.blocks, cache, memory):
            x = block.step(x, t, block_cache, mem)
        return self.norm(x)
