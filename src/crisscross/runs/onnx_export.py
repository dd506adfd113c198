"""ONNX export of a checkpoint's model, with its input and output contract written into the graph's metadata.

``export_onnx(checkpoint, "model.onnx")`` rebuilds the model a checkpoint describes, exports it with PyTorch's
ONNX exporter (``torch.onnx.export(..., dynamo=True)``, which needs ``onnx`` and ``onnxscript``) with a dynamic
batch dimension, records what a caller must know in the file's ``metadata_props`` (task, model, skeleton, joints,
frames, units, frame rate, the input layout), and, when ONNX Runtime is installed, runs the file on a batch of
another size and compares it with PyTorch.

The graph is the model itself, with no pre- or post-processing inside; the documented steps around it are:

* forecasting: ``past[B, T_in, J, 3]``, the checkpoint's predicted joints in metres, root-relative, as the model
  trains (the checkpoint's ``meta["units"]``); out ``[B, T_out, J, 3]`` in the same units and frame;
* lifting: ``keypoints[B, R, J, 2]`` in normalised screen coordinates (``x / w * 2 - [1, h / w]``); out
  ``[B, 1 or R, J, 3]``, metres, root-relative, camera frame;
* a sampling forecaster (registry ``stochastic=True``): a second input ``noise``, standard normal, of the model's
  ``noise_shape`` (``[B, T_out, L]`` for ``humor-cvae``, ``[B, L]`` for ``stcformer-cvae``); the graph is
  ``forecast_from_noise(past, noise)``, one future per row. ``K`` futures of one past are ``K`` rows of that past
  with ``K`` independent draws; zeros give the deterministic (prior-mean) forecast. The graph holds no random
  operator: the caller owns the draws and their seed.

The ``onnx``, ``onnxscript`` and ``onnxruntime`` packages are the optional ``deploy`` extra.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import torch

from crisscross.models.registry import get_model_entry
from crisscross.runs.checkpoint import load_model_from_checkpoint

__all__ = ["DEPLOY_HINT", "ONNX_PARITY_TOLERANCE_M", "NoiseForecast", "export_module", "export_onnx", "onnx_input",
           "onnx_runtime_parity"]

DEPLOY_HINT = "ONNX export needs the deploy extra: pip install 'crisscross[deploy]' (onnx, onnxscript, onnxruntime)"
#: The largest difference (metres) allowed between ONNX Runtime and PyTorch on the parity batch.
ONNX_PARITY_TOLERANCE_M = 1e-4
_EXPORT_BATCH, _PARITY_BATCH = 2, 3


def onnx_input(task: str, meta: dict[str, Any], batch: int, seed: int = 0) -> torch.Tensor:
    """A random input of the checkpoint's contract: ``[B, T_in, J, 3]`` (forecasting) or ``[B, R, J, 2]``."""
    gen = torch.Generator().manual_seed(seed)
    joints = len(meta["predicted_joints"])
    channels = 2 if task == "lifting" else 3
    return torch.randn(batch, meta["input_frames"], joints, channels, generator=gen) * 0.3


class NoiseForecast(torch.nn.Module):
    """A sampling forecaster as a graph: ``(past[B, T_in, J, 3], noise) -> [B, T_out, J, 3]``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, past: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.model.forecast_from_noise(past, noise)


def _noise_input(model: torch.nn.Module, batch: int, seed: int) -> torch.Tensor:
    """Standard-normal ``noise`` of ``model.noise_shape(batch)``."""
    return torch.randn(model.noise_shape(batch), generator=torch.Generator().manual_seed(seed + 100))


def _contract(name: str, task: str, meta: dict[str, Any]) -> dict[str, str]:
    """The ``metadata_props`` of the exported graph."""
    joints = len(meta["predicted_joints"])
    if task == "lifting":
        layout_in = (f"keypoints [B, {meta['input_frames']}, {joints}, 2]: normalised screen coordinates "
                     "x / w * 2 - [1, h / w]")
        layout_out = f"poses [B, {meta['output_frames']}, {joints}, 3]: metres, root-relative, camera frame"
    else:
        layout_in = f"past [B, {meta['input_frames']}, {joints}, 3]: metres, the predicted joints, root-relative"
        layout_out = f"future [B, {meta['output_frames']}, {joints}, 3]: metres, the predicted joints, root-relative"
    props = {"crisscross.task": task, "crisscross.model": name, "crisscross.input": layout_in,
             "crisscross.output": layout_out, "crisscross.skeleton": str(meta.get("skeleton", "")),
             "crisscross.predicted_joints": json.dumps(list(meta["predicted_joints"])),
             "crisscross.fps": str(meta.get("fps", "")), "crisscross.input_frames": str(meta["input_frames"]),
             "crisscross.output_frames": str(meta["output_frames"])}
    for key in ("normalisation", "units"):
        if key in meta:
            props[f"crisscross.{key}"] = str(meta[key])
    return props


def onnx_runtime_parity(path: str | Path, model: torch.nn.Module, x: torch.Tensor | tuple[torch.Tensor, ...]) -> float:
    """The largest absolute difference between ONNX Runtime's output for ``x`` (one input or a tuple, in the
    graph's input order) and ``model(*x)``."""
    import onnxruntime as ort  # optional: the deploy extra

    inputs = x if isinstance(x, tuple) else (x,)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {arg.name: t.numpy() for arg, t in zip(session.get_inputs(), inputs, strict=True)})[0]
    with torch.no_grad():
        ref = model(*inputs).float().numpy()
    if out.shape != ref.shape:
        raise ValueError(f"{path}: ONNX Runtime returned {out.shape}, PyTorch {ref.shape}")
    return float(abs(out - ref).max())


def export_module(model: torch.nn.Module, example: torch.Tensor | tuple[torch.Tensor, ...], dst: str | Path,
                  metadata: dict[str, str] | None = None, input_names: tuple[str, ...] = ("input",)) -> Path:
    """Export ``model`` traced on ``example`` (one input or a tuple; batch first, the batch dimension dynamic and
    shared) to ``dst``, atomically, with ``metadata`` in the graph's ``metadata_props``."""
    examples = example if isinstance(example, tuple) else (example,)
    if len(input_names) != len(examples):
        raise ValueError(f"{len(examples)} example inputs but {len(input_names)} input names")
    if examples[0].shape[0] < 2:  # torch.export specialises a dimension of size 1, which would fix the batch at 1
        raise ValueError(f"trace the export with a batch of at least 2, got {examples[0].shape[0]}")
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1)
    # the exporter narrates its steps on stdout and warns of torchvision operators it cannot register
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # deprecations inside torch.export's own utilities
            # several inputs share the one batch dimension; the exporter notes that it names it once
            warnings.filterwarnings("ignore", message="# The axis name", category=UserWarning)
            program = torch.onnx.export(model, examples, dynamo=True,
                                        dynamic_shapes=tuple({0: batch} for _ in examples),
                                        input_names=list(input_names), output_names=["output"])
    finally:
        registration.setLevel(level)
    for key, value in (metadata or {}).items():
        program.model.metadata_props[key] = value
    tmp = dst.with_name(dst.name + ".tmp")
    program.save(str(tmp))
    tmp.replace(dst)
    return dst


def export_onnx(source: str | Path, dst: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Export checkpoint ``source`` (a run folder's best one, or a file) to the new ONNX file ``dst``.

    Returns:
        ``{"path", "model", "task", "input_shape", "inputs", "output_shape", "parity_max_abs_m"}`` (``inputs``: each
        graph input's shape by name, ``noise`` too for a sampling model); the parity is the largest difference from
        PyTorch on a batch of 3 (the export traced a batch of 2), None without ONNX Runtime.

    Raises:
        FileExistsError: ``dst`` exists (files are never overwritten).
        ImportError: ``onnx`` or ``onnxscript`` is missing (the message says which extra to install).
        ValueError: ONNX Runtime disagrees with PyTorch by more than :data:`ONNX_PARITY_TOLERANCE_M`.
    """
    dst = Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} exists; choose a new file name (exports are never overwritten)")
    missing = [m for m in ("onnx", "onnxscript") if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{DEPLOY_HINT}; missing: {', '.join(missing)}")
    source = Path(source)
    if source.is_dir():
        source = source / "checkpoints" / "best.pt"
    model, ckpt = load_model_from_checkpoint(source, "cpu")
    entry = get_model_entry(ckpt["model_name"])
    meta, task = ckpt["meta"], entry.task
    contract = _contract(ckpt["model_name"], task, meta)
    sampler = entry.stochastic  # a sampling model exports its sampler, with the caller's noise as a second input
    graph, names = (NoiseForecast(model).eval(), ("input", "noise")) if sampler else (model, ("input",))

    def inputs(batch: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
        past = onnx_input(task, meta, batch, seed)
        return (past, _noise_input(model, batch, seed)) if sampler else (past,)

    if sampler:
        noise = ", ".join(["B", *(str(n) for n in model.noise_shape(1)[1:])])
        contract["crisscross.noise"] = (f"noise [{noise}]: standard normal; K futures of one past are K rows of "
                                        "it with K independent draws; zeros give the prior-mean forecast")
    x = inputs(_EXPORT_BATCH)
    export_module(graph, x, dst, contract, names)
    report: dict[str, Any] = {"path": str(dst), "model": ckpt["model_name"], "task": task,
                              "input_shape": ["B", *x[0].shape[1:]], "output_shape": None, "parity_max_abs_m": None,
                              "inputs": {name: ["B", *t.shape[1:]] for name, t in zip(names, x, strict=True)}}
    with torch.no_grad():
        report["output_shape"] = ["B", *graph(*x).shape[1:]]
    if check and importlib.util.find_spec("onnxruntime") is not None:
        diff = onnx_runtime_parity(dst, graph, inputs(_PARITY_BATCH, seed=1))
        report["parity_max_abs_m"] = diff
        if diff > ONNX_PARITY_TOLERANCE_M:
            raise ValueError(f"{dst}: ONNX Runtime differs from PyTorch by {diff:.2e} m "
                             f"(more than {ONNX_PARITY_TOLERANCE_M:g} m)")
    return report
