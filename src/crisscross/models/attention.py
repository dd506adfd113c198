"""Attention kernel shared by the attention models, and attention-map capture for analysis.

Every attention layer in :mod:`crisscross.models` calls :func:`attend`. Normally that is
``torch.nn.functional.scaled_dot_product_attention`` and nothing else. Inside
``with capture_attention(model) as records:`` the layers instead compute the softmax weights explicitly
(same numbers, to float rounding), append an :class:`AttentionRecord` per call and use those weights.
The switch is a per-module attribute set and cleared by the context manager, not global state, so
models that are not being captured are unaffected.

The course project behind crisscross plotted such maps per block and head: spatial (joints x joints) and
temporal (frames x frames), see ``docs/models.md``.

Inside ``with explicit_attention():`` (what the training engine's ``train.attention=explicit`` enters, and
``auto`` on CPU) every layer computes attention as those explicit ops, matmul, softmax, matmul, in the
autocast dtype (the softmax itself in fp32, see :func:`_softmax`), instead of calling SDPA. Why: on CPU, for
these short sequences, SDPA's math kernel upcasts bf16 inputs to fp32 and adds safe-softmax checks, and its flash
kernel is slower still; ``benchmarks/bench_train_throughput.py`` measures the difference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AttentionRecord", "AttentionSink", "attend", "capture_attention", "explicit_attention", "fast_layouts",
           "fast_layouts_enabled"]

# Set only inside ``explicit_attention()``. A plain module global: torch.compile guards on it (and recompiles if it
# flips).
_explicit = False
# Cleared only inside ``fast_layouts(False)``: the plain layouts of the explicit path and the criss-cross layers (the
# reference the fast ones are tested against, and timed against by benchmarks/bench_mfu.py).
_fast = True
# Softmax rows shorter than this run transposed (see ``attend``): PyTorch's CPU kernel for the last axis vectorises
# along the row, and rows shorter than one AVX-512 vector of fp32 take a slow path.
_SHORT_ROW = 16


@dataclass(frozen=True)
class AttentionRecord:
    """Attention weights of one attention call.

    Attributes:
        block: qualified module name of the attention layer (e.g. ``"decoder.blocks.0.cross_attn"``).
        kind: ``"spatial"`` (queries and keys are joints of one frame) or ``"temporal"`` (frames of one
            joint); other layers use ``"tuple"`` (STTFormer tuples) or ``"graph"`` (graph attention).
        mode: ``"self"`` or ``"cross"``.
        weights: ``Tensor[B, H, L_q, L_k]``, the maps averaged over the groups below (rows sum to 1).
        grouped: ``Tensor[B, G, H, L_q, L_k]``, one map per group: per frame for spatial attention, per
            joint for temporal attention.
    """

    block: str
    kind: str
    mode: str
    weights: Tensor
    grouped: Tensor


class AttentionSink:
    """Where one layer appends its records while a capture is active."""

    def __init__(self, records: list[AttentionRecord], block: str) -> None:
        self.records = records
        self.block = block

    def add(self, kind: str, mode: str, weights: Tensor) -> None:
        """Store ``weights[B, G, H, L_q, L_k]`` (detached, float32)."""
        grouped = weights.detach().float()
        self.records.append(AttentionRecord(self.block, kind, mode, grouped.mean(dim=1), grouped))


def attend(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    sink: AttentionSink | None = None,
    kind: str = "",
    mode: str = "self",
    scale: float | None = None,
) -> Tensor:
    """Scaled dot-product attention over ``q[B, G, H, L_q, c]``, ``k/v[B, G, H, L_k, c]``.

    Args:
        q, k, v: queries, keys and values; ``G`` groups attention independently (frames, joints, tuples).
        causal: mask keys after the query position (needs ``L_q == L_k``).
        mask: optional boolean ``[L_q, L_k]`` (True = may attend); exclusive with ``causal``.
        dropout_p: attention dropout probability (pass 0 in eval mode).
        sink: when given, compute the weights explicitly and record them with ``kind``/``mode``.
        scale: factor on the scores; ``1 / sqrt(c)`` when ``None`` (1 for queries the caller scaled already).

    Returns:
        ``Tensor[B, G, H, L_q, c]``.
    """
    if sink is None and not _explicit:
        # Fold the groups into the batch: SDPA kernels (and inductor's attention fusion) expect 4-D inputs.
        b, g, h, lq, c = q.shape
        lk = k.shape[-2]
        out = F.scaled_dot_product_attention(
            q.reshape(b * g, h, lq, c), k.reshape(b * g, h, lk, c), v.reshape(b * g, h, lk, v.shape[-1]),
            attn_mask=mask, dropout_p=dropout_p, is_causal=causal, scale=scale,
        )
        return out.view(b, g, h, lq, -1)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if scale != 1.0:
        q = q * scale
    if _fast and sink is None and dropout_p == 0.0 and k.shape[-2] < _SHORT_ROW:
        return _attend_short_keys(q, k, v, causal=causal, mask=mask)
    scores = q @ k.transpose(-2, -1)
    if causal:
        lq, lk = q.shape[-2], k.shape[-2]
        mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        if _fast and sink is None:
            scores = scores.add_(_mask_bias(mask, scores.dtype))
        else:
            scores = scores.masked_fill(~mask, float("-inf"))
    weights = _softmax(scores)
    if sink is not None:
        sink.add(kind, mode, weights)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v


def _attend_short_keys(q: Tensor, k: Tensor, v: Tensor, *, causal: bool, mask: Tensor | None) -> Tensor:
    """:func:`attend` for already scaled queries, with the scores computed transposed: ``[..., L_k, L_q]``.

    Same products and the same fp32 softmax, so the same numbers to float rounding; only the layout differs. Why:
    PyTorch's CPU softmax over the last axis handles rows shorter than one fp32 vector (16) in a slow path, forward
    and backward; over the second-to-last axis it vectorises across the rows instead. For the default STCFormer at
    batch 256 (one thread) the softmax of the encoder's 10 x 10 temporal scores took 41.6 against 7.4 ms forward +
    backward, that of the cross-attention's 25 x 10 scores 105 against 15 ms; for rows of 22 and 25 the plain
    layout is as fast or faster, so it stays. The transposes feed the batched matmuls as transposed operands (no
    copies).
    """
    scores_t = k @ q.transpose(-2, -1)  # [..., L_k, L_q]
    if causal:
        lq, lk = q.shape[-2], k.shape[-2]
        mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril()
    if mask is not None:
        scores_t = scores_t.add_(_mask_bias(mask.transpose(0, 1), scores_t.dtype))
    weights_t = _softmax(scores_t, dim=-2)
    return weights_t.transpose(-2, -1) @ v


def _mask_bias(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[L_q, L_k]``: 0 where ``mask`` allows attending, ``-inf`` elsewhere, to add to the scores in place.

    The same scores as ``masked_fill`` (a finite score plus 0 is itself). Why: on the fresh scores (the product's
    backward needs its inputs, not its output) the in-place broadcast addition is one vectorised pass, 2.6x faster
    than PyTorch's CPU ``masked_fill_`` on the decoder's 25 x 25 causal scores at batch 256, and its backward passes
    the gradient through where ``masked_fill``'s backward zeroes the masked entries in another pass; those entries'
    gradient is zero anyway, since the softmax gives them weight 0.
    """
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def _softmax(scores: Tensor, dim: int = -1) -> Tensor:
    """Softmax over ``dim``, computed in fp32 and returned in ``scores``' dtype.

    Why fp32: besides the accuracy, PyTorch's CPU softmax is slow on bf16 rows as short as these: forward and
    backward took 2.5x as long as casting to fp32 and back for the default STCFormer's 22 x 22 spatial scores and
    1.6x for its 25 x 25 temporal ones at batch 256 (``benchmarks/bench_softmax.py`` on the development CPU).
    """
    return scores.softmax(dim=dim, dtype=torch.float32).to(scores.dtype)


@contextmanager
def explicit_attention(enabled: bool = True) -> Iterator[None]:
    """Inside the block, :func:`attend` computes attention with explicit ops instead of SDPA (see module doc)."""
    global _explicit
    previous, _explicit = _explicit, enabled
    try:
        yield
    finally:
        _explicit = previous


@contextmanager
def fast_layouts(enabled: bool = True) -> Iterator[None]:
    """Inside ``fast_layouts(False)`` the explicit attention and the criss-cross layers run their plain layouts.

    The fast layouts (the default) compute the same numbers to float rounding: the softmax of short score rows in
    the layout PyTorch's CPU kernel vectorises (:func:`_attend_short_keys`), masks added to the scores in place
    (:func:`_mask_bias`), the criss-cross SPE convolutions on channels-last input
    (``CrissCrossAttention._spe_conv_channels_last``), the criss-cross queries scaled through the projection's
    weights (``CrissCrossAttention._project``) and, while training in bf16 on a CPU, the bias added inside the
    GEMM of the criss-cross and feed-forward projections (:func:`crisscross.models.layers.linear`), with the affine of
    the LayerNorm before each criss-cross block's sub-layers folded into their first projection and the residual
    added in their last projection's GEMM (:func:`crisscross.models.layers.normed_linear` and ``linear_add``: the
    same function, rounded differently). The switch
    exists so that ``benchmarks/bench_mfu.py`` and the tests can run both in one process. Weights and state-dict
    names are the same either way.
    """
    global _fast
    previous, _fast = _fast, enabled
    try:
        yield
    finally:
        _fast = previous


def fast_layouts_enabled() -> bool:
    """Whether the fast layouts are on (see :func:`fast_layouts`)."""
    return _fast


@contextmanager
def capture_attention(model: nn.Module) -> Iterator[list[AttentionRecord]]:
    """Record the attention maps of every attention layer of ``model`` run inside the block.

    Usage::

        with capture_attention(model) as records:
            model(past)
        for r in records:
            print(r.block, r.kind, r.mode, r.weights.shape)  # [B, H, L_q, L_k]

    Layers opt in by having an ``attention_sink`` attribute (``None`` when not capturing). Records come in
    call order; a forward pass over a cached autoregressive decoder records only its full-sequence calls.
    """
    records: list[AttentionRecord] = []
    layers = [(name, m) for name, m in model.named_modules() if hasattr(m, "attention_sink")]
    for name, module in layers:
        module.attention_sink = AttentionSink(records, name)
    try:
        yield records
    finally:
        for _, module in layers:
            module.attention_sink = None
