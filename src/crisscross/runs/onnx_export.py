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
  ``[B, 1 or R, J, 3]``, metres, root-relative, camera frame.

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

__all__ = ["DEPLOY_HINT", "ONNX_PARITY_TOLERANCE_M", "export_module", "export_onnx", "onnx_input",
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


def onnx_runtime_parity(path: str | Path, model: torch.nn.Module, x: torch.Tensor) -> float:
    """The largest absolute difference between ONNX Runtime's output for ``x`` and ``model(x)``."""
    import onnxruntime as ort  # optional: the deploy extra

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).float().numpy()
    if out.shape != ref.shape:
        raise ValueError(f"{path}: ONNX Runtime returned {out.shape}, PyTorch {ref.shape}")
    return float(abs(out - ref).max())


def export_module(model: torch.nn.Module, example: torch.Tensor, dst: str | Path,
                  metadata: dict[str, str] | None = None) -> Path:
    """Export ``model`` traced on ``example`` (batch first, the batch dimension dynamic) to ``dst``, atomically, with
    ``metadata`` in the graph's ``metadata_props``."""
    if example.shape[0] < 2:  # torch.export specialises a dimension of size 1, which would fix the batch at 1
        raise ValueError(f"trace the export with a batch of at least 2, got {example.shape[0]}")
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
            program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: batch},),
                                        input_names=["input"], output_names=["output"])
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
        ``{"path", "model", "task", "input_shape", "output_shape", "parity_max_abs_m"}``; the parity is the largest
        difference from PyTorch on a batch of 3 (the export traced a batch of 2), None without ONNX Runtime.

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
    meta, task = ckpt["meta"], get_model_entry(ckpt["model_name"]).task
    x = onnx_input(task, meta, _EXPORT_BATCH)
    export_module(model, x, dst, _contract(ckpt["model_name"], task, meta))
    report: dict[str, Any] = {"path": str(dst), "model": ckpt["model_name"], "task": task,
                              "input_shape": ["B", *x.shape[1:]], "output_shape": None, "parity_max_abs_m": None}
    with torch.no_grad():
        report["output_shape"] = ["B", *model(x).shape[1:]]
    if check and importlib.util.find_spec("onnxruntime") is not None:
        diff = onnx_runtime_parity(dst, model, onnx_input(task, meta, _PARITY_BATCH, seed=1))
        report["parity_max_abs_m"] = diff
        if diff > ONNX_PARITY_TOLERANCE_M:
            raise ValueError(f"{dst}: ONNX Runtime differs from PyTorch by {diff:.2e} m "
                             f"(more than {ONNX_PARITY_TOLERANCE_M:g} m)")
    return report
