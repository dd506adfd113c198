"""Evaluate a run folder, a checkpoint file or a weight-free registry model on a dataset split and protocol.

This is the library behind ``crisscross eval``: the checkpoint says which model, skeleton, frame rate and
input/output lengths it needs; the caller may point it at another data folder, split, protocol or actions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from crisscross.training.checkpoint import evaluation_weights, resolve_checkpoint

__all__ = ["check_protocol_fits", "default_protocol_name", "resolve_checkpoint", "load_model_from_checkpoint", "evaluate_source",
           "evaluate_model"]

# The protocol each dataset is evaluated under unless one is named: the literature's most common one.
_PREFERRED_WINDOW_RULES = ("256", "8", "srnn8", "all")


def default_protocol_name(dataset: str, input_frames: int, output_frames: int) -> str:
    """The default protocol for a dataset and window lengths ("256 per action" for H3.6M, 8 per file for CMU)."""
    from crisscross.evaluation.protocols import PROTOCOLS

    # A model trained on fewer output frames (siMLPe: 50 -> 10) is rolled out to the protocol's 25 frames.
    target = max(output_frames, 25)
    candidates = [p for p in PROTOCOLS.values()
                  if p.dataset == dataset and (p.input_frames, p.output_frames) == (input_frames, target)]
    for rule in _PREFERRED_WINDOW_RULES:
        for p in candidates:
            if p.name.endswith("-" + rule):
                return p.name
    if candidates:
        return candidates[0].name
    raise ValueError(f"no protocol for dataset {dataset!r} with {input_frames} -> {output_frames} frames; "
                     f"known: {', '.join(PROTOCOLS)}")


def check_protocol_fits(protocol, input_frames: int, output_frames: int) -> None:
    """A model fits a protocol with the same input length and at most its output length (rolled out)."""
    if protocol.input_frames != input_frames or protocol.output_frames < output_frames:
        raise ValueError(f"protocol {protocol.name} is {protocol.input_frames} -> {protocol.output_frames} frames but "
                         f"the model is {input_frames} -> {output_frames}; pick a protocol with {input_frames} input "
                         f"frames")


def load_model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes and load its (EMA if present) weights."""
    from crisscross.data.skeleton import skeleton_from_meta
    from crisscross.training.checkpoint import load_checkpoint
    from crisscross.training.loop import build_model

    ckpt = load_checkpoint(path)
    meta = ckpt["meta"]
    skeleton = skeleton_from_meta(meta)
    model = build_model(ckpt["model_name"], ckpt["model_args"], skeleton, meta["input_frames"], meta["output_frames"])
    model.load_state_dict(evaluation_weights(ckpt))
    return model.to(device).eval(), ckpt


def evaluate_model(model: nn.Module, *, dataset: str, split: str, protocol: str | None = None,
                   data_dir: str | None = None, cache_dir: str | None = None, actions: tuple[str, ...] | None = None,
                   input_frames: int = 10, output_frames: int = 25, device: str = "auto",
                   batch_size: int = 1024, motion: Any = None) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset``/``split`` under ``protocol`` (the dataset's default when None).

    ``motion``: that split already loaded (by :func:`~crisscross.data.datasets.load_motion`), to skip loading it again.
    """
    from crisscross.data.datasets import load_motion
    from crisscross.evaluation.evaluate import evaluate_forecaster, make_predict_fn
    from crisscross.evaluation.protocols import get_protocol
    from crisscross.runtime import select_device

    dev = select_device(device)
    proto = get_protocol(protocol or default_protocol_name(dataset, input_frames, output_frames))
    check_protocol_fits(proto, input_frames, output_frames)
    if motion is None:
        motion = load_motion(dataset, split=split, data_dir=data_dir, cache_dir=cache_dir, actions=actions)
    model = model.to(dev).eval()
    predict = make_predict_fn(model, motion.skeleton, proto.output_frames)
    result = evaluate_forecaster(predict, motion, proto, device=dev,
                                 batch_size=batch_size, actions=actions)
    return result


def evaluate_source(source: str | None = None, *, model_name: str | None = None, dataset: str | None = None,
                    split: str | None = None, protocol: str | None = None, data_dir: str | None = None,
                    cache_dir: str | None = None, actions: tuple[str, ...] | None = None, device: str = "auto",
                    input_frames: int | None = None, output_frames: int | None = None,
                    batch_size: int = 1024) -> dict[str, Any]:
    """Evaluate a run folder / checkpoint (``source``) or a registry model by name (``model_name``).

    Unset arguments default to what the checkpoint's config used (dataset, data folder, validation split,
    protocol); for a model by name they default to the embedded synthetic data, ``val``, and the protocol's frames
    (10 -> 25 without a protocol).
    """
    from crisscross.data.datasets import load_motion
    from crisscross.evaluation.protocols import get_protocol
    from crisscross.training.loop import build_model

    if (source is None) == (model_name is None):
        raise ValueError("give either a run folder / checkpoint or --model NAME")
    if source is not None:
        ckpt_path = resolve_checkpoint(source)
        model, ckpt = load_model_from_checkpoint(ckpt_path)
        cfg = ckpt["config"]
        meta = ckpt["meta"]
        same_dataset = dataset is None or dataset == cfg["data"]["dataset"]
        result = evaluate_model(
            model, dataset=dataset or cfg["data"]["dataset"], split=split or cfg["data"]["val_split"],
            protocol=protocol or (cfg["eval"]["protocol"] if same_dataset else None),
            data_dir=data_dir or (cfg["data"]["data_dir"] if same_dataset else None),
            cache_dir=cache_dir or cfg["data"].get("cache_dir"), actions=actions,
            input_frames=meta["input_frames"], output_frames=meta["output_frames"], device=device,
            batch_size=batch_size)
        result.update(model=ckpt["model_name"], checkpoint=str(ckpt_path))
        return result
    dataset, split = dataset or "synthetic", split or "val"
    # the loaded split's skeleton: a built-in one, or the one user recordings describe
    motion = load_motion(dataset, split=split, data_dir=data_dir, cache_dir=cache_dir, actions=actions)
    # a weight-free model takes its window from the protocol when one is named (e.g. 50 -> 25 frames)
    proto = get_protocol(protocol) if protocol else None
    t_in = input_frames or (proto.input_frames if proto else 10)
    t_out = output_frames or (proto.output_frames if proto else 25)
    model = build_model(model_name, {}, motion.skeleton, t_in, t_out)
    result = evaluate_model(model, dataset=dataset, split=split, protocol=protocol, data_dir=data_dir,
                            cache_dir=cache_dir, actions=actions, input_frames=t_in, output_frames=t_out,
                            device=device, batch_size=batch_size, motion=motion)
    result.update(model=model_name, checkpoint=None)
    return result
