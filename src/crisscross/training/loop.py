"""The training engine: ``fit(cfg) -> RunResult``.

One explicit loop (style.md R7): data lives on the device and batches are gathered by index; forward
under autocast, loss in fp32, scaled backward, unscale, clip, step, schedule by update count, log.
Checkpoints hold everything for an exact resume (counters, RNG states; the epoch order and the
augmentation draws are pure functions of the seed and counters). Under ``torchrun`` the model is wrapped
in DDP, every rank takes its own slice of each global batch, losses are all-reduced and rank 0 writes.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm.auto import tqdm

from crisscross.config.load import config_from_dict, config_to_dict, dump_config
from crisscross.config.schema import ExperimentConfig
from crisscross.data.skeleton import skeleton_to_dict
from crisscross.models.registry import count_parameters, create_model, get_model_entry
from crisscross.runtime import capture_environment, distributed_info, seed_everything, select_device
from crisscross.training.batches import WindowBank, epoch_permutation, step_generator
from crisscross.training.checkpoint import (evaluation_weights, load_checkpoint, load_weights_for_finetuning,
                                           save_checkpoint, unwrap_model)
from crisscross.training.losses import position_loss, velocity_loss
from crisscross.training.optim import create_optimizer
from crisscross.training.attention_backend import attention_backend, resolve_attention_backend
from crisscross.training.precision import Precision
from crisscross.training.runs import create_run_dir, update_status, write_json
from crisscross.training.schedule import lr_factor
from crisscross.training.tracking import open_trackers

__all__ = ["fit", "RunResult", "TrainingDiverged", "build_model", "default_run_name", "peak_memory_mb"]


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


@dataclass
class TrainState:
    """Counters saved in every checkpoint."""

    epoch: int = 0
    step_in_epoch: int = 0
    step: int = 0
    best_metric: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    train_time_s: float = 0.0


def _over_time_budget(train_time_s: float, budget_s: float | None, world: int, device: torch.device) -> bool:
    """Whether the cumulative training time has reached ``train.time_budget_s``; every rank takes rank 0's view."""
    if budget_s is None:
        return False
    over = torch.tensor([float(train_time_s >= budget_s)], device=device)
    if world > 1:
        dist.broadcast(over, src=0)  # ranks' clocks differ; they must stop together
    return bool(over.item())


def build_model(name: str, args: dict[str, Any], skeleton: Any, input_frames: int, output_frames: int) -> nn.Module:
    """Create a registry model for ``skeleton``'s predicted joints."""
    return create_model(name, num_joints=len(skeleton.predicted), input_frames=input_frames,
                        output_frames=output_frames, graph_parents=tuple(skeleton.predicted_parents()),
                        body_parts=tuple(skeleton.predicted_body_parts()), **args)


def default_run_name(cfg: ExperimentConfig) -> str:
    """``<dataset>-<model>`` unless ``track.name`` is set."""
    return cfg.track.name or f"{cfg.data.dataset}-{cfg.model.name}"


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated on CUDA, else the process's peak resident set size (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
               precision: Precision, batch: torch.Tensor, input_frames: int, cfg: ExperimentConfig) -> torch.Tensor:
    """One optimizer update on ``batch`` [B, T_in + T_out, J, 3]; returns the detached loss terms [3]."""
    past, future = batch[:, :input_frames], batch[:, input_frames:]
    with precision.autocast(), attention_backend(cfg.train.attention, batch.device.type):
        # Models with teacher forcing or auxiliary terms expose training_outputs (DDP wrappers forward it).
        training_outputs = getattr(model, "training_outputs", None)
        pred, aux = training_outputs(past, future) if training_outputs is not None else (model(past), {})
    pos = position_loss(cfg.train.loss, pred, future)
    vel = velocity_loss(pred, future, past[:, -1:]) if cfg.train.velocity_loss_weight > 0 else pos.new_zeros(())
    extra = sum((v.float() for v in aux.values()), pos.new_zeros(()))
    loss = pos + cfg.train.velocity_loss_weight * vel + extra
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if cfg.optim.clip_grad_norm is not None:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_grad_norm)
    scaler.step(optimizer)
    scaler.update()
    return torch.stack([loss.detach(), pos.detach(), vel.detach()])


class _DDPTrainingOutputs(nn.Module):
    """Routes ``training_outputs`` through ``forward`` so DDP sees it (DDP hooks only wrap ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None, training_outputs: bool = False):
        if training_outputs:
            return self.inner.training_outputs(past, future)
        return self.inner(past)


def _evaluate(model: nn.Module, motion: Any, protocol: Any, device: torch.device, batch_size: int) -> dict:
    from crisscross.evaluation.evaluate import evaluate_forecaster, make_predict_fn

    was_training = model.training
    model.eval()
    try:
        return evaluate_forecaster(make_predict_fn(model, motion.skeleton, protocol.output_frames), motion, protocol,
                                   device=device, batch_size=batch_size)
    finally:
        model.train(was_training)


def metric_at(result: dict[str, Any], path: str) -> float:
    """Look up a dotted path such as ``mpjpe22_mm.avg`` in an evaluation result."""
    node: Any = result
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"metric {path!r} not in evaluation result (have: {', '.join(result)})")
        node = node[part]
    return float(node)


def _checkpoint_payload(model: nn.Module, optimizer, scaler, ema, state: TrainState, cfg: ExperimentConfig,
                        skeleton: Any, fps: float, protocol_name: str) -> dict[str, Any]:
    payload = {
        "model_state": unwrap_model(model).state_dict(),
        "model_name": cfg.model.name,
        "model_args": dict(cfg.model.args),
        "config": config_to_dict(cfg),
        "meta": {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
                 "predicted_joints": list(skeleton.predicted), "fps": float(fps),
                 "input_frames": cfg.data.input_frames, "output_frames": cfg.data.output_frames,
                 "protocol": protocol_name, "units": "metres in, metres out (root-relative)"},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scaler_state": scaler.state_dict() if scaler is not None else None,
        "ema_state": ema.module.state_dict() if ema is not None else None,
        "train_state": dict(vars(state)),
        "rng_cpu": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        payload["rng_cuda"] = torch.cuda.get_rng_state_all()
    return payload


def _setup_distributed(device: torch.device) -> tuple[int, int, int, torch.device]:
    rank, local_rank, world = distributed_info()
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    return rank, local_rank, world, device


@contextlib.contextmanager
def _stop_requests(enabled: bool) -> Iterator[dict[str, int | None]]:
    """SIGINT/SIGTERM set a flag instead of killing the process: the loop finishes its step, checkpoints, stops.

    Installed before any set-up work so that a stop request during data loading is not lost either.
    """
    flag: dict[str, int | None] = {"signal": None}

    def on_signal(signum, frame):
        flag["signal"] = signum

    old_handlers = {}
    if enabled:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                old_handlers[sig] = signal.signal(sig, on_signal)
            except ValueError:  # not in the main thread
                pass
    try:
        yield flag
    finally:
        for sig, handler in old_handlers.items():
            signal.signal(sig, handler)


def fit(cfg: ExperimentConfig, *, run_dir: str | Path | None = None, resume: str | Path | None = None,
        stop_after_steps: int | None = None) -> RunResult:
    """Train ``cfg`` in a new run folder, or continue the run folder ``resume`` from its last checkpoint.

    Args:
        cfg: the experiment; ignored in favour of the checkpoint's config when resuming.
        run_dir: use this (new, empty) folder instead of creating ``track.root/<name>/<stamp>``.
        resume: a run folder (or its ``last.pt``) to continue exactly where it stopped.
        stop_after_steps: stop (as if killed, after checkpointing) once this many updates are done;
            used to test exact resume.

    Returns:
        The run's result; the run folder holds config, environment, metrics, checkpoints and evaluation.
    """
    with _stop_requests(enabled=distributed_info()[0] == 0) as interrupted:
        return _fit(cfg, run_dir=run_dir, resume=resume, stop_after_steps=stop_after_steps, interrupted=interrupted)


def _fit(cfg: ExperimentConfig | None, *, run_dir: str | Path | None, resume: str | Path | None,
         stop_after_steps: int | None, interrupted: dict[str, int | None]) -> RunResult:
    """The body of :func:`fit`; ``interrupted["signal"]`` is set by a stop request."""
    from crisscross.data.datasets import load_motion
    from crisscross.evaluation.protocols import get_protocol
    from crisscross.evaluation.runner import check_protocol_fits, default_protocol_name

    ckpt = None
    if resume is not None:
        resume = Path(resume)
        ckpt_path = resume if resume.is_file() else resume / "checkpoints" / "last.pt"
        ckpt = load_checkpoint(ckpt_path)
        cfg = config_from_dict(ckpt["config"])
        run_dir = ckpt_path.parent.parent

    device = select_device(cfg.train.device)
    rank, _, world, device = _setup_distributed(device)
    is_main = rank == 0
    resolve_attention_backend(cfg.train.attention, device.type)  # fail before loading data, not at step 1
    seed_everything(cfg.seed, cfg.train.deterministic, rank=0)  # same init on every rank; DDP syncs anyway
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.train.tf32
        torch.backends.cudnn.allow_tf32 = cfg.train.tf32

    d = cfg.data
    train_set = load_motion(d.dataset, split=d.train_split, data_dir=d.data_dir, cache_dir=d.cache_dir, actions=d.actions)
    val_set = load_motion(d.dataset, split=d.val_split, data_dir=d.data_dir, cache_dir=d.cache_dir, actions=d.actions)
    protocol = get_protocol(cfg.eval.protocol or default_protocol_name(d.dataset, d.input_frames, d.output_frames))
    check_protocol_fits(protocol, d.input_frames, d.output_frames)
    skeleton = train_set.skeleton

    model = build_model(cfg.model.name, cfg.model.args, skeleton, d.input_frames, d.output_frames).to(device)
    if cfg.train.init_from is not None and ckpt is None:  # a resumed run already holds its own weights
        load_weights_for_finetuning(model, cfg.train.init_from, model_name=cfg.model.name, model_args=cfg.model.args,
                                    predicted_joints=list(skeleton.predicted), input_frames=d.input_frames,
                                    output_frames=d.output_frames)
    trainable = get_model_entry(cfg.model.name).trainable and count_parameters(model) > 0
    precision = Precision(cfg.train.precision, device.type)
    optimizer = create_optimizer(model, cfg.optim) if trainable else None
    scaler = precision.grad_scaler()
    ema = None
    if cfg.train.ema_decay is not None and trainable:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.train.ema_decay))
    state = TrainState()
    if ckpt is not None:
        model.load_state_dict(ckpt["model_state"])
        if optimizer is not None and ckpt.get("optimizer_state"):
            optimizer.load_state_dict(ckpt["optimizer_state"])
        if ckpt.get("scaler_state"):
            scaler.load_state_dict(ckpt["scaler_state"])
        if ema is not None and ckpt.get("ema_state"):
            ema.module.load_state_dict(ckpt["ema_state"])
        state = TrainState(**ckpt["train_state"])
        torch.set_rng_state(ckpt["rng_cpu"])
        if "rng_cuda" in ckpt and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng_cuda"])

    bank = WindowBank.from_motion(train_set, d.input_frames + d.output_frames, d.train_stride, device)
    global_batch = cfg.train.batch_size * world
    steps_per_epoch = max(1, int(len(bank) * cfg.train.epoch_fraction) // global_batch)
    total_steps = cfg.train.epochs * steps_per_epoch
    if cfg.train.max_steps is not None:
        total_steps = min(total_steps, cfg.train.max_steps)

    if is_main:
        if run_dir is None:
            run_dir = create_run_dir(cfg.track.root, default_run_name(cfg))
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        if ckpt is None:
            (run_dir / "config.yaml").write_text(dump_config(cfg))
            env = capture_environment(device)
            env.update(world_size=world, parameters=count_parameters(model), train_windows=len(bank),
                       val_sequences=len(val_set.keys), protocol=protocol.name)
            write_json(run_dir / "env.json", env)
        update_status(run_dir, "running", resumed=ckpt is not None)
    run_dir = Path(run_dir) if run_dir is not None else None
    tracker = open_trackers(run_dir, cfg.track, config_to_dict(cfg)) if is_main else None

    train_model: nn.Module = model
    if world > 1 and trainable:
        wrapped = _DDPTrainingOutputs(model) if hasattr(model, "training_outputs") else model
        train_model = nn.parallel.DistributedDataParallel(wrapped)
        if hasattr(model, "training_outputs"):
            train_model.training_outputs = lambda p, f: train_model(p, f, training_outputs=True)  # type: ignore
    if cfg.train.compile and trainable:
        train_model = torch.compile(train_model, mode="reduce-overhead" if cfg.train.cuda_graphs else None)

    def save(name: str) -> None:
        if is_main and trainable:
            save_checkpoint(run_dir / "checkpoints" / f"{name}.pt", _checkpoint_payload(
                model, optimizer, scaler, ema, state, cfg, skeleton, train_set.fps, protocol.name))

    status = "completed"
    stopped_by = "epochs"
    eval_model = lambda: ema.module if ema is not None else model  # noqa: E731
    start_wall = time.perf_counter() - state.train_time_s
    try:
        model.train()
        while trainable and state.epoch < cfg.train.epochs and state.step < total_steps:
            perm = epoch_permutation(len(bank), cfg.seed, state.epoch, device)
            epoch_t0 = time.perf_counter()
            loss_sum = torch.zeros(3, device=device)
            steps_done = 0
            bar = tqdm(total=steps_per_epoch, initial=state.step_in_epoch, desc=f"epoch {state.epoch + 1}/"
                       f"{cfg.train.epochs}", disable=not (is_main and cfg.train.progress), leave=False, unit="step")
            while state.step_in_epoch < steps_per_epoch and state.step < total_steps:
                first = (state.step_in_epoch * world + rank) * cfg.train.batch_size
                idx = perm[first:first + cfg.train.batch_size]
                batch = bank.batch(idx, d.augment, step_generator(cfg.seed, state.step, device))
                lr = cfg.optim.lr * lr_factor(state.step, total_steps, cfg.sched)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                terms = train_step(train_model, optimizer, scaler, precision, batch, d.input_frames, cfg)
                if ema is not None:
                    ema.update_parameters(model)
                loss_sum += terms
                steps_done += 1
                state.step += 1
                state.step_in_epoch += 1
                bar.update(1)
                if state.step % cfg.train.log_every_steps == 0 or state.step_in_epoch == steps_per_epoch:
                    loss_now = float(terms[0])
                    if not math.isfinite(loss_now):
                        raise TrainingDiverged(f"training loss is {loss_now} at step {state.step} (lr {lr:.3g})")
                    bar.set_postfix(loss_mm=f"{float(terms[1]) * 1000:.1f}")
                    if tracker is not None:
                        tracker.log({"train/loss": loss_now, "train/mpjpe_mm": float(terms[1]) * 1000,
                                     "train/lr": lr, "time/wall_s": time.perf_counter() - start_wall}, state.step)
                if interrupted["signal"] is not None or (stop_after_steps is not None
                                                         and state.step >= stop_after_steps):
                    break
            bar.close()
            state.train_time_s = time.perf_counter() - start_wall
            if interrupted["signal"] is not None or (stop_after_steps is not None and state.step >= stop_after_steps
                                                     and state.step_in_epoch < steps_per_epoch):
                save("last")
                status = "interrupted"
                break
            epoch_time = time.perf_counter() - epoch_t0
            if world > 1:
                dist.all_reduce(loss_sum)
            mean_terms = (loss_sum / max(1, steps_done * world)).tolist()
            if not math.isfinite(mean_terms[0]):
                raise TrainingDiverged(f"training loss is {mean_terms[0]} in epoch {state.epoch + 1}")
            state.epoch += 1
            state.step_in_epoch = 0
            row: dict[str, Any] = {"epoch": state.epoch, "train/epoch_loss": mean_terms[0],
                                   "train/epoch_mpjpe_mm": mean_terms[1] * 1000, "time/epoch_s": epoch_time,
                                   "time/samples_per_s": steps_done * global_batch / epoch_time,
                                   "time/wall_s": state.train_time_s, "memory/peak_mb": peak_memory_mb(device)}
            if state.epoch % cfg.train.eval_every_epochs == 0 or state.epoch == cfg.train.epochs:
                val = _evaluate(eval_model(), val_set, protocol, device, cfg.eval.batch_size)
                current = metric_at(val, cfg.eval.select_metric)
                row.update({"val/" + cfg.eval.select_metric: current, "val/mpjpe22_avg_mm": val["mpjpe22_mm"]["mean"]["avg"],
                            "val/mpjpe32_avg_mm": val["mpjpe32_mm"]["mean"]["avg"]})
                if current < state.best_metric:
                    state.best_metric, state.best_epoch, state.bad_epochs = current, state.epoch, 0
                    save("best")
                else:
                    state.bad_epochs += 1
            if tracker is not None:
                tracker.log(row, state.step)
            save("last")
            if stop_after_steps is not None and state.step >= stop_after_steps and state.step < total_steps:
                status = "interrupted"
                break
            if state.step >= total_steps and state.epoch < cfg.train.epochs:
                stopped_by = "max_steps"
            if cfg.train.early_stop_patience is not None and state.bad_epochs >= cfg.train.early_stop_patience:
                stopped_by = "early_stop"
                break
            if state.epoch < cfg.train.epochs and _over_time_budget(state.train_time_s, cfg.train.time_budget_s, world, device):
                # Checked at epoch ends so the run ends evaluated and checkpointed; it may overrun by one epoch.
                # The schedule still spans train.epochs (the learning rate has not fully decayed at a budget stop).
                stopped_by = "time_budget"
                break
    except BaseException as err:
        if is_main:
            update_status(run_dir, "failed" if not isinstance(err, KeyboardInterrupt) else "interrupted",
                          error=f"{type(err).__name__}: {err}", step=state.step)
        if tracker is not None:
            tracker.close()
        raise

    result = RunResult(run_dir=run_dir, best_metric=state.best_metric, epochs=state.epoch, steps=state.step,
                       train_time_s=state.train_time_s, status=status,
                       stopped_by=stopped_by if status == "completed" and trainable else None, config=cfg)
    if status == "completed" and is_main:
        if trainable and (run_dir / "checkpoints" / "best.pt").exists():
            best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
            final_model = build_model(cfg.model.name, cfg.model.args, skeleton, d.input_frames, d.output_frames)
            final_model.load_state_dict(evaluation_weights(best))
            final_model.to(device)
        else:
            final_model = eval_model()
        result.eval = _evaluate(final_model, val_set, protocol, device, cfg.eval.batch_size)
        result.eval.update(split=d.val_split, dataset=d.dataset, model=cfg.model.name,
                           checkpoint="checkpoints/best.pt" if trainable else None,
                           parameters=count_parameters(model), train_time_s=state.train_time_s,
                           best_epoch=state.best_epoch, steps=state.step)
        write_json(run_dir / "eval.json", result.eval)
    if is_main:
        update_status(run_dir, status, step=state.step, epoch=state.epoch, train_time_s=state.train_time_s,
                      **({"stopped_by": result.stopped_by} if result.stopped_by else {}))
    if tracker is not None:
        tracker.close()
    if world > 1 and dist.is_initialized():
        dist.barrier()
    return result
