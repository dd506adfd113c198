"""Forecasting as a task: the last ``T_in`` frames of a 3D skeleton in, the next ``T_out`` frames out.

A sample is a window ``[T_in + T_out, J, 3]`` of one sequence (metres, root-relative, the skeleton's predicted
joints); the model maps ``past[B, T_in, J, 3]`` to ``future[B, T_out, J, 3]``; the loss is a position loss plus
an optional velocity term and whatever the model adds (``training_outputs``); validation is MPJPE per horizon
under a named protocol (:mod:`crisscross.evaluation.forecasting`). Under a stochastic protocol
(:class:`~crisscross.evaluation.protocols.StochasticProtocol`) any forecaster is scored with DLow's metrics on K
futures per past (:mod:`crisscross.evaluation.stochastic`): a sampling model's draws, or K copies of a
deterministic model's forecast (:mod:`crisscross.tasks.forecasting.sampling`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn as nn

from crisscross.config.schema import ConfigError, DataConfig, TrainConfig
from crisscross.data.datasets import load_motion
from crisscross.data.motion import MotionSet
from crisscross.data.skeleton import skeleton_to_dict
from crisscross.evaluation.forecasting import (
    FULL_JOINTS_KEY,
    PREDICTED_JOINTS_KEY,
    evaluate_forecaster,
    make_predict_fn,
)
from crisscross.evaluation.protocols import (
    ForecastProtocol,
    StochasticProtocol,
    check_protocol_fits,
    default_protocol_name,
    get_protocol,
)
from crisscross.evaluation.stochastic import evaluate_stochastic_protocol
from crisscross.models.registry import build_model
from crisscross.tasks.forecasting.losses import position_loss, velocity_loss
from crisscross.tasks.forecasting.sampling import check_stochastic_loader, make_sample_fn
from crisscross.tasks.forecasting.tables import (
    action_table,
    horizon_table,
    is_stochastic_result,
    stochastic_heading,
    stochastic_horizon_table,
    stochastic_summary_table,
)
from crisscross.tasks.forecasting.windows import WindowBank

__all__ = ["SELECT_METRIC", "VALIDATION_METRIC", "ForecastingTask"]

# The checkpoint-selection metric (a dotted path into an evaluation result) and the per-epoch log key that the
# sweeps, reports and run listings read by default: MPJPE averaged over the predicted joints and all 25 frames.
SELECT_METRIC = f"{PREDICTED_JOINTS_KEY}.mean.avg"
VALIDATION_METRIC = "val/mpjpe22_avg_mm"
_MM_PER_M = 1000.0
# Best-of-K errors of a stochastic result that can select checkpoints (lower is better; APD is a diversity), and
# its per-horizon figures (``<name>.<ms>`` or ``<name>.avg``); each also under ``<name>_mm``.
_STOCHASTIC_SELECTABLE = ("ade", "fde", "mmade", "mmfde")
_STOCHASTIC_BY_HORIZON = ("ade_by_horizon", "fde_by_horizon", "mpjpe_sample_mean_by_horizon",
                          "mpjpe_first_sample_by_horizon")


class ForecastingTask:
    """3D motion forecasting through the task seam (see :mod:`crisscross.tasks.base`)."""

    name = "forecasting"
    description = "3D motion forecasting: the last T_in frames of a skeleton in, the next T_out frames out"
    select_metric = SELECT_METRIC
    validation_metric = VALIDATION_METRIC
    loss_term_names = ("loss", "mpjpe", "velocity")
    baseline_model = "zero-velocity"

    def load_split(self, data: DataConfig, split: str, actions: Sequence[str] | None = None) -> MotionSet:
        """One split of ``data.dataset`` at 25 fps, millimetres (``actions`` overrides ``data.actions``)."""
        return load_motion(data.dataset, split=split, data_dir=data.data_dir, cache_dir=data.cache_dir,
                           actions=data.actions if actions is None else actions)

    def resolve_protocol(self, dataset: str, input_frames: int, output_frames: int,
                         name: str | None = None) -> ForecastProtocol:
        """The named protocol, else the dataset's default for these window lengths; it must fit the model.

        A stochastic protocol must also have a forecasting data loader at its frame rate and skeleton (one line
        naming what is missing otherwise, e.g. for ``h36m-stochastic-25-100``).
        """
        protocol = get_protocol(name or default_protocol_name(dataset, input_frames, output_frames))
        if isinstance(protocol, StochasticProtocol):
            check_stochastic_loader(protocol)
        check_protocol_fits(protocol, input_frames, output_frames)
        return protocol

    def check_select_metric(self, protocol: ForecastProtocol, path: str | None) -> None:
        """Fail before training when validation under ``protocol`` cannot select checkpoints by ``path``.

        ``path`` is ``eval.select_metric`` (``None``: :data:`SELECT_METRIC`). A stochastic protocol's result has no
        MPJPE table, so it needs one of its best-of-K errors named (``ade``, ``fde``, ``mmade``, ``mmfde`` or a
        per-horizon figure such as ``ade_by_horizon.1000``); a deterministic one takes ``mpjpe22_mm`` or
        ``mpjpe32_mm`` paths. Raises :class:`ConfigError` naming ``eval.select_metric``.
        """
        horizons = ("avg", *(str(ms) for ms in protocol.horizons_ms))
        parts = (path or SELECT_METRIC).split(".")
        if isinstance(protocol, StochasticProtocol):
            if path is None:
                raise ConfigError(f"eval.select_metric: protocol {protocol.name} is stochastic, so validation has "
                                  f"no MPJPE table to select checkpoints by; name a best-of-K error "
                                  f"({', '.join(_STOCHASTIC_SELECTABLE)}; e.g. eval.select_metric=ade) or validate "
                                  f"under a deterministic protocol")
            name = parts[0].removesuffix("_mm")
            ok = (len(parts) == 1 and name in _STOCHASTIC_SELECTABLE) or (
                len(parts) == 2 and name in _STOCHASTIC_BY_HORIZON and parts[1] in horizons)
            if not ok:
                raise ConfigError(f"eval.select_metric: {path!r} is no error of a stochastic result under "
                                  f"{protocol.name}; expected one of {', '.join(_STOCHASTIC_SELECTABLE)} or "
                                  f"<{'|'.join(_STOCHASTIC_BY_HORIZON)}>.<{'|'.join(horizons)}>"
                                  + (" (APD is a diversity: higher is not worse)" if name == "apd" else ""))
            return
        ok = parts[0] in (PREDICTED_JOINTS_KEY, FULL_JOINTS_KEY) and (
            (len(parts) == 3 and parts[1] == "mean" and parts[2] in horizons)
            or (len(parts) == 4 and parts[1] == "per_action" and parts[3] in horizons))
        if not ok:
            raise ConfigError(f"eval.select_metric: {path!r} is no figure of a deterministic result under "
                              f"{protocol.name}; expected <{PREDICTED_JOINTS_KEY}|{FULL_JOINTS_KEY}>.mean."
                              f"<{'|'.join(horizons)}> or <...>.per_action.<action>.<avg|ms>, e.g. {SELECT_METRIC}")

    def default_frames(self, dataset: str) -> tuple[int, int]:
        """``(input, output)`` frames of a model evaluated without a protocol: the literature's 10 -> 25."""
        return 10, 25

    def build_model(self, name: str, args: Mapping[str, Any], dataset: MotionSet, input_frames: int,
                    output_frames: int) -> nn.Module:
        """A registry model for the dataset's predicted joints."""
        return build_model(name, dict(args), dataset.skeleton, input_frames, output_frames)

    def sample_bank(self, dataset: MotionSet, data: DataConfig, device: torch.device) -> WindowBank:
        """Every training window of ``T_in + T_out`` frames (stride ``data.train_stride``), resident on ``device``."""
        return WindowBank.from_motion(dataset, data.input_frames + data.output_frames, data.train_stride, device)

    def training_loss(self, model: nn.Module, batch: torch.Tensor, data: DataConfig, train: TrainConfig,
                      forward_context: Callable[[], AbstractContextManager]) -> tuple[torch.Tensor, torch.Tensor]:
        """The loss of one batch ``[B, T_in + T_out, J, 3]`` and its detached terms ``[loss, position, velocity]``.

        The model runs under ``forward_context`` (the engine's autocast and attention kernel); the loss is
        computed outside it, in float32.
        """
        past, future = batch[:, :data.input_frames], batch[:, data.input_frames:]
        with forward_context():
            # Models with teacher forcing or auxiliary terms expose training_outputs (DDP wrappers forward it).
            training_outputs = getattr(model, "training_outputs", None)
            pred, aux = training_outputs(past, future) if training_outputs is not None else (model(past), {})
        weights = None if train.frame_weights is None else torch.tensor(train.frame_weights, device=pred.device)
        pos = position_loss(train.loss, pred, future, weights)
        vel = (velocity_loss(pred, future, past[:, -1:], weights) if train.velocity_loss_weight > 0
               else pos.new_zeros(()))
        extra = sum((v.float() for v in aux.values()), pos.new_zeros(()))
        loss = pos + train.velocity_loss_weight * vel + extra
        return loss, torch.stack([loss.detach(), pos.detach(), vel.detach()])

    def loss_log(self, terms: Sequence[float]) -> dict[str, float]:
        """Named figures of the loss terms for logs: the position term as MPJPE in millimetres."""
        return {"mpjpe_mm": float(terms[1]) * _MM_PER_M}

    def evaluate(self, model: nn.Module, dataset: MotionSet, protocol: ForecastProtocol, *,
                 device: torch.device | str, batch_size: int, actions: Sequence[str] | None = None,
                 samples: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """The model's MPJPE per horizon and action on ``protocol``'s windows (restores its train/eval mode).

        Under a :class:`StochasticProtocol` the model is scored with DLow's metrics instead
        (:meth:`evaluate_stochastic`); ``samples`` (K, default the protocol's) and ``seed`` (default 0) apply to
        stochastic protocols only.
        """
        if isinstance(protocol, StochasticProtocol):
            return self.evaluate_stochastic(model, dataset, protocol, device=device, batch_size=batch_size,
                                            actions=actions, samples=samples, seed=0 if seed is None else seed)
        if samples is not None or seed is not None:
            raise ValueError(f"samples (K) and seed apply to stochastic protocols only (e.g. h36m-stochastic-10-25), "
                             f"not to {protocol.name}")
        was_training = model.training
        model.eval()
        try:
            predict = make_predict_fn(model, dataset.skeleton, protocol.output_frames)
            return evaluate_forecaster(predict, dataset, protocol, device=device, batch_size=batch_size,
                                       actions=actions)
        finally:
            model.train(was_training)

    def evaluate_stochastic(self, model: nn.Module, dataset: MotionSet, protocol: StochasticProtocol, *,
                            device: torch.device | str, batch_size: int, actions: Sequence[str] | None = None,
                            samples: int | None = None, seed: int = 0) -> dict[str, Any]:
        """DLow's metrics of K futures per past on ``protocol``'s windows (restores the model's train/eval mode).

        A model with ``sample`` (registry ``stochastic=True``) is sampled in eval mode from a ``torch.Generator``
        on the device seeded with ``seed``; any other model is scored as K copies of its forecast (APD 0). Both go
        through the unit conversion and joint filling of the deterministic path
        (:func:`~crisscross.tasks.forecasting.sampling.make_sample_fn`). Each call of the model sees
        ``max(1, batch_size // K)`` windows, i.e. about ``batch_size`` futures; the figures are the same on every
        call for a given seed, K, batch size and device.

        Returns:
            The dict of :func:`~crisscross.evaluation.stochastic.evaluate_stochastic_protocol` plus ``evaluation``
            (``"stochastic"``), ``sampler``, ``k_protocol`` (the protocol's K; ``k`` is the K used),
            ``k_overridden``, ``protocol_dataset``, ``window_rule``, ``batch_windows`` and
            ``multimodal_threshold_mm``.
        """
        k = protocol.samples if samples is None else int(samples)
        if k < 1:
            raise ValueError(f"samples (K) must be >= 1, got {k}")
        if actions is not None:
            dataset = dataset.subset(actions=actions)
        windows_per_call = max(1, batch_size // k)
        was_training = model.training
        model.eval()
        try:
            sample_fn, sampler = make_sample_fn(model, dataset.skeleton, protocol.output_frames, seed=seed)
            result = evaluate_stochastic_protocol(sample_fn, dataset, protocol, seed=seed,
                                                  batch_size=windows_per_call, device=device, samples=k)
        finally:
            model.train(was_training)
        result.update(evaluation="stochastic", sampler=sampler, k_protocol=protocol.samples,
                      k_overridden=k != protocol.samples, protocol_dataset=protocol.dataset,
                      window_rule=protocol.window_rule, batch_windows=windows_per_call,
                      multimodal_threshold_mm=protocol.multimodal_threshold_mm)
        return result

    def validation_row(self, result: Mapping[str, Any]) -> dict[str, float]:
        """The figures logged after each validation, keyed without the ``val/`` prefix: MPJPE over the predicted
        (22) and all (32) joints, averaged over the output frames and at each horizon (``mpjpe22_400ms_mm``); for a
        stochastic result APD, ADE, FDE, MMADE, MMFDE and the MPJPE averages of the mean and first sample."""
        row: dict[str, float] = {}
        if is_stochastic_result(result):  # APD, ADE, FDE, MMADE, MMFDE and the two MPJPE averages, in mm
            row.update({f"{name}_mm": result[f"{name}_mm"] for name in ("apd", *_STOCHASTIC_SELECTABLE)})
            row["mpjpe_sample_mean_avg_mm"] = result["mpjpe_sample_mean_by_horizon_mm"]["avg"]
            row["mpjpe_first_sample_avg_mm"] = result["mpjpe_first_sample_by_horizon_mm"]["avg"]
            return row
        for key, name in ((PREDICTED_JOINTS_KEY, "mpjpe22"), (FULL_JOINTS_KEY, "mpjpe32")):
            mean = result[key]["mean"]
            row[f"{name}_avg_mm"] = mean["avg"]
            row.update({f"{name}_{horizon}ms_mm": value for horizon, value in mean.items() if horizon != "avg"})
        return row

    def checkpoint_meta(self, dataset: MotionSet, data: DataConfig, protocol: ForecastProtocol) -> dict[str, Any]:
        """What a checkpoint records to rebuild and evaluate the model without its config."""
        skeleton = dataset.skeleton
        return {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
                "predicted_joints": list(skeleton.predicted), "fps": float(dataset.fps),
                "input_frames": data.input_frames, "output_frames": data.output_frames,
                "protocol": protocol.name, "units": "metres in, metres out (root-relative)"}

    def results_table(self, results: Mapping[str, Mapping[str, Any]]) -> str:
        """A heading line and one row per labelled result: MPJPE per horizon over the predicted joints.

        Stochastic results (all of them, or none): the heading lines of the first, DLow's figures side by side and
        the best-of-K ADE per horizon, one row per result.
        """
        first = next(iter(results.values()))
        kinds = {is_stochastic_result(r) for r in results.values()}
        if len(kinds) > 1:
            raise ValueError("cannot tabulate stochastic and deterministic results together; score the deterministic "
                             "model under the same stochastic protocol (K copies of its forecast)")
        if is_stochastic_result(first):
            lines = [f"DLow's metrics (mm) on {first['dataset']} / {first['split']}, protocol {first['protocol']}, "
                     f"{first['num_windows']} windows, seed {first['seed']}; best of K per row (APD 0 for a "
                     "deterministic model)", *stochastic_heading(first, sampler=False)[1:]]
            return "\n".join([*lines, stochastic_summary_table(results), "",
                              stochastic_horizon_table(results, rows=("ade_by_horizon_mm",))])
        heading = (f"MPJPE (mm) on {first['dataset']} / {first['split']}, protocol {first['protocol']}, over the "
                   f"{first['joint_counts'][PREDICTED_JOINTS_KEY]} predicted joints; {first['num_windows']} windows")
        return heading + "\n" + horizon_table(results, PREDICTED_JOINTS_KEY)

    def report(self, result: Mapping[str, Any], label: str, *, per_action: bool = False,
               joints: str = "both") -> str:
        """The text ``crisscross eval`` prints: per-horizon tables for ``joints`` (22, 32 or both averagings).

        A stochastic result prints its heading lines, DLow's figures (APD, ADE, FDE, MMADE, MMFDE) and the
        per-horizon best-of-K ADE and FDE and MPJPE of the mean and first sample; ``joints`` does not apply (the
        protocol's scored joints are used) and there are no per-action figures (DLow averages over windows).
        """
        if is_stochastic_result(result):
            return self._stochastic_report(result, label, per_action=per_action)
        lines = [f"{label} on {result['dataset']} / {result['split']}, protocol {result['protocol']}, "
                 f"{result['num_windows']} windows"]
        keys = {"22": [PREDICTED_JOINTS_KEY], "32": [FULL_JOINTS_KEY],
                "both": [PREDICTED_JOINTS_KEY, FULL_JOINTS_KEY]}[joints]
        for key in keys:
            what = ("over the predicted joints" if key == PREDICTED_JOINTS_KEY else
                    "over all joints, copied and constant joints included (the literature's averaging)")
            lines += ["", f"MPJPE (mm) {what}, {result['joint_counts'][key]} joints",
                      horizon_table({label: result}, key)]
            if per_action:
                lines += ["", action_table(result, key)]
        return "\n".join(lines)

    def _stochastic_report(self, result: Mapping[str, Any], label: str, *, per_action: bool) -> str:
        lines = stochastic_heading(result, label)
        lines += ["", f"DLow's metrics (mm), mean over windows; ADE/FDE/MMADE/MMFDE are the best of K of the frame "
                      f"error (norm of the whole flattened {len(result['scored_joints'])}-joint pose error), not "
                      "MPJPE; the MPJPE columns are comparable with the deterministic tables",
                  stochastic_summary_table({label: result}),
                  "", "Per horizon (mm): best-of-K ADE of the first h frames and FDE at frame h; MPJPE (mean over "
                      "the scored joints) of the mean of the K samples and of the first sample",
                  stochastic_horizon_table({label: result})]
        if per_action:
            lines += ["", "(no per-action figures: the stochastic evaluator averages over windows, as DLow)"]
        return "\n".join(lines)
