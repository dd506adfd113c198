"""One precision policy from one string: fp32, bf16 or fp16 (the latter with loss scaling)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

__all__ = ["PRECISION_DTYPES", "Precision"]

PRECISION_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """Autocast context and gradient scaler for a precision name on a device."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype:
        """The autocast compute dtype."""
        return PRECISION_DTYPES[self.name]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast for bf16/fp16, a null context for fp32."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler enabled only for fp16 (bf16 has fp32's exponent range)."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")
