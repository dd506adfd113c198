"""The training engine: ``fit(cfg) -> RunResult``.

One explicit loop: data lives on the device and batches are gathered by index; the task's loss runs the model
under autocast and computes the loss in float32; scaled backward, unscale, clip, step, schedule by update count,
log. Checkpoints hold everything for an exact resume (counters, RNG states; the epoch order and the augmentation
draws are pure functions of the seed and counters). Under ``torchrun`` the model is wrapped in DDP, every rank
takes its own slice of each global batch, losses are all-reduced and rank 0 writes. Per-epoch reporting beyond
the trackers (sweep pruning, for example) goes through ``callbacks``.
"""

from __future__ import annotations

import contextlib
import math
import resource
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from crisscross.config.schema import ExperimentConfig
from crisscross.models.registry import count_parameters
from crisscross.runs.checkpoint import load_model_from_checkpoint
from crisscross.runs.folders import CONFIG_FILE, EVAL_FILE, checkpoint_path, update_status, write_json
from crisscross.runtime import distributed_info
from crisscross.training.batches import epoch_permutation, step_generator
from crisscross.training.console import Console
from crisscross.training.setup import Session, setup

__all__ = ["EpochCallback", "RunResult", "TrainingDiverged", "fit", "metric_at", "peak_memory_mb", "train_step"]

#: Called on rank 0 after each epoch's row is logged: ``callback(epoch, row)``. ``None`` goes on; a string stops
#: the run after its checkpoint and becomes its status (e.g. ``"pruned"``).
EpochCallback = Callable[[int, dict[str, Any]], "str | None"]


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class RunResult:
    """What a finished run produced."""

    run_dir: Path
    best_metric: float
    epochs: int
    steps: int
    train_time_s: float
    eval: dict[str, Any] = field(default_factory=dict)
    status: str = "completed"
    stopped_by: str | None = None  # epochs, max_steps, early_stop or time_budget (completed training runs)
    config: ExperimentConfig | None = None  # the run's config (read from the checkpoint when resumed)
    stop_signal: int | None = None  # the signal (SIGINT, SIGTERM) that stopped an interrupted run


@dataclass
class _Stop:
    """Requests to stop from outside the loop: a signal, a callback's status, or a test's step limit."""

    signal: int | None = None
    status: str | None = None
    after_steps: int | None = None


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA, else the process's peak resident set size (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def metric_at(result: dict[str, Any], path: str) -> float:
    """Look up a dotted path such as ``mpjpe22_mm.mean.avg`` in an evaluation result."""
    node: Any = result
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"metric {path!r} not in evaluation result (have: {', '.join(result)})")
        node = node[part]
    return float(node)


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               batch: torch.Tensor, loss_fn: Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
               clip_grad_norm: float | None = None) -> torch.Tensor:
    """One optimizer update on ``batch``; ``loss_fn(model, batch) -> (loss, terms)``; returns the detached terms."""
    loss, terms = loss_fn(model, batch)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return terms


def _agreed(flag: bool, s: Session) -> bool:
    """Rank 0's view of ``flag`` on every rank: ranks' clocks and callbacks differ, they must stop together."""
    if s.world == 1:
        return flag
    value = torch.tensor([float(flag)], device=s.device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def _stop_rule(s: Session, stop: _Stop, epoch_done: bool) -> tuple[str, str | None] | None:
    """``(status, stopped_by)`` when training must stop now, else ``None``; the one place that decides.

    Checked after every update (only outside requests end an epoch early) and at every epoch end, where the run
    has just been evaluated and checkpointed.
    """
    st, train = s.state, s.cfg.train
    if stop.signal is not None or stop.status is not None:
        return stop.status or "interrupted", None
    if stop.after_steps is not None and stop.after_steps <= st.step < s.total_steps:
        return "interrupted", None
    if not epoch_done:
        return None
    if train.early_stop_patience is not None and st.bad_epochs >= train.early_stop_patience:
        return "completed", "early_stop"
    if st.epoch >= train.epochs:
        return "completed", "epochs"
    # At epoch ends only, so the run ends evaluated and checkpointed; it may overrun by one epoch. The schedule
    # still spans train.epochs (the learning rate has not fully decayed at a budget stop).
    if _agreed(train.time_budget_s is not None and st.train_time_s >= train.time_budget_s, s):
        return "completed", "time_budget"
    if st.step >= s.total_steps:
        return "completed", "max_steps"
    return None


def _log_step(s: Session, terms: torch.Tensor, lr: float) -> dict[str, float]:
    values = terms.tolist()
    if not math.isfinite(values[0]):
        raise TrainingDiverged(f"training loss is {values[0]} at step {s.state.step} (lr {lr:.3g})")
    named = s.task.loss_log(values)
    if s.tracker is not None:  # no wall time here: every tracker stamps its points, the epoch row holds time/wall_s
        s.tracker.log({"train/loss": values[0], **{f"train/{k}": v for k, v in named.items()}, "train/lr": lr},
                      s.state.step)
    return named


def _run_epoch(s: Session, stop: _Stop, start_wall: float, console: Console) -> tuple[torch.Tensor, int]:
    """Updates until the epoch ends or a stop is requested: ``(summed loss terms, updates done)``."""
    cfg, st = s.cfg, s.state
    perm = epoch_permutation(len(s.bank), cfg.seed, st.epoch, s.device)
    term_sum = torch.zeros(len(s.task.loss_term_names), device=s.device)
    done = 0
    every_s, last_save = cfg.train.checkpoint_every_s, time.perf_counter()
    while st.step_in_epoch < s.steps_per_epoch and st.step < s.total_steps:
        first = (st.step_in_epoch * s.world + s.rank) * cfg.train.batch_size
        batch = s.bank.batch(perm[first:first + cfg.train.batch_size], cfg.data.augment,
                             step_generator(cfg.seed, st.step, s.device))
        lr = s.set_lr()
        terms = train_step(s.train_model, s.optimizer, s.scaler, batch, s.loss_fn, cfg.optim.clip_grad_norm)
        if s.ema is not None:
            s.ema.update_parameters(s.model)
        term_sum += terms
        done, st.step, st.step_in_epoch = done + 1, st.step + 1, st.step_in_epoch + 1
        named = None
        if st.step % cfg.train.log_every_steps == 0 or st.step_in_epoch == s.steps_per_epoch:
            named = _log_step(s, terms, lr)
        console.update(st.step, st.epoch, named)
        if _stop_rule(s, stop, epoch_done=False) is not None:
            break
        if every_s is not None and time.perf_counter() - last_save >= every_s \
                and st.step_in_epoch < s.steps_per_epoch:  # a kill -9 loses at most every_s of work
            st.train_time_s = time.perf_counter() - start_wall
            s.save("last")
            last_save = time.perf_counter()
    return term_sum, done


def _end_epoch(s: Session, term_sum: torch.Tensor, done: int, epoch_time: float,
               callbacks: Sequence[EpochCallback], stop: _Stop, console: Console) -> None:
    """Average the loss terms over ranks, validate, keep the best checkpoint, log, checkpoint, run callbacks."""
    st, cfg = s.state, s.cfg
    if s.world > 1:
        dist.all_reduce(term_sum)
    mean = (term_sum / max(1, done * s.world)).tolist()
    if not math.isfinite(mean[0]):
        raise TrainingDiverged(f"training loss is {mean[0]} in epoch {st.epoch + 1}")
    st.epoch, st.step_in_epoch = st.epoch + 1, 0
    row: dict[str, Any] = {"epoch": st.epoch, "train/epoch_loss": mean[0],
                           **{f"train/epoch_{k}": v for k, v in s.task.loss_log(mean).items()},
                           "time/epoch_s": epoch_time,
                           "time/samples_per_s": done * cfg.train.batch_size * s.world / epoch_time,
                           "time/wall_s": st.train_time_s, "memory/peak_mb": peak_memory_mb(s.device)}
    if st.epoch % cfg.train.eval_every_epochs == 0 or st.epoch == cfg.train.epochs:
        val = s.task.evaluate(s.eval_model(), s.val_set, s.protocol, device=s.device, batch_size=cfg.eval.batch_size)
        current = metric_at(val, s.select_metric)
        row.update({f"val/{k}": v for k, v in s.task.validation_row(val).items()})
        row[s.validation_key] = current  # the task's own figure, or a configured path under its own name
        if current < st.best_metric:
            st.best_metric, st.best_epoch, st.bad_epochs = current, st.epoch, 0
            s.save("best")
        else:
            st.bad_epochs += 1
    if s.tracker is not None:
        s.tracker.log(row, st.step)
    console.epoch_line(row, metric_key=s.validation_key, best=st.best_metric, best_epoch=st.best_epoch)
    s.save("last")
    statuses = [status for cb in callbacks if (status := cb(st.epoch, row)) is not None] if s.is_main else []
    if _agreed(bool(statuses), s):
        stop.status = statuses[0] if statuses else "stopped"


def _train(s: Session, stop: _Stop, callbacks: Sequence[EpochCallback], console: Console) -> tuple[str, str | None]:
    """Epochs until the stop rule ends the run: ``(status, stopped_by)``."""
    if not s.trainable:
        return "completed", None
    s.model.train()
    start_wall = time.perf_counter() - s.state.train_time_s
    while True:
        epoch_t0 = time.perf_counter()
        term_sum, done = _run_epoch(s, stop, start_wall, console)
        s.state.train_time_s = time.perf_counter() - start_wall
        if s.state.step_in_epoch < s.steps_per_epoch and (ended := _stop_rule(s, stop, epoch_done=False)):
            s.save("last")  # stopped inside an epoch: checkpoint where it stopped
            return ended
        _end_epoch(s, term_sum, done, time.perf_counter() - epoch_t0, callbacks, stop, console)
        if ended := _stop_rule(s, stop, epoch_done=True):
            return ended


def _finish(s: Session, status: str, stopped_by: str | None) -> RunResult:
    """Evaluate the best checkpoint of a completed run, write ``eval.json`` and the final status."""
    st, d = s.state, s.cfg.data
    result = RunResult(run_dir=s.run_dir, best_metric=st.best_metric, epochs=st.epoch, steps=st.step,
                       train_time_s=st.train_time_s, status=status, stopped_by=stopped_by, config=s.cfg)
    if status == "completed" and s.is_main:
        best = checkpoint_path(s.run_dir, "best")
        final_model = load_model_from_checkpoint(best, s.device)[0] if s.trainable and best.exists() \
            else s.eval_model()
        result.eval = s.task.evaluate(final_model, s.val_set, s.protocol, device=s.device,
                                      batch_size=s.cfg.eval.batch_size)
        result.eval.update(split=d.val_split, dataset=d.dataset, model=s.cfg.model.name,
                           checkpoint="checkpoints/best.pt" if s.trainable else None,
                           parameters=count_parameters(s.model), train_time_s=st.train_time_s,
                           best_epoch=st.best_epoch, steps=st.step)
        write_json(s.run_dir / EVAL_FILE, result.eval)
        if s.tracker is not None:
            files = {"best": best if best.exists() else None, "eval": s.run_dir / EVAL_FILE,
                     "config": s.run_dir / CONFIG_FILE}
            s.tracker.finish({f"final/{k}": v for k, v in s.task.validation_row(result.eval).items()}, st.step,
                             {name: path for name, path in files.items() if path is not None})
    if s.is_main:
        update_status(s.run_dir, status, step=st.step, epoch=st.epoch, train_time_s=st.train_time_s,
                      **({"stopped_by": stopped_by} if stopped_by else {}))
    if s.tracker is not None:
        s.tracker.close(status)
    if s.world > 1 and dist.is_initialized():
        dist.barrier()
    return result


@contextlib.contextmanager
def _stop_requests(stop: _Stop, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop.signal`` instead of killing the process: the loop finishes its step, checkpoints
    and stops. Installed before any set-up work so that a stop request during data loading is not lost either.
    """

    def on_signal(signum, frame):
        stop.signal = signum

    old_handlers = {}
    if enabled:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not in the main thread
                old_handlers[sig] = signal.signal(sig, on_signal)
    try:
        yield
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def fit(cfg: ExperimentConfig | None, *, run_dir: str | Path | None = None, resume: str | Path | None = None,
        resume_overrides: Sequence[str] = (), stop_after_steps: int | None = None,
        callbacks: Sequence[EpochCallback] = (), verbosity: str = "normal") -> RunResult:
    """Train ``cfg`` in a new run folder, or continue the run folder ``resume`` from its last checkpoint.

    Args:
        cfg: the experiment; ignored in favour of the checkpoint's config when resuming.
        run_dir: use this (new, empty) folder instead of creating ``track.root/<name>/<stamp>``.
        resume: a run folder (or its ``last.pt``) to continue exactly where it stopped.
        resume_overrides: ``KEY=VALUE`` changes of the resumed run's length (``train.epochs``, ``train.max_steps``,
            ``train.time_budget_s``, ``train.early_stop_patience``): a completed run goes on training, and the
            updates it adds equal those of a run started with the new length, unless the schedule decays over the
            run's length (then refused).
        stop_after_steps: stop (as if killed, after checkpointing) once this many updates are done;
            used to test exact resume.
        callbacks: called after every epoch (see :data:`EpochCallback`).
        verbosity: what the console shows: ``quiet``, ``normal`` (a line per epoch, a bar on a terminal or a
            progress line every 30 s otherwise) or ``verbose`` (also a line per logged step); see
            :class:`~crisscross.training.console.Console`.

    Returns:
        The run's result; the run folder holds config, environment, metrics, checkpoints and evaluation.
    """
    stop = _Stop(after_steps=stop_after_steps)
    with _stop_requests(stop, enabled=distributed_info()[0] == 0):
        s = setup(cfg, run_dir=run_dir, resume=resume, resume_overrides=resume_overrides)
        console = Console(verbosity=verbosity if s.is_main else "quiet", progress=s.cfg.train.progress,
                          total_steps=s.total_steps, start_step=s.state.step, epochs=s.cfg.train.epochs)
        if s.resumed:
            console.print(f"resumed {s.run_dir} at step {s.state.step}/{s.total_steps} (epoch {s.state.epoch})")
        try:
            status, stopped_by = _train(s, stop, callbacks, console)
        except BaseException as err:
            if s.is_main:
                update_status(s.run_dir, "interrupted" if isinstance(err, KeyboardInterrupt) else "failed",
                              error=f"{type(err).__name__}: {err}", step=s.state.step)
            if s.tracker is not None:
                s.tracker.close("interrupted" if isinstance(err, KeyboardInterrupt) else "failed")
            raise
        finally:
            console.close()
        result = _finish(s, status, stopped_by)
        result.stop_signal = stop.signal
        return result
