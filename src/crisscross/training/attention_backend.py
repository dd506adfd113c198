"""Which scaled-dot-product-attention kernel the engine uses (``train.attention``).

PyTorch picks a fused "flash" kernel on CPU whenever it can. For the short sequences of this field (22 joints
per frame, 10-35 frames per joint, 16-64 channels per head) that kernel's backward is the slowest part of a
training step on CPU, and under bf16 autocast it is several times slower again. PyTorch's "math" kernel (two
batched matmuls around a softmax) is faster, but upcasts bf16 to fp32 on CPU; ``explicit`` is not an SDPA
kernel at all: the models compute matmul, softmax, matmul themselves in the autocast dtype
(:func:`crisscross.models.attention.explicit_attention`), the fastest on CPU. ``auto`` picks it on CPU and
leaves the choice to PyTorch on CUDA. ``benchmarks/bench_train_throughput.py`` measures the kernels.
"""

from __future__ import annotations

import contextlib

from torch.nn.attention import SDPBackend, sdpa_kernel

from crisscross.config.schema import ATTENTION_BACKENDS
from crisscross.models.attention import explicit_attention

__all__ = ["ATTENTION_BACKENDS", "attention_backend", "resolve_attention_backend"]

_CUDA_ONLY = ("efficient", "cudnn")  # PyTorch has no CPU implementation of these kernels
_KERNELS = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}


def resolve_attention_backend(name: str, device_type: str) -> str:
    """The backend ``name`` stands for on ``device_type``: ``auto`` is ``explicit`` on CPU, ``default`` elsewhere."""
    if name not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; expected one of {', '.join(ATTENTION_BACKENDS)}")
    if name == "auto":
        return "explicit" if device_type == "cpu" else "default"
    if device_type == "cpu" and name in _CUDA_ONLY:
        raise ValueError(
            f"train.attention={name} needs a CUDA device; on CPU use auto, default, explicit, math or flash"
        )
    return name


def attention_backend(name: str, device_type: str) -> contextlib.AbstractContextManager:
    """A context in which ``F.scaled_dot_product_attention`` uses the kernel ``name`` resolves to.

    ``default`` is PyTorch's own choice (a null context); ``explicit`` makes the models bypass SDPA. The SDPA
    contexts only restrict which kernels may run, so attention capture (always explicit) is unaffected.
    """
    resolved = resolve_attention_backend(name, device_type)
    if resolved == "default":
        return contextlib.nullcontext()
    if resolved == "explicit":
        return explicit_attention()
    return sdpa_kernel(_KERNELS[resolved])
