"""FLOP counting: PyTorch's counter (multiply-add = 2) plus the CPU attention operators it misses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from crisscross.benchmarking.flops import count_flops, forward_flops, train_flops
from crisscross.models import create_model


def test_linear_counts_two_flops_per_multiply_add() -> None:
    layer = torch.nn.Linear(16, 8, bias=False)
    x = torch.randn(4, 16)
    assert count_flops(lambda: layer(x)) == 2 * 4 * 16 * 8


def test_bf16_training_linear_counts_like_addmm() -> None:
    """The bias-in-the-GEMM linear (oneDNN's, while training in bf16) counts the FLOPs of the addmm it replaces."""
    from crisscross.models.layers import linear

    x = torch.randn(4, 5, 16, dtype=torch.bfloat16, requires_grad=True)
    w, b = torch.randn(8, 16, dtype=torch.bfloat16), torch.randn(8, dtype=torch.bfloat16)
    ours = count_flops(lambda: linear(x, w, b).float().sum().backward())
    ref = count_flops(lambda: F.linear(x, w, b).float().sum().backward())
    assert ours == ref == 2 * 20 * 16 * 8 * 2  # forward, and the input's gradient (the weight needs none)


def test_bf16_training_linear_add_counts_like_addmm() -> None:
    """The residual added in the GEMM (oneDNN's binary post-op) counts the product only, as addmm and add do."""
    from crisscross.models.layers import linear_add

    x = torch.randn(4, 5, 16, dtype=torch.bfloat16, requires_grad=True)
    w, b = torch.randn(8, 16, dtype=torch.bfloat16), torch.randn(8, dtype=torch.bfloat16)
    residual = torch.randn(4, 5, 8, dtype=torch.bfloat16)
    ours = count_flops(lambda: linear_add(x, w, b, residual).float().sum().backward())
    ref = count_flops(lambda: (residual + F.linear(x, w, b)).float().sum().backward())
    assert ours == ref == 2 * 20 * 16 * 8 * 2


def test_training_flops_do_not_depend_on_the_fast_layouts_or_autocast() -> None:
    """The default STCFormer's count is the same whichever projections ran (oneDNN's under bf16 autocast)."""
    from crisscross.data.skeleton import H36M_SKELETON
    from crisscross.models.attention import explicit_attention, fast_layouts
    from crisscross.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("stcformer", {"dim": 32}, H36M_SKELETON, 10, 25)
    past, future = torch.randn(2, 10, 22, 3), torch.randn(2, 25, 22, 3)
    counts = set()
    for fast in (False, True):
        for bf16 in (False, True):
            with fast_layouts(fast), explicit_attention(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                counts.add(train_flops(model, past, future))
    assert len(counts) == 1


def test_cpu_sdpa_is_counted_like_the_cuda_kernels() -> None:
    q = torch.randn(2, 3, 12, 8, requires_grad=True)
    macs = 2 * 3 * 12 * 12 * 8  # multiply-adds of one [12, 8] x [8, 12] product per batch and head
    fwd = 2 * 2 * macs  # QK^T and PV, 2 FLOPs per multiply-add
    assert count_flops(lambda: F.scaled_dot_product_attention(q, q, q)) == fwd
    both = count_flops(lambda: F.scaled_dot_product_attention(q, q, q).sum().backward())
    assert both == fwd + 2 * 5 * macs  # torch's backward formula: five batched products


def test_model_forward_and_training_flops() -> None:
    model = create_model("stcformer", num_joints=22, input_frames=10, output_frames=25, dim=16, enc_blocks=1,
                         dec_blocks=1)
    past, future = torch.randn(3, 10, 22, 3), torch.randn(3, 25, 22, 3)
    fwd = forward_flops(model, past)
    train = train_flops(model, past, future)
    assert fwd > 0 and fwd % 3 == 0  # linear in the batch
    assert 2 * fwd < train < 4 * fwd  # backward costs about twice the forward
    assert all(p.grad is None for p in model.parameters())
