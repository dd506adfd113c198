"""The one model registry (timm-style): builders register by name, `create_model` builds by name.

A builder is a function with keyword-only arguments

    builder(*, num_joints: int, input_frames: int, output_frames: int,
            graph_parents: tuple[int, ...] | None = None,
            body_parts: tuple[int, ...] | None = None, **overrides) -> nn.Module

Every model maps ``past: Tensor[B, T_in, J, 3]`` (metres, root-relative) to ``Tensor[B, T_out, J, 3]``.
Optional model methods the engine uses when present:

* ``training_outputs(past, future) -> (pred, aux_losses: dict[str, Tensor])``: teacher forcing or extra
  loss terms (already weighted) added to the position loss;
* ``no_weight_decay() -> set[str]``: parameter names excluded from weight decay besides ``ndim <= 1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch.nn as nn

__all__ = [
    "ModelEntry",
    "count_parameters",
    "create_model",
    "describe_models",
    "get_model_entry",
    "list_models",
    "register_model",
]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model builder and its one-line description."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    trainable: bool = True


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, description: str = "", trainable: bool = True) -> Callable:
    """Decorator registering ``builder`` under ``name`` (kebab-case, unique)."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or next(iter((builder.__doc__ or "").strip().splitlines()), "")
        _MODELS[name] = ModelEntry(name=name, builder=builder, description=doc, trainable=trainable)
        return builder

    return decorate


def _ensure_loaded() -> None:
    # Importing the model modules fills the registry through their decorators.
    import crisscross.models  # noqa: F401


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    _ensure_loaded()
    return sorted(_MODELS)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    _ensure_loaded()
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, *, num_joints: int, input_frames: int, output_frames: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; extra keyword arguments override the variant's defaults."""
    entry = get_model_entry(name)
    try:
        return entry.builder(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames, **kwargs)
    except TypeError as err:
        raise ValueError(f"model {name!r}: {err}") from None


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def describe_models(num_joints: int = 22, input_frames: int = 10, output_frames: int = 25) -> list[dict[str, Any]]:
    """One row per registered model: ``name``, ``description``, ``parameters`` (built at the given sizes
    with the default chain graph and no body parts) and ``trainable``; for the ``crisscross models`` command.
    """
    rows = []
    for name in list_models():
        entry = _MODELS[name]
        model = create_model(name, num_joints=num_joints, input_frames=input_frames, output_frames=output_frames)
        rows.append(
            {"name": name, "description": entry.description, "parameters": count_parameters(model),
             "trainable": entry.trainable}
        )
    return rows
