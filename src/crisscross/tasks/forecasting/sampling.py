"""Forecasters as ``sample_fn`` for the stochastic evaluator: K futures per past, full skeleton, millimetres.

:func:`make_sample_fn` is the stochastic analogue of :func:`crisscross.evaluation.forecasting.make_predict_fn`: it
selects the skeleton's predicted joints of the observed frames, converts millimetres to metres, draws the model's
``sample(past, k, generator)`` in eval mode under ``torch.no_grad()`` from a ``torch.Generator`` seeded once per
evaluation, converts back to millimetres and builds the full skeleton (predicted joints from the samples, copies from
their sources, every other joint from the last observed frame). A model without ``sample`` (every registry entry
without ``stochastic=True``) is scored as K copies of its deterministic forecast
(:func:`~crisscross.evaluation.stochastic.deterministic_sample_fn`): its APD is 0 and its best-of-K ADE is its ADE.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from crisscross.data.datasets import DATASETS
from crisscross.data.skeleton import Skeleton
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.evaluation.protocols import PROTOCOLS, StochasticProtocol
from crisscross.evaluation.stochastic import SampleFn, deterministic_sample_fn

__all__ = ["DETERMINISTIC_SAMPLER", "MODEL_SAMPLER", "check_stochastic_loader", "is_stochastic", "make_sample_fn"]

#: How a result's K futures were drawn (the ``sampler`` key of a stochastic result).
MODEL_SAMPLER = "model.sample (latents drawn from the prior)"
DETERMINISTIC_SAMPLER = "deterministic: the forecast repeated K times"
_MM_PER_M = 1000.0


def is_stochastic(model: nn.Module) -> bool:
    """Whether ``model`` draws futures: it has ``sample(past, k, generator=None)`` (registry ``stochastic=True``)."""
    return callable(getattr(model, "sample", None))


def _full_skeleton(past_mm: torch.Tensor, pred_m: torch.Tensor, skeleton: Skeleton) -> torch.Tensor:
    """``[K, B, T, J_full, 3]`` mm from ``pred_m[K, B, T, J_pred, 3]`` (m), other joints from the last observed pose."""
    k, batch, frames = pred_m.shape[:3]
    full = past_mm[None, :, -1:].float().expand(k, batch, frames, -1, -1).clone()
    full[:, :, :, list(skeleton.predicted)] = pred_m * _MM_PER_M
    if skeleton.copies:
        full[:, :, :, list(skeleton.copy_destinations())] = full[:, :, :, list(skeleton.copy_sources())]
    return full


def _model_sample_fn(model: nn.Module, skeleton: Skeleton, output_frames: int | None, seed: int) -> SampleFn:
    predicted = list(skeleton.predicted)
    generators: dict[torch.device, torch.Generator] = {}

    def generator_on(device: torch.device) -> torch.Generator:
        if device not in generators:  # one stream per evaluation, seeded on first use
            generators[device] = torch.Generator(device=device).manual_seed(seed)
        return generators[device]

    def sample(past_mm: torch.Tensor, k: int) -> torch.Tensor:
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                window = past_mm[:, :, predicted].float() / _MM_PER_M
                batch, input_len = window.shape[:2]
                generator = generator_on(window.device)
                steps = [model.sample(window, k, generator=generator).float()]  # [K, B, T_step, J, 3]
                produced = steps[0].shape[2]
                # A model with a shorter output is rolled out: each of the K futures continues from its own last
                # T_in frames with one more draw (sample-major rows, as the models' own sample()).
                window = window.repeat(k, 1, 1, 1)
                while output_frames is not None and produced < output_frames:
                    window = torch.cat([window, steps[-1].flatten(0, 1)], dim=1)[:, -input_len:]
                    steps.append(model.sample(window, 1, generator=generator)[0].float().unflatten(0, (k, batch)))
                    produced += steps[-1].shape[2]
                pred_m = torch.cat(steps, dim=2)
                if output_frames is not None:
                    pred_m = pred_m[:, :, :output_frames]
        finally:
            model.train(was_training)
        return _full_skeleton(past_mm, pred_m, skeleton)

    return sample


def make_sample_fn(model: nn.Module, skeleton: Skeleton, output_frames: int | None = None, *,
                   seed: int = 0) -> tuple[SampleFn, str]:
    """Wrap a model (metres, predicted joints) as a full-skeleton millimetre ``sample_fn`` and name its sampler.

    Args:
        model: maps Tensor[B, T_in, J_pred, 3] (m) to Tensor[B, T_step, J_pred, 3] (m); with ``sample(past, k,
            generator=None) -> Tensor[K, B, T_step, J_pred, 3]`` its draws are scored, otherwise its forecast K times.
        skeleton: the data's skeleton; ``skeleton.predicted`` selects the model's joints.
        output_frames: frames to return; a model with fewer is rolled out (each future continued by one draw per
            step, or autoregressively for a deterministic model, as :func:`make_predict_fn`). ``None``: one call.
        seed: seed of the ``torch.Generator`` the draws come from, created on the pasts' device at the first call:
            build a new ``sample_fn`` for every evaluation so that equal seeds give equal figures.

    Returns:
        ``(sample_fn, sampler)``: ``sample_fn(past_mm: Tensor[B, T_in, J_full, 3], k) -> Tensor[k, B, T_out,
        J_full, 3]`` (float32, mm) and one of :data:`MODEL_SAMPLER`, :data:`DETERMINISTIC_SAMPLER`.
    """
    if is_stochastic(model):
        return _model_sample_fn(model, skeleton, output_frames, seed), MODEL_SAMPLER
    return deterministic_sample_fn(make_predict_fn(model, skeleton, output_frames)), DETERMINISTIC_SAMPLER


def check_stochastic_loader(protocol: StochasticProtocol) -> None:
    """Fail early, in one line, when the protocol's dataset has no forecasting loader at its frame rate and skeleton.

    The protocol's own dataset must be registered for the forecasting task at ``protocol.fps`` on
    ``protocol.skeleton``: another dataset at the same rate and skeleton is different data (``h36m-expmap17`` is
    not DLow's ``h36m-npz``), with a protocol of its own.

    Raises:
        ValueError: the protocol's dataset is not such an entry (the case of ``h36m-stochastic-25-100``, whose
            ``h36m-npz`` entry is the lifting task's loader); the message names the protocols that do have data.
    """
    entry = DATASETS.get(protocol.dataset)
    if (entry is not None and entry.task == "forecasting" and entry.skeleton == protocol.skeleton
            and abs(float(entry.fps) - protocol.fps) < 1e-6):
        return
    have = f"; '{protocol.dataset}' is registered for the {entry.task} task only" if (
        entry is not None and entry.task != "forecasting") else ""
    usable = [p.name for p in PROTOCOLS.values()
              if isinstance(p, StochasticProtocol) and p.name != protocol.name and p.skeleton == protocol.skeleton
              and abs(p.fps - protocol.fps) < 1e-6 and p.dataset in DATASETS
              and DATASETS[p.dataset].task == "forecasting"]
    alternative = f"; at this frame rate and skeleton, with a data loader: {', '.join(usable)}" if usable else ""
    raise ValueError(f"protocol {protocol.name!r} needs {protocol.dataset} motion as a forecasting MotionSet at "
                     f"{protocol.fps:g} Hz on the {protocol.skeleton} skeleton, and no data loader provides one yet"
                     f"{have} (see docs/stochastic.md, 'What the data layer provides'){alternative}")
