"""Small building blocks shared by several architectures.

Skeleton-graph helpers (parents -> adjacency, chain fallback), the body-part fallback, an orthonormal DCT
matrix (siMLPe, Guo et al. 2023), the projections of a training step in bf16 on a CPU (a linear that adds its bias
inside the GEMM, one that adds a residual there too, one that folds a preceding LayerNorm's affine into its weights),
a feed-forward block, the pre/post/sandwich residual wrapper
(Xiong et al. 2020 "On Layer Normalization in the Transformer Architecture"; Ding et al. 2021 CogView for
Sandwich-LN) and the frames-as-channels "temporal expansion" convolution of the course designs.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from crisscross.models.attention import fast_layouts_enabled

__all__ = [
    "NORM_MODES",
    "FeedForward",
    "Linear",
    "ResidualBranch",
    "TemporalExpansion",
    "chain_parents",
    "dct_matrix",
    "linear",
    "linear_add",
    "normed_linear",
    "project_out",
    "resolve_body_parts",
    "resolve_parents",
    "skeleton_adjacency",
    "stochastic_depth_rates",
]

NORM_MODES = ("pre", "post", "sandwich")


def chain_parents(num_joints: int) -> tuple[int, ...]:
    """Parents of a simple chain 0 <- 1 <- ... <- J-1 (the fallback skeleton graph)."""
    return (-1, *tuple(range(num_joints - 1)))


def resolve_parents(graph_parents: tuple[int, ...] | None, num_joints: int) -> tuple[int, ...]:
    """``graph_parents`` checked against ``num_joints``; a chain when ``None``."""
    if graph_parents is None:
        return chain_parents(num_joints)
    parents = tuple(int(p) for p in graph_parents)
    if len(parents) != num_joints:
        raise ValueError(f"graph_parents has {len(parents)} entries for {num_joints} joints")
    if any(p < -1 or p >= num_joints for p in parents):
        raise ValueError(f"graph_parents entries must lie in [-1, {num_joints}): {parents}")
    return parents


def resolve_body_parts(body_parts: tuple[int, ...] | None, num_joints: int) -> tuple[tuple[int, ...], int]:
    """``(parts, num_parts)``: the per-joint part index (zeros when ``None``) and the number of parts."""
    parts = (0,) * num_joints if body_parts is None else tuple(int(p) for p in body_parts)
    if len(parts) != num_joints or min(parts) < 0:
        raise ValueError(f"body_parts must give one non-negative index per joint ({num_joints}): {parts}")
    return parts, max(parts) + 1


def skeleton_adjacency(parents: tuple[int, ...]) -> Tensor:
    """Boolean ``[J, J]`` adjacency of the skeleton tree with self loops (parent <-> child, i <-> i)."""
    num_joints = len(parents)
    adj = torch.eye(num_joints, dtype=torch.bool)
    for child, parent in enumerate(parents):
        if parent >= 0:
            adj[child, parent] = True
            adj[parent, child] = True
    return adj


def dct_matrix(n: int) -> Tensor:
    """Orthonormal DCT-II matrix ``[n, n]``: ``coeffs = D @ x`` over time, and ``x = D.T @ coeffs``."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    mat = torch.cos(math.pi * (i + 0.5) * k / n) * math.sqrt(2.0 / n)
    mat[0] /= math.sqrt(2.0)
    return mat.float()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``F.linear(x, weight, bias)``; while gradients are recorded on a CPU in bf16, the bias added inside the GEMM.

    Why: PyTorch's CPU ``addmm`` first copies the bias, broadcast to every row, into the output and then
    accumulates the product onto it; oneDNN's linear adds it in the product's epilogue instead. Same bf16 numbers
    (the bias is in bf16 either way, tested bitwise), one write of the output fewer: 7.4 against 8.6 ms for the
    ``[140800, 64] x [64, 64]`` projections of the default STCFormer's decoder at batch 256, 22.6 against 25.3 for its
    ``64 -> 192`` QKV projection (two threads). The backward is addmm's own (:class:`_EpilogueLinear`). Evaluation,
    export and compilation keep ``F.linear``; so do ``fast_layouts(False)``, fp32 and other devices.
    """
    if bias is None or not _epilogue_linear_applies(x, weight):
        return F.linear(x, weight, bias)
    if torch.is_autocast_enabled("cpu"):
        # What autocast would do for F.linear (its casts are recorded by autograd the same way).
        x, weight, bias = x.to(torch.bfloat16), weight.to(torch.bfloat16), bias.to(torch.bfloat16)
    return _EpilogueLinear.apply(x, weight, bias)


def _epilogue_linear_applies(x: Tensor, weight: Tensor) -> bool:
    if not (torch.is_grad_enabled() and fast_layouts_enabled() and x.device.type == "cpu" and x.dim() >= 2):
        return False
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    if torch.is_autocast_enabled("cpu"):
        if torch.get_autocast_dtype("cpu") != torch.bfloat16:
            return False
    elif x.dtype != torch.bfloat16 or weight.dtype != torch.bfloat16:
        return False
    return _mkldnn_linear_available()


def _mkldnn_linear_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def linear_add(x: Tensor, weight: Tensor, bias: Tensor | None, residual: Tensor) -> Tensor:
    """``residual + linear(x, weight, bias)``; where :func:`linear` adds its bias in the GEMM, the residual too.

    Why: a residual branch's last projection followed by the residual addition writes the projection's output and
    then reads it back with the residual to write their sum; oneDNN's linear adds ``residual`` in the product's
    epilogue (a binary post-op), so the sum is written once: 8.7 against 10.6 ms for the default STCFormer decoder's
    ``[140800, 64] x [64, 64]`` output projection and its addition at batch 256 (two threads). The sum is rounded to
    bf16 once instead of twice (after the product and after the addition): the same function, rounded differently.
    Elsewhere, and for a residual that is not in bf16 or not of the output's shape, exactly
    ``residual + linear(x, weight, bias)``.
    """
    fused_shape = (*x.shape[:-1], weight.shape[0])
    if bias is None or residual.dtype != torch.bfloat16 or residual.shape != fused_shape \
            or not _epilogue_linear_applies(x, weight):
        return residual + linear(x, weight, bias)
    if torch.is_autocast_enabled("cpu"):
        x, weight, bias = x.to(torch.bfloat16), weight.to(torch.bfloat16), bias.to(torch.bfloat16)
    return _EpilogueLinearAdd.apply(x, weight, bias, residual)


def _linear_backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of ``x``, ``weight`` and ``bias`` (those needed) from the saved ``x`` and ``weight``.

    The products and the sum AddmmBackward0 computes for ``F.linear``, in its operand order (same numbers).
    """
    x, weight = ctx.saved_tensors
    grad2d = grad.reshape(-1, grad.shape[-1])
    need_x, need_weight, need_bias = ctx.needs_input_grad[:3]
    grad_x = grad2d.mm(weight).view(x.shape) if need_x else None
    grad_weight = x.reshape(-1, x.shape[-1]).t().mm(grad2d).t() if need_weight else None
    return grad_x, grad_weight, grad2d.sum(0) if need_bias else None


class _EpilogueLinear(torch.autograd.Function):
    """``x[..., C_in] @ weight[C_out, C_in].T + bias[C_out]`` through oneDNN's linear; backward as ``addmm``'s."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        x = x.contiguous()
        ctx.save_for_backward(x, weight)
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # type: ignore[override]
        return _linear_backward(ctx, grad)


class _EpilogueLinearAdd(torch.autograd.Function):
    """``x @ weight.T + bias + residual`` through oneDNN's linear with a binary post-op; backward as above."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor, residual: Tensor) -> Tensor:  # type: ignore[override]
        x = x.contiguous()
        ctx.save_for_backward(x, weight)
        return torch.ops.mkldnn._linear_pointwise.binary(x, residual.contiguous(), weight, bias, "add")

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        return (*_linear_backward(ctx, grad), grad if ctx.needs_input_grad[3] else None)


class Linear(nn.Linear):
    """:class:`torch.nn.Linear` computed by :func:`linear` (same parameters, state-dict names and numbers)."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def normed_linear(x: Tensor, norm: nn.Module | None, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``linear(norm(x), weight, bias)``; while training on a CPU, a LayerNorm's affine folded into the projection.

    ``LN(x) @ W.T + b = x_hat @ (W * gamma).T + (b + W @ beta)`` with ``x_hat`` the LayerNorm without its affine.
    Why: PyTorch's CPU LayerNorm backward spends most of its time on the gradients of ``gamma`` and ``beta`` (column
    sums over every row): for the default STCFormer's decoder, ``[256, 25, 22, 64]`` in bf16, it took 10.5 ms with
    them against 3.6 ms without (two threads). Folded, those gradients come from the projection's weight gradient
    (``[C_out, C_in]`` entries) through a few operations on the weights. The same function, rounded differently:
    ``x_hat`` is rounded to bf16 instead of ``x_hat * gamma + beta``, and ``W * gamma`` instead of ``W``. Only where
    :func:`linear` runs oneDNN's linear (the folded bias always exists), with a LayerNorm that has both affine
    parameters; otherwise
    (evaluation, export, ``fast_layouts(False)``, other devices) exactly ``linear(norm(x), weight, bias)``.

    Args:
        x: the un-normalised input ``[..., C_in]``.
        norm: the LayerNorm to apply first (``None`` or ``nn.Identity``: none).
        weight, bias: the projection's ``[C_out, C_in]`` and ``[C_out]`` (or None).
    """
    if norm is None or isinstance(norm, nn.Identity):
        return linear(x, weight, bias)
    if not (_folds(norm) and _epilogue_linear_applies(x, weight)):
        return linear(norm(x), weight, bias)
    x_hat = F.layer_norm(x, norm.normalized_shape, None, None, norm.eps)
    with torch.autocast("cpu", enabled=False):  # the fold in the parameters' dtype; linear then casts as autocast would
        folded_weight = weight * norm.weight
        folded_bias = torch.mv(weight, norm.bias) if bias is None else torch.addmv(bias, weight, norm.bias)
    return linear(x_hat, folded_weight, folded_bias)


def _folds(norm: nn.Module) -> bool:
    """A LayerNorm over the last axis with both affine parameters (what :func:`normed_linear` can fold)."""
    return (isinstance(norm, nn.LayerNorm) and len(norm.normalized_shape) == 1
            and norm.weight is not None and norm.bias is not None)


def project_out(x: Tensor, layer: nn.Linear, drop: nn.Dropout, residual: Tensor | None) -> Tensor:
    """``drop(layer(x))``, plus ``residual`` when given: in the GEMM (:func:`linear_add`) unless dropout is active."""
    if residual is None:
        return drop(layer(x))
    if drop.p > 0.0 and drop.training:
        return residual + drop(layer(x))
    return linear_add(x, layer.weight, layer.bias, residual)


class FeedForward(nn.Module):
    """Position-wise MLP ``Linear(D, r*D) -> GELU -> Dropout -> Linear(r*D, D) -> Dropout``."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear(hidden, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, *, norm: nn.Module | None = None, residual: Tensor | None = None) -> Tensor:
        """Apply to the last axis of ``x[..., D]``.

        ``norm``: a LayerNorm applied to ``x`` first (:func:`normed_linear`). ``residual``: returned plus the output
        (:func:`linear_add`).
        """
        hidden = self.drop(self.act(normed_linear(x, norm, self.fc1.weight, self.fc1.bias)))
        return project_out(hidden, self.fc2, self.drop, residual)


class ResidualBranch(nn.Module):
    """One residual sub-layer with its normalisation placement and optional stochastic depth.

    * ``pre``:      ``x + f(LN(x))``
    * ``post``:     ``LN(x + f(x))``
    * ``sandwich``: ``x + LN_out(f(LN_in(x)))`` (the extra norm curbs value growth along the residual path)

    ``drop_path`` (stochastic depth, Huang et al. 2016; timm's ``drop_path``): while training, the branch is dropped
    for each sample with this probability and scaled by ``1 / (1 - drop_path)`` where kept, so its expectation is
    unchanged; in eval mode it is the identity. Why this regulariser here: it draws one number per sample, where
    element-wise dropout draws one per activation, which on CPU costs as much as the layer itself.
    """

    def __init__(self, dim: int, norm: str, drop_path: float = 0.0) -> None:
        super().__init__()
        if norm not in NORM_MODES:
            raise ValueError(f"norm must be one of {NORM_MODES}, got {norm!r}")
        if not 0.0 <= drop_path < 1.0:
            raise ValueError(f"drop_path must be in [0, 1), got {drop_path}")
        self.norm = norm
        self.drop_path = drop_path
        self.norm_in = nn.LayerNorm(dim) if norm in ("pre", "sandwich") else nn.Identity()
        self.norm_out = nn.LayerNorm(dim) if norm in ("post", "sandwich") else nn.Identity()

    def forward(self, x: Tensor, fn: Callable[..., Tensor], *, fn_takes_norm: bool = False) -> Tensor:
        """``x`` updated by the sub-layer ``fn`` (any callable mapping ``[..., D]`` to ``[..., D]``).

        ``fn_takes_norm``: ``fn(x, norm=..., residual=...)`` applies the input LayerNorm itself, in its first
        projection (:func:`normed_linear`, which folds the norm's affine into that projection while training on a
        CPU), and returns ``residual`` plus its output when given one (:func:`linear_add`, which adds it in the last
        projection's GEMM); the residual is passed for the pre-norm placement without stochastic depth.
        """
        if self.norm == "post":
            return self.norm_out(self._add(x, fn(x)))
        if not fn_takes_norm:
            return self._add(x, self.norm_out(fn(self.norm_in(x))))
        if self.norm == "pre" and (self.drop_path == 0.0 or not self.training):
            return fn(x, norm=self.norm_in, residual=x)  # x + branch, added in the branch's last GEMM
        return self._add(x, self.norm_out(fn(x, norm=self.norm_in)))

    def _add(self, x: Tensor, branch: Tensor) -> Tensor:
        """``x + branch``, the branch dropped per sample (first axis) while training."""
        if not self.training or self.drop_path == 0.0:
            return x + branch
        keep = 1.0 - self.drop_path
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)  # [B, 1, ..., 1]
        scale = torch.empty(shape, device=x.device).bernoulli_(keep).div_(keep)
        return torch.addcmul(x, branch, scale.to(branch.dtype))  # one pass, like the plain addition


def stochastic_depth_rates(rate: float, blocks: int) -> tuple[float, ...]:
    """Per-block drop-path rates rising linearly from 0 to ``rate`` over ``blocks`` (timm's decay rule)."""
    if blocks <= 1:
        return (rate,) * blocks
    return tuple(rate * i / (blocks - 1) for i in range(blocks))


class TemporalExpansion(nn.Module):
    """Map ``[B, T_in, J, D]`` to ``[B, T_out, J, D]`` with a 2D convolution treating frames as channels.

    The convolution slides a ``k x k`` kernel over the (joints x features) grid, so every output frame is a
    learned mix of all input frames around each joint/feature (the course designs' "temporal explosion").
    """

    def __init__(self, input_frames: int, output_frames: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(input_frames, output_frames, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """``x[B, T_in, J, D] -> [B, T_out, J, D]``."""
        # Why channels-last (frames innermost) around the convolution: with only T_in channels, oneDNN's kernels
        # for the default layout are slow, the backward above all; on CPU the round trip (two copies included) made
        # forward + backward 2.6x faster in bf16 and 1.6x in fp32 at batch 256. The output is made contiguous
        # again for the [B, T, J, D] code that follows.
        return self.conv(x.contiguous(memory_format=torch.channels_last)).contiguous()
