"""FLOP counts from PyTorch's own counter, ``torch.utils.flop_counter.FlopCounterMode``.

Convention (the counter's): a multiply-add is **2 FLOPs**, so a ``[M, K] @ [K, N]`` product is ``2 * M * K * N``.
Only operators with a registered formula are counted: matrix products (``mm``, ``addmm``, ``bmm``, ``baddbmm``),
convolutions and fused scaled-dot-product attention, forward and backward. Element-wise work (activations,
normalisation, softmax, residual additions, the optimizer update) is not counted; for these models it is a small
share of the arithmetic but not of the time (see ``docs/mixed_precision.md``).

One gap is filled here: PyTorch (2.13) registers formulas for the CUDA attention kernels but not for the CPU one,
``aten._scaled_dot_product_flash_attention_for_cpu`` (and its backward), so a 4-D
``scaled_dot_product_attention`` on CPU would count as 0 FLOPs. :func:`flop_counter` maps those two operators to
PyTorch's own ``sdpa_flop`` / ``sdpa_backward_flop`` formulas, so CPU and CUDA counts agree. Likewise oneDNN's
linear, ``mkldnn._linear_pointwise`` (what ``crisscross.models.layers.linear`` and ``linear_add`` run while training
in bf16 on a CPU), counts as the ``addmm`` it replaces.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils import flop_counter as fc

from crisscross.tasks.forecasting.losses import mpjpe_loss

__all__ = ["FLOP_CONVENTION", "count_flops", "flop_counter", "forward_flops", "train_flops"]

FLOP_CONVENTION = ("FLOPs from torch.utils.flop_counter.FlopCounterMode: one multiply-add = 2 FLOPs; "
                   "matmul, convolution and attention operators only (element-wise ops not counted)")


def _cpu_sdpa_flop(query_shape, key_shape, value_shape, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    return fc.sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args: Any, out_shape: Any = None,
                            **kwargs: Any) -> int:
    return fc.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _linear_pointwise_flop(input_shape, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """``x[..., K] @ weight[N, K].T`` -> ``[..., N]``: 2 FLOPs per multiply-add, as ``addmm`` counts.

    The bias and the residual of the ``binary`` overload (``X, other, W, B, attr``, where the weight is the third
    argument) are not counted; ``N`` is read from the output, which both overloads share.
    """
    return 2 * math.prod(input_shape[:-1]) * input_shape[-1] * out_shape[-1]


def _cpu_attention_mapping() -> dict[Any, Callable[..., int]]:
    """PyTorch's SDPA formulas for the CPU flash-attention operators it leaves uncounted, and oneDNN's linear."""
    aten = torch.ops.aten
    mapping: dict[Any, Callable[..., int]] = {}
    linear_pointwise = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if linear_pointwise is not None and linear_pointwise not in fc.flop_registry:
        mapping[linear_pointwise] = _linear_pointwise_flop
    fwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if fwd is not None and fwd not in fc.flop_registry and hasattr(fc, "sdpa_flop_count"):
        mapping[fwd] = _cpu_sdpa_flop
    if bwd is not None and bwd not in fc.flop_registry and hasattr(fc, "sdpa_backward_flop_count"):
        mapping[bwd] = _cpu_sdpa_backward_flop
    return mapping


def flop_counter() -> fc.FlopCounterMode:
    """A silent ``FlopCounterMode`` that also counts the CPU attention operators (see module doc)."""
    return fc.FlopCounterMode(display=False, custom_mapping=_cpu_attention_mapping())


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs of the operators ``fn`` runs (multiply-add = 2)."""
    with flop_counter() as counter:
        fn()
    return int(counter.get_total_flops())


def forward_flops(model: torch.nn.Module, past: torch.Tensor) -> int:
    """FLOPs of one inference forward pass on the whole batch.

    Args:
        model: a forecaster (eval mode is set and restored).
        past: Tensor[B, T_in, J, 3].

    Returns:
        Total FLOPs for the batch (divide by B for per-sample FLOPs).
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return count_flops(lambda: model(past))
    finally:
        model.train(was_training)


def train_flops(model: torch.nn.Module, past: torch.Tensor, future: torch.Tensor) -> int:
    """FLOPs of one training forward + backward (as the engine computes it, optimizer update excluded).

    Uses ``model.training_outputs(past, future)`` when the model has it (teacher forcing), else ``model(past)``,
    and the MPJPE loss; gradients are cleared afterwards.

    Args:
        model: a trainable forecaster.
        past: Tensor[B, T_in, J, 3].
        future: Tensor[B, T_out, J, 3].

    Returns:
        Total FLOPs for the batch.
    """
    was_training = model.training
    model.train()

    def step() -> None:
        outputs = getattr(model, "training_outputs", None)
        pred, aux = outputs(past, future) if outputs is not None else (model(past), {})
        loss = mpjpe_loss(pred, future) + sum((v.float() for v in aux.values()), torch.zeros((), device=past.device))
        loss.backward()

    try:
        return count_flops(step)
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
