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

Models registered with ``stochastic=True`` also draw futures: ``sample(past, k, generator=None) -> Tensor[K, B,
T_out, J, 3]``, ``noise_shape(batch)`` with ``forecast_from_noise(past, noise) -> Tensor[B, T_out, J, 3]`` (one
future per row from caller-drawn standard-normal noise: the exportable form) and ``elbo_terms(past, future) ->
dict[str, Tensor]``; their ``forward`` stays a deterministic forecast (``crisscross.models.cvae``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn
import yaml

from crisscross.data.skeleton import Skeleton

__all__ = [
    "ModelEntry",
    "ModelSpec",
    "build_model",
    "count_parameters",
    "create_model",
    "describe_models",
    "get_model_entry",
    "list_models",
    "parse_model_spec",
    "register_model",
]


@dataclass(frozen=True)
class ModelEntry:
    """A registered model builder and its one-line description."""

    name: str
    builder: Callable[..., nn.Module]
    description: str
    trainable: bool = True
    task: str = "forecasting"  # forecasting models map 3D poses to 3D poses; lifting models map 2D keypoints to 3D
    stochastic: bool = False  # has sample(past, k) drawing K futures (forward is still one deterministic forecast)


# Filled by the @register_model decorators of the model modules, which ``crisscross/models/__init__.py`` imports;
# importing this module imports that package first, so the registry is complete whenever it is read.
_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, description: str = "", trainable: bool = True, task: str = "forecasting",
                   stochastic: bool = False) -> Callable:
    """Decorator registering ``builder`` under ``name`` (kebab-case, unique) for ``task``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        doc = description or next(iter((builder.__doc__ or "").strip().splitlines()), "")
        _MODELS[name] = ModelEntry(name=name, builder=builder, description=doc, trainable=trainable, task=task,
                                   stochastic=stochastic)
        return builder

    return decorate


def list_models(task: str | None = None) -> list[str]:
    """Names of every registered model (of ``task`` only, when given), sorted."""
    return sorted(name for name, entry in _MODELS.items() if task is None or entry.task == task)


def get_model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, *, num_joints: int, input_frames: int, output_frames: int, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``; extra keyword arguments override the variant's defaults."""
    entry = get_model_entry(name)
    try:
        return entry.builder(num_joints=num_joints, input_frames=input_frames, output_frames=output_frames, **kwargs)
    except (TypeError, ValueError, RuntimeError) as err:  # bad arguments (model.args): one line, not a traceback
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k not in ("graph_parents", "body_parts"))
        raise ValueError(f"model {name!r} cannot be built with {given or 'its defaults'} "
                         f"({input_frames} -> {output_frames} frames, {num_joints} joints): {text}") from None


def build_model(name: str, args: dict[str, Any], skeleton: Skeleton, input_frames: int,
                output_frames: int) -> nn.Module:
    """Create a registry model for ``skeleton``'s predicted joints (their graph and body parts come with them)."""
    return create_model(name, num_joints=len(skeleton.predicted), input_frames=input_frames,
                        output_frames=output_frames, graph_parents=tuple(skeleton.predicted_parents()),
                        body_parts=tuple(skeleton.predicted_body_parts()), **args)


@dataclass(frozen=True)
class ModelSpec:
    """A registry model with argument overrides, e.g. ``stcformer:dim=128:heads=4``."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """``name`` followed by ``:key=value`` for each override."""
        return self.name + "".join(f":{k}={v}" for k, v in self.args)


def parse_model_spec(text: str | dict[str, Any]) -> ModelSpec:
    """Parse ``NAME[:key=value...]`` (values read as YAML scalars) or ``{name: NAME, args: {...}}``.

    Raises:
        ValueError: malformed text.
    """
    if isinstance(text, dict):
        if "name" not in text:
            raise ValueError(f"model entry {text!r} needs a 'name'")
        return ModelSpec(str(text["name"]), tuple((str(k), v) for k, v in dict(text.get("args") or {}).items()))
    parts = [p.strip() for p in str(text).split(":")]
    if not parts[0]:
        raise ValueError(f"model spec {text!r} has no model name")
    args = []
    for part in parts[1:]:
        if "=" not in part:
            raise ValueError(f"model spec {text!r}: {part!r} is not key=value")
        key, value = part.split("=", 1)
        args.append((key.strip(), yaml.safe_load(value)))
    return ModelSpec(parts[0], tuple(args))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# The sizes ``describe_models`` builds each task's models at: joints, input frames, output frames.
_DESCRIBE_SIZES = {"forecasting": (22, 10, 25), "lifting": (17, 27, 1)}


def describe_models(num_joints: int = 22, input_frames: int = 10, output_frames: int = 25) -> list[dict[str, Any]]:
    """One row per registered model: ``name``, ``description``, ``parameters``, ``trainable`` and ``task``.

    Forecasting models are built at the given sizes, lifting models at 17 joints and 27 -> 1 frames, all with the
    default chain graph and no body parts; for the ``crisscross models`` command.
    """
    sizes = dict(_DESCRIBE_SIZES, forecasting=(num_joints, input_frames, output_frames))
    rows = []
    for name in list_models():
        entry = _MODELS[name]
        joints, t_in, t_out = sizes[entry.task]
        model = create_model(name, num_joints=joints, input_frames=t_in, output_frames=t_out)
        rows.append({"name": name, "description": entry.description, "parameters": count_parameters(model),
                     "trainable": entry.trainable, "task": entry.task})
    return rows
