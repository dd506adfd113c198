"""Self-describing checkpoints, written atomically and loadable with ``torch.load(weights_only=True)``.

A checkpoint holds the unwrapped model state (no ``_orig_mod.``/``module.`` prefixes), the optimizer,
scaler and EMA states, the counters and RNG states needed for an exact resume, and everything needed
to use the model alone: the resolved config, model name and arguments, skeleton name, predicted joints,
frame rate and input/output lengths.
"""

from __future__ import annotations

import errno
import json
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from crisscross.config import ExperimentConfig, config_from_dict
from crisscross.config.schema import ConfigError
from crisscross.data.skeleton import skeleton_from_meta
from crisscross.models.registry import build_model
from crisscross.runs.folders import CHECKPOINTS_DIR, ENV_FILE
from crisscross.runtime import atomic_write

__all__ = [
    "CheckpointError",
    "average_weights",
    "checkpoint_config",
    "evaluation_weights",
    "export_checkpoint",
    "load_checkpoint",
    "load_error",
    "load_model_from_checkpoint",
    "load_weights_for_finetuning",
    "portable_config",
    "resolve_checkpoint",
    "save_checkpoint",
    "unwrap_model",
]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or lacks a required entry."""


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, fsync, rename."""
    return atomic_write(path, lambda fh: torch.save(payload, fh))


def resolve_checkpoint(source: str | Path) -> Path:
    """A checkpoint file from a run folder (``checkpoints/best.pt``, else ``last.pt``) or a file path."""
    path = Path(source)
    if path.is_dir():
        for name in ("best.pt", "last.pt"):
            if (path / CHECKPOINTS_DIR / name).is_file():
                return path / CHECKPOINTS_DIR / name
        raise CheckpointError(f"{path} holds no checkpoints/best.pt or checkpoints/last.pt")
    if not path.exists():
        raise CheckpointError(f"{path} is neither a run folder nor a checkpoint file")
    return path


def load_error(err: Exception) -> str:
    """One line for a failed ``torch.load`` (torch's messages run over several lines of advice, one of which
    recommends ``weights_only=False``, i.e. running arbitrary code from the file)."""
    text = str(err).strip()
    if isinstance(err, (pickle.UnpicklingError, IndexError, UnicodeDecodeError)):  # what text or foreign bytes raise
        return "not a file that torch.load(weights_only=True) accepts: objects other than tensors, or no PyTorch file"
    truncated = isinstance(err, (EOFError, KeyError)) or (isinstance(err, OSError) and err.errno == errno.EINVAL)
    if truncated or "central directory" in text or "zip archive" in text:
        return "truncated or corrupt (an incomplete PyTorch zip archive); copy or write it again"
    if "legacy .tar format" in text or "magic number" in text:
        return "not a PyTorch zip archive (empty, zeroed, or written by a PyTorch older than 1.6)"
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first.split('. ')[0]}"


REQUIRED_KEYS = ("model_state", "model_name", "model_args", "config", "meta")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check it is self-describing."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} cannot be read: {load_error(err)}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(payload).__name__}, not a dict; "
                              "is it a crisscross checkpoint?")
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {', '.join(missing)}; is it a crisscross checkpoint?")
    problem = _entry_problem(payload)
    if problem:
        raise CheckpointError(f"checkpoint {path}: {problem}; is it a crisscross checkpoint?")
    return payload


def _is_weights(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())


def _entry_problem(payload: dict[str, Any]) -> str | None:
    """What is wrong with the types of a checkpoint's entries that every reader relies on, or None.

    A checkpoint is user input (a file from another machine, a damaged copy): an entry of the wrong type would
    otherwise fail deep inside a reader as a TypeError or AttributeError. Only the entries' types are checked; a
    reader checks what the values mean (a model name, the weights' shapes).
    """
    if not _is_weights(payload["model_state"]):
        return "model_state is not a mapping of weight names to tensors"
    if payload.get("ema_state") is not None and not _is_weights(payload["ema_state"]):
        return "ema_state is not a mapping of weight names to tensors"
    if not isinstance(payload["model_name"], str):
        return f"model_name is a {type(payload['model_name']).__name__}, not a registry name"
    if not (isinstance(payload["model_args"], dict) and all(isinstance(k, str) for k in payload["model_args"])):
        return "model_args is not a mapping of argument names to values"
    for key in ("config", "meta"):
        if not isinstance(payload[key], dict):
            return f"{key} is a {type(payload[key]).__name__}, not a mapping"
    updates = payload.get("ema_updates")
    if updates is not None and (isinstance(updates, bool) or not isinstance(updates, int) or updates < 0):
        return f"ema_updates is {updates!r}, not a count of EMA updates"
    if payload.get("train_state") is not None and not isinstance(payload["train_state"], dict):
        return f"train_state is a {type(payload['train_state']).__name__}, not a mapping"
    meta = payload["meta"]
    for key in ("input_frames", "output_frames"):
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return f"meta.{key} is {value!r}, not a number of frames"
    joints = meta.get("predicted_joints")
    if joints is not None and not (isinstance(joints, list | tuple) and all(isinstance(j, int | str) for j in joints)):
        return "meta.predicted_joints is not a list of joints"
    return None


def _one_line(err: BaseException) -> str:
    """``err``'s message in one line (a KeyError's without the quotes ``str`` adds)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


def checkpoint_config(ckpt: dict[str, Any], path: str | Path) -> ExperimentConfig:
    """The experiment config stored in checkpoint ``ckpt`` (read from ``path``), validated.

    Raises:
        CheckpointError: the stored config is not one this version accepts (one line naming the file and key).
    """
    try:
        return config_from_dict(ckpt["config"])
    except ConfigError as err:
        raise CheckpointError(f"checkpoint {path}: its stored config: {err}") from None


def evaluation_weights(ckpt: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The weights a checkpoint's evaluation uses: the EMA average when the run kept one, else the model's."""
    return ckpt.get("ema_state") or ckpt["model_state"]


# What a released (exported) checkpoint keeps: enough to rebuild, evaluate and cite the model, nothing to resume.
EXPORT_KEYS = ("model_name", "model_args", "config", "meta")


def _source_name(path: Path) -> str:
    """``<run name>/<run id>/checkpoints/<file>`` for a run's checkpoint, else the file name: a released file
    names its source without the folders of the machine it was trained on."""
    parts = path.parts
    return "/".join(parts[-4:]) if len(parts) >= 4 and parts[-2] == CHECKPOINTS_DIR else path.name


def _portable_source(text: str) -> str:
    """A ``train.init_from`` without the machine's folders: a path relative to the working folder stays (e.g.
    ``pretrained/x.pt``); an absolute one keeps its run-relative part (:func:`_source_name` for a checkpoint file,
    ``<run name>/<run id>`` for a run folder)."""
    path = Path(text).expanduser()
    if not (path.is_absolute() or text.startswith("..")):
        return text
    return _source_name(path) if path.suffix == ".pt" else "/".join(path.parts[-2:])


def portable_config(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the machine's folders: data and cache folders unset, the run root the default, the
    starting weights (``train.init_from``) named without the folders above their run."""
    out = dict(config)
    if isinstance(out.get("data"), dict):
        out["data"] = {**out["data"], "data_dir": None, "cache_dir": None}
    if isinstance(out.get("track"), dict):
        out["track"] = {**out["track"], "root": "runs"}
    if isinstance(out.get("train"), dict) and isinstance(out["train"].get("init_from"), str):
        out["train"] = {**out["train"], "init_from": _portable_source(out["train"]["init_from"])}
    return out


def export_checkpoint(src: str | Path | Sequence[str | Path], dst: str | Path, *,
                      dtype: torch.dtype = torch.float32) -> Path:
    """Write the evaluation weights of checkpoint ``src`` (or a run folder's ``best.pt``) to a new file ``dst``.

    The EMA weights are exported when the run kept them (they are what its evaluation used); optimizer, scaler,
    RNG and resume state are dropped, and floating-point tensors are stored as ``dtype``. The training
    provenance (updates, epochs, wall time) is kept under ``meta["training"]``, the source as its run name and
    id; the machine's data, cache and run folders are left out of the config. Never overwrites ``dst``.

    Several sources are averaged uniformly, parameter by parameter (a "uniform soup", Wortsman et al. 2022):
    they must describe the same forecaster (:func:`average_weights`), and only runs fine-tuned from one
    starting point average well. Config and metadata come from the first source; ``meta["averaged_from"]``
    lists every source with its training provenance.
    """
    sources = [Path(src)] if isinstance(src, (str, Path)) else [Path(s) for s in src]
    if not sources:
        raise ValueError("export_checkpoint needs at least one source")
    sources = [s / CHECKPOINTS_DIR / "best.pt" if s.is_dir() else s for s in sources]
    dst = Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} exists; choose a new file name (checkpoints are never overwritten)")
    ckpts = [load_checkpoint(s) for s in sources]
    state = evaluation_weights(ckpts[0]) if len(ckpts) == 1 else average_weights(ckpts, sources)
    first = ckpts[0]
    payload = {k: first[k] for k in EXPORT_KEYS}
    payload["config"] = portable_config(payload["config"])
    payload["model_state"] = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    provenance = [{"checkpoint": _source_name(s), "weights": "ema" if c.get("ema_state") else "model",
                   "training": dict(c.get("train_state") or {})} for s, c in zip(sources, ckpts)]
    payload["meta"] = dict(payload["meta"], training=provenance[0]["training"],
                           exported_from=_source_name(sources[0]),
                           weights=provenance[0]["weights"])
    device = _training_device(sources[0])
    if device is not None:
        payload["meta"]["device"] = device
    if len(ckpts) > 1:
        payload["meta"]["averaged_from"] = provenance
    return save_checkpoint(dst, payload)


def _training_device(checkpoint: Path) -> str | None:
    """The device a run trained on (``device_name`` of its ``env.json``, beside its checkpoints folder), or ``None``
    for a checkpoint outside a run folder."""
    try:
        return json.loads((checkpoint.parent.parent / ENV_FILE).read_text()).get("device_name")
    except (OSError, ValueError, AttributeError):
        return None


# What must agree for two checkpoints' weights to be averaged or exchanged.
_IDENTITY_KEYS = ("predicted_joints", "input_frames", "output_frames")


def _differing_keys(a: dict[str, Any], b: dict[str, Any], keys: Sequence[str] | None = None) -> list[str]:
    """The keys (all of both dicts' by default) whose values differ between ``a`` and ``b``, sorted."""
    return sorted(k for k in (keys if keys is not None else set(a) | set(b)) if a.get(k) != b.get(k))


def average_weights(ckpts: Sequence[dict[str, Any]], sources: Sequence[str | Path]) -> dict[str, torch.Tensor]:
    """The uniform average of several checkpoints' evaluation weights, in float32.

    Every checkpoint must hold the same registry model with the same ``model_args``, predicted joints and
    window lengths, and parameters of the same names and shapes; else a :class:`CheckpointError` names the
    file and what differs. Integer buffers (counters) are taken from the first checkpoint.
    """
    ref, ref_src = ckpts[0], sources[0]
    ref_state = evaluation_weights(ref)
    total = {k: v.float().clone() if v.is_floating_point() else v for k, v in ref_state.items()}
    for ckpt, src in zip(ckpts[1:], sources[1:]):
        if ckpt["model_name"] != ref["model_name"]:
            raise CheckpointError(f"cannot average {src} ({ckpt['model_name']}) with {ref_src} ({ref['model_name']})")
        differing = _differing_keys(ckpt["model_args"], ref["model_args"])
        differing += _differing_keys(ckpt["meta"], ref["meta"], _IDENTITY_KEYS)
        if differing:
            raise CheckpointError(f"cannot average {src} with {ref_src}: they differ in {', '.join(differing)}")
        state = evaluation_weights(ckpt)
        if set(state) != set(ref_state) or any(state[k].shape != ref_state[k].shape for k in ref_state):
            raise CheckpointError(f"cannot average {src} with {ref_src}: their parameter names or shapes differ")
        for k, v in state.items():
            if v.is_floating_point():
                total[k] += v.float()
    return {k: v / len(ckpts) if v.is_floating_point() else v for k, v in total.items()}


def load_weights_for_finetuning(model: nn.Module, src: str | Path, *, model_name: str, model_args: dict[str, Any],
                                predicted_joints: list[str], input_frames: int, output_frames: int) -> Path:
    """Copy the evaluation weights of checkpoint or run folder ``src`` (:func:`resolve_checkpoint`) into ``model``.

    This starts a new run from trained weights (``train.init_from``); the optimizer, schedule and counters start
    afresh. The checkpoint must describe the same forecaster: registry name, predicted joints, window lengths
    and parameter shapes, else a :class:`CheckpointError` names the file and what differs. Arguments that leave
    the parameters unchanged (dropout, drop_path) may differ. Returns the file that was read.
    """
    src = resolve_checkpoint(Path(src).expanduser())
    ckpt = load_checkpoint(src)
    meta = ckpt["meta"]
    # A model may start from the weights of the model it extends (a CVAE from its deterministic backbone): it
    # names that model in ``warm_start_from`` and the prefixes of its own new parts in ``warm_start_new``.
    backbone = ckpt["model_name"] != model_name and ckpt["model_name"] in getattr(model, "warm_start_from", ())
    wanted = {"model_name": ckpt["model_name"] if backbone else model_name, "predicted_joints": list(predicted_joints),
              "input_frames": input_frames, "output_frames": output_frames}
    found = {"model_name": ckpt["model_name"], **{k: meta.get(k) for k in _IDENTITY_KEYS}}
    found["predicted_joints"] = list(found["predicted_joints"] or [])
    for key, value in wanted.items():
        if found[key] != value:
            raise CheckpointError(f"train.init_from: checkpoint {src} has {key}={found[key]!r}, "
                                  f"but this run's config needs {value!r}")
    try:
        if backbone:
            _load_backbone(model, evaluation_weights(ckpt), src)
        else:
            model.load_state_dict(evaluation_weights(ckpt))
    except RuntimeError as err:
        differing = _differing_keys(model_args, ckpt["model_args"])
        detail = "; ".join(line.strip() for line in str(err).splitlines()[1:4])
        raise CheckpointError(f"train.init_from: the weights in {src} do not fit this model (model.args that differ: "
                              f"{', '.join(differing) or 'none'}): {detail}") from None
    return src


def _load_backbone(model: nn.Module, weights: dict[str, torch.Tensor], src: Path) -> None:
    """Every weight of the backbone checkpoint into ``model``; only ``model``'s own new parts stay as built."""
    result = model.load_state_dict(weights, strict=False)
    new_parts = tuple(getattr(model, "warm_start_new", ()))
    stray = [k for k in result.missing_keys if not k.startswith(new_parts)]
    if result.unexpected_keys or stray:
        raise CheckpointError(f"train.init_from: {src} is not the backbone of this model (weights it lacks: "
                              f"{', '.join(stray[:3]) or 'none'}; weights it does not use: "
                              f"{', '.join(result.unexpected_keys[:3]) or 'none'})")
    if hasattr(model, "after_warm_start"):
        model.after_warm_start()


def load_model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its (EMA if present) weights."""
    ckpt = load_checkpoint(path)
    meta, name = ckpt["meta"], ckpt["model_name"]
    frames = [k for k in ("input_frames", "output_frames") if k not in meta]
    if frames:
        raise CheckpointError(f"checkpoint {path}: meta lacks {', '.join(frames)}; is it a crisscross checkpoint?")
    try:
        skeleton = skeleton_from_meta(meta)
        model = build_model(name, ckpt["model_args"], skeleton, meta["input_frames"], meta["output_frames"])
    except (KeyError, ValueError, TypeError) as err:  # an unknown model or skeleton, arguments it does not take
        raise CheckpointError(f"checkpoint {path} describes no model this version can build: "
                              f"{_one_line(err)}") from None
    try:
        model.load_state_dict(evaluation_weights(ckpt))
    except RuntimeError as err:  # torch lists every missing, unexpected or misshapen weight on lines of their own
        raise CheckpointError(f"checkpoint {path}: its weights do not fit the {name} model it names: "
                              f"{_one_line(err)}") from None
    return model.to(device).eval(), ckpt
