"""Evaluate a run folder, a checkpoint file or a weight-free registry model on a dataset split and protocol.

This is the library behind ``crisscross eval``: the checkpoint says which task, model, skeleton, frame rate and
input/output lengths it needs; the caller may point it at another data folder, split, protocol or actions. The
task (:mod:`crisscross.tasks.registry`) loads the split and scores the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch.nn as nn

from crisscross.config.schema import DataConfig
from crisscross.data.registry import get_dataset_info
from crisscross.evaluation.protocols import get_protocol
from crisscross.runs.checkpoint import checkpoint_config, load_model_from_checkpoint, resolve_checkpoint
from crisscross.runtime import select_device
from crisscross.tasks.registry import DEFAULT_TASK, get_task

__all__ = ["evaluate_model", "evaluate_source"]


def evaluate_model(model: nn.Module, *, dataset: str, split: str, protocol: str | None = None,
                   data_dir: str | None = None, cache_dir: str | None = None, actions: tuple[str, ...] | None = None,
                   input_frames: int = 10, output_frames: int = 25, device: str = "auto",
                   batch_size: int = 1024, motion: Any = None, task: str = DEFAULT_TASK,
                   options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``model`` on ``dataset``/``split`` under ``protocol`` (the dataset's default when None).

    ``motion``: that split already loaded by the task, to skip loading it again. ``options``: keyword arguments of
    the task's ``evaluate`` (lifting: ``flip``).
    """
    the_task = get_task(task)
    dev = select_device(device)
    proto = the_task.resolve_protocol(dataset, input_frames, output_frames, protocol)
    if motion is None:
        data = DataConfig(dataset=dataset, data_dir=data_dir, cache_dir=cache_dir)
        motion = the_task.load_split(data, split, actions)
    return the_task.evaluate(model.to(dev).eval(), motion, proto, device=dev, batch_size=batch_size, actions=actions,
                             **(options or {}))


def evaluate_source(source: str | Path | None = None, *, model_name: str | None = None, dataset: str | None = None,
                    split: str | None = None, protocol: str | None = None, data_dir: str | None = None,
                    cache_dir: str | None = None, actions: tuple[str, ...] | None = None, device: str = "auto",
                    input_frames: int | None = None, output_frames: int | None = None,
                    batch_size: int = 1024, task: str | None = None,
                    options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate a run folder / checkpoint (``source``) or a registry model by name (``model_name``).

    Unset arguments default to what the checkpoint's config used (task, dataset, validation split, protocol); the
    data and cache folders never come from a checkpoint (it may come from another machine): they are the arguments,
    else ``$CRISSCROSS_DATA`` / ``$CRISSCROSS_CACHE``, else the user config file. For a model by name they default
    to the embedded synthetic data, the dataset's task, ``val``, and
    the protocol's frames (the task's default without a protocol: 10 -> 25 for forecasting).
    """
    if (source is None) == (model_name is None):
        raise ValueError("give either a run folder / checkpoint or --model NAME")
    if source is not None:
        ckpt_path = resolve_checkpoint(source)
        model, ckpt = load_model_from_checkpoint(ckpt_path)
        cfg = checkpoint_config(ckpt, ckpt_path)
        meta = ckpt["meta"]
        same_dataset = dataset is None or dataset == cfg.data.dataset
        result = evaluate_model(
            model, dataset=dataset or cfg.data.dataset, split=split or cfg.data.val_split,
            protocol=protocol or (cfg.eval.protocol if same_dataset else None),
            data_dir=data_dir, cache_dir=cache_dir, actions=actions,
            input_frames=meta["input_frames"], output_frames=meta["output_frames"], device=device,
            batch_size=batch_size, task=task or cfg.task, options=options)
        result.update(model=ckpt["model_name"], checkpoint=str(ckpt_path), task=task or cfg.task)
        return result
    data = DataConfig(dataset=dataset or "synthetic", data_dir=data_dir, cache_dir=cache_dir)
    entry = get_dataset_info(data.dataset)
    the_task = get_task(task or entry.task)
    split = split or ("val" if "val" in entry.splits else "test")
    # a weight-free model takes its window from the protocol when one is named (e.g. 50 -> 25 frames)
    named = get_protocol(protocol) if protocol else None
    default_in, default_out = the_task.default_frames(data.dataset)
    t_in = input_frames or (named.input_frames if named else default_in)
    t_out = output_frames or (named.output_frames if named else default_out)
    # a protocol that fixes its actions (HumanEva-I: Walking, Jog, Box) also fixes what a reference is fitted to
    actions = actions or getattr(the_task.resolve_protocol(data.dataset, t_in, t_out, protocol), "actions", None) \
        or None
    # the loaded split's skeleton: a built-in one, or the one user recordings describe
    motion = the_task.load_split(data, split, actions)
    model = the_task.build_model(model_name, {}, motion, t_in, t_out)
    result = evaluate_model(model, dataset=data.dataset, split=split, protocol=protocol, actions=actions,
                            input_frames=t_in, output_frames=t_out, device=device, batch_size=batch_size,
                            motion=motion, task=the_task.name, options=options)
    result.update(model=model_name, checkpoint=None, task=the_task.name)
    return result
