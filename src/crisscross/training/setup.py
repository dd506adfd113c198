"""Everything a training run needs before its first step, gathered in one :class:`Session`.

:func:`setup` reads a resumed run's checkpoint (its config wins), joins the process group under ``torchrun``, loads
the task's splits, builds the model, optimizer, scaler and EMA, restores counters and RNG states, opens the run
folder and its trackers, and wraps the model for DDP and ``torch.compile``. The loop in :mod:`.loop` then only
steps, evaluates and checkpoints.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from crisscross.config.load import apply_overrides, config_from_dict, config_to_dict, dump_config, parse_override
from crisscross.config.schema import ConfigError, ExperimentConfig
from crisscross.data.datasets import get_dataset_info
from crisscross.models.registry import count_parameters, get_model_entry
from crisscross.runs.checkpoint import (
    CheckpointError,
    checkpoint_config,
    load_checkpoint,
    load_weights_for_finetuning,
    save_checkpoint,
    unwrap_model,
)
from crisscross.runs.folders import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    ENV_FILE,
    checkpoint_path,
    create_run_dir,
    update_status,
    write_json,
)
from crisscross.runtime import (
    capture_environment,
    configure_cpu_allocator,
    distributed_info,
    seed_everything,
    select_device,
)
from crisscross.tasks.base import SampleBank, Task
from crisscross.tasks.registry import get_task
from crisscross.training.attention_backend import attention_backend, resolve_attention_backend
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import Precision
from crisscross.training.schedule import lr_factor
from crisscross.training.tracking import Tracker, open_trackers

__all__ = ["RESUME_OVERRIDE_KEYS", "ForwardContext", "LossFn", "Session", "TrainState", "default_run_name",
           "engine_loss", "forward_context", "resumed_config", "setup", "task_loss"]

#: What a resumed run may change: how long it runs, nothing that shapes its updates.
RESUME_OVERRIDE_KEYS = ("train.epochs", "train.max_steps", "train.time_budget_s", "train.early_stop_patience")

#: ``loss_fn(model, batch) -> (loss, detached terms)``: the form ``train_step`` takes.
LossFn = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
#: A factory of the context the model's forward runs in (a new context per call).
ForwardContext = Callable[[], contextlib.AbstractContextManager]


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


@dataclass
class Session:
    """A training run's live objects; ``model`` is the plain module, ``train_model`` its DDP/compiled wrapper."""

    cfg: ExperimentConfig
    task: Task
    device: torch.device
    rank: int
    world: int
    train_set: Any
    val_set: Any
    protocol: Any
    bank: SampleBank
    model: nn.Module
    train_model: nn.Module
    optimizer: torch.optim.Optimizer | None
    scaler: torch.amp.GradScaler
    ema: torch.optim.swa_utils.AveragedModel | None
    loss_fn: LossFn
    state: TrainState
    run_dir: Path | None
    tracker: Tracker | None
    steps_per_epoch: int
    total_steps: int
    trainable: bool
    resumed: bool

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the run folder and logs."""
        return self.rank == 0

    @property
    def select_metric(self) -> str:
        """The dotted result path that selects the best checkpoint."""
        return self.cfg.eval.select_metric or self.task.select_metric

    @property
    def validation_key(self) -> str:
        """The per-epoch log key of the selection figure: the task's own name for its default, else ``val/<path>``."""
        custom = self.cfg.eval.select_metric not in (None, self.task.select_metric)
        return f"val/{self.select_metric}" if custom else self.task.validation_metric

    def eval_model(self) -> nn.Module:
        """The weights validation uses: the EMA average when kept, else the model."""
        return self.ema.module if self.ema is not None else self.model

    def set_lr(self) -> float:
        """Set and return the learning rate of the current update (a pure function of the update count)."""
        lr = self.cfg.optim.lr * lr_factor(self.state.step, self.total_steps, self.cfg.sched)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def save(self, name: str) -> None:
        """Write ``checkpoints/<name>.pt`` atomically with everything an exact resume needs (rank 0 only)."""
        if not (self.is_main and self.trainable):
            return
        cfg = self.cfg
        payload = {
            "model_state": unwrap_model(self.model).state_dict(),
            "model_name": cfg.model.name,
            "model_args": dict(cfg.model.args),
            "config": config_to_dict(cfg),
            "meta": self.task.checkpoint_meta(self.train_set, cfg.data, self.protocol),
            "optimizer_state": self.optimizer.state_dict() if self.optimizer is not None else None,
            "scaler_state": self.scaler.state_dict(),
            "ema_state": self.ema.module.state_dict() if self.ema is not None else None,
            # The EMA copies the weights at its first update (count 0) and averages only after it.
            "ema_updates": int(self.ema.n_averaged) if self.ema is not None else None,
            "train_state": dict(vars(self.state)),
            "rng_cpu": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            payload["rng_cuda"] = torch.cuda.get_rng_state_all()
        save_checkpoint(checkpoint_path(self.run_dir, name), payload)


def default_run_name(cfg: ExperimentConfig) -> str:
    """``<dataset>-<model>`` unless ``track.name`` is set."""
    return cfg.track.name or f"{cfg.data.dataset}-{cfg.model.name}"


def forward_context(precision: Precision, attention: str, device_type: str) -> ForwardContext:
    """A factory of the context the model's forward runs in: autocast and the configured attention kernel."""

    def enter() -> contextlib.ExitStack:
        stack = contextlib.ExitStack()
        stack.enter_context(precision.autocast())
        stack.enter_context(attention_backend(attention, device_type))
        return stack

    return enter


def task_loss(cfg: ExperimentConfig) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """``cfg.task``'s ``training_loss`` with ``cfg.data`` and ``cfg.train`` bound; ``forward_context`` still open
    (the profiler binds its own, which opens phase ranges around the engine's)."""
    return partial(get_task(cfg.task).training_loss, data=cfg.data, train=cfg.train)


def engine_loss(cfg: ExperimentConfig, precision: Precision, device_type: str) -> LossFn:
    """The ``loss_fn`` the engine gives ``train_step``; benchmarks and the profiler time exactly this."""
    return partial(task_loss(cfg), forward_context=forward_context(precision, cfg.train.attention, device_type))


class _DDPTrainingOutputs(nn.Module):
    """Routes ``training_outputs`` through ``forward`` so DDP sees it (DDP hooks only wrap ``forward``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, past: torch.Tensor, future: torch.Tensor | None = None, training_outputs: bool = False):
        if training_outputs:
            return self.inner.training_outputs(past, future)
        return self.inner(past)


def resumed_config(cfg: ExperimentConfig, overrides: Sequence[str], run: str | Path) -> ExperimentConfig:
    """A resumed run's own ``cfg`` with its length changed by ``overrides`` (keys of :data:`RESUME_OVERRIDE_KEYS`).

    Raises:
        ConfigError: an override of another key (one line naming it and what may change).
    """
    for text in overrides:
        key = ".".join(parse_override(text)[0])
        if key not in RESUME_OVERRIDE_KEYS:
            raise ConfigError(f"override {text!r}: a resumed run keeps its config; only its length may change "
                              f"({', '.join(RESUME_OVERRIDE_KEYS)}); to change {key}, start a new run with "
                              f"train.init_from={run}")
    return config_from_dict(apply_overrides(config_to_dict(cfg), overrides))


def _total_steps(cfg: ExperimentConfig, steps_per_epoch: int) -> int:
    """The updates a run does: its epochs, capped by ``train.max_steps``."""
    return int(min(cfg.train.epochs * steps_per_epoch, cfg.train.max_steps or math.inf))


def _check_lengthened_schedule(old: ExperimentConfig, new: ExperimentConfig, done: int, steps_per_epoch: int,
                               run: Path) -> int:
    """The new run length in updates. Refused when the run would no longer equal one started with that length: its
    schedule decays over the run's length and gives an update already done another rate, or the run has done more
    updates than the new length allows."""
    before, after = _total_steps(old, steps_per_epoch), _total_steps(new, steps_per_epoch)
    if after < done:
        raise ConfigError(f"--resume {run}: the run has done {done} updates; train.epochs and train.max_steps "
                          f"allow only {after}")
    changed = next((k for k in range(done) if lr_factor(k, before, old.sched) != lr_factor(k, after, new.sched)),
                   None)
    if changed is not None:
        raise ConfigError(f"--resume {run}: sched.name={old.sched.name} decays over the run's length: its {done} "
                          f"updates followed it over {before} updates, and over {after} update {changed} would have "
                          f"had another learning rate; start a new run with train.init_from={run} instead")
    return after


def _read_resume(cfg: ExperimentConfig | None, run_dir: str | Path | None, resume: str | Path | None):
    """``(checkpoint or None, config, run folder)``; a resumed run takes its own config and folder."""
    if resume is None:
        return None, cfg, run_dir
    resume = Path(resume)
    if resume.is_file():
        ckpt = load_checkpoint(resume)
        return ckpt, checkpoint_config(ckpt, resume), resume.parent.parent
    ckpt, path = newest_readable_checkpoint(resume)
    return ckpt, checkpoint_config(ckpt, path), resume


def newest_readable_checkpoint(run_dir: Path) -> tuple[dict[str, Any], Path]:
    """The readable checkpoint of ``run_dir`` with the most updates: ``last.pt``, else ``best.pt`` when ``last.pt``
    is missing or damaged (a crash while the disk was full, a copy cut short). Either resumes exactly: both hold the
    whole training state of their step.

    Raises:
        CheckpointError: ``run_dir`` is no run folder, holds no checkpoint yet (the message says how to start the
            run again) or only unreadable ones (the message names each and why).
    """
    if not (run_dir / CONFIG_FILE).is_file() and not (run_dir / CHECKPOINTS_DIR).is_dir():
        raise CheckpointError(f"--resume {run_dir}: not a run folder (no {CONFIG_FILE}, no {CHECKPOINTS_DIR}/)")
    found, problems = [], []
    for name in ("last", "best"):
        path = checkpoint_path(run_dir, name)
        if not path.is_file():
            continue
        try:
            found.append((load_checkpoint(path), path))
        except CheckpointError as err:
            problems.append(str(err))
    if not found:
        if problems:
            raise CheckpointError(f"--resume {run_dir}: no readable checkpoint: {'; '.join(problems)}")
        raise CheckpointError(f"--resume {run_dir}: the run stopped before its first checkpoint, so there is nothing "
                              f"to resume; start it again: crisscross train --config {run_dir / CONFIG_FILE}")
    return max(found, key=lambda item: int((item[0].get("train_state") or {}).get("step", 0)))


def _configure_process(cfg: ExperimentConfig) -> tuple[torch.device, int, int]:
    """Device, process group, seeds, threads, TF32 and the CPU allocator: ``(device, rank, world)``."""
    device = select_device(cfg.train.device)
    configure_cpu_allocator()  # host memory: also the staging of a GPU run's batches
    rank, local_rank, world = distributed_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    resolve_attention_backend(cfg.train.attention, device.type)  # fail before loading data, not at step 1
    seed_everything(cfg.seed, cfg.train.deterministic, rank=0)  # same init on every rank; DDP syncs anyway
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = cfg.train.tf32
        torch.backends.cudnn.allow_tf32 = cfg.train.tf32
    return device, rank, world


def _restore(ckpt: dict[str, Any], model: nn.Module, optimizer, scaler, ema) -> TrainState:
    """Load a resumed run's weights, optimizer, scaler, EMA and RNG states; return its counters."""
    model.load_state_dict(ckpt["model_state"])
    if optimizer is not None and ckpt.get("optimizer_state"):
        optimizer.load_state_dict(ckpt["optimizer_state"])
    if ckpt.get("scaler_state"):
        scaler.load_state_dict(ckpt["scaler_state"])
    if ema is not None and ckpt.get("ema_state"):
        ema.module.load_state_dict(ckpt["ema_state"])
        # Without its count the EMA would restart as a copy of the raw weights at the next update. Checkpoints
        # written before the count was saved updated their EMA once per update, so the step counter stands in.
        updates = ckpt.get("ema_updates")
        ema.n_averaged.fill_(int(updates if updates is not None else ckpt["train_state"]["step"]))
    torch.set_rng_state(ckpt["rng_cpu"])
    if "rng_cuda" in ckpt and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(ckpt["rng_cuda"])
    return TrainState(**ckpt["train_state"])


def _open_run_dir(cfg: ExperimentConfig, run_dir: str | Path | None, env: Callable[[], dict[str, Any]] | None) -> Path:
    """Create the run folder with its config and environment (``env``), or reopen a resumed one (``env`` None)."""
    run_dir = Path(run_dir) if run_dir is not None else create_run_dir(cfg.track.root, default_run_name(cfg))
    run_dir.mkdir(parents=True, exist_ok=True)
    if env is not None:
        (run_dir / CONFIG_FILE).write_text(dump_config(cfg))
        write_json(run_dir / ENV_FILE, env())
    update_status(run_dir, "running", resumed=env is None)
    return run_dir


def _wrap(model: nn.Module, cfg: ExperimentConfig, world: int, trainable: bool) -> nn.Module:
    """DDP across ranks (routing ``training_outputs`` through ``forward``), then ``torch.compile`` if asked."""
    train_model = model
    if world > 1 and trainable:
        has_outputs = hasattr(model, "training_outputs")
        train_model = nn.parallel.DistributedDataParallel(_DDPTrainingOutputs(model) if has_outputs else model)
        if has_outputs:
            train_model.training_outputs = lambda p, f: train_model(p, f, training_outputs=True)  # type: ignore
    if cfg.train.compile and trainable:
        train_model = torch.compile(train_model, mode="reduce-overhead" if cfg.train.cuda_graphs else None)
    return train_model


def setup(cfg: ExperimentConfig | None, *, run_dir: str | Path | None = None,
          resume: str | Path | None = None, resume_overrides: Sequence[str] = ()) -> Session:
    """Prepare a new run from ``cfg``, or the run folder ``resume`` from its last checkpoint, its length changed by
    ``resume_overrides`` (see :func:`resumed_config`)."""
    ckpt, cfg, run_dir = _read_resume(cfg, run_dir, resume)
    own_cfg = cfg
    if ckpt is not None and resume_overrides:
        cfg = resumed_config(cfg, resume_overrides, run_dir)
    device, rank, world = _configure_process(cfg)
    task, d = get_task(cfg.task), cfg.data
    get_dataset_info(d.dataset)  # an unknown dataset is named as such, before a protocol is looked up for it
    protocol = task.resolve_protocol(d.dataset, d.input_frames, d.output_frames, cfg.eval.protocol)
    task.check_select_metric(protocol, cfg.eval.select_metric)  # before the data load, not after an epoch
    train_set, val_set = task.load_split(d, d.train_split), task.load_split(d, d.val_split)
    model = task.build_model(cfg.model.name, cfg.model.args, train_set, d.input_frames, d.output_frames).to(device)
    if cfg.train.init_from is not None and ckpt is None:  # a resumed run already holds its own weights
        meta = task.checkpoint_meta(train_set, d, protocol)
        load_weights_for_finetuning(model, cfg.train.init_from, model_name=cfg.model.name, model_args=cfg.model.args,
                                    predicted_joints=meta["predicted_joints"], input_frames=d.input_frames,
                                    output_frames=d.output_frames)
    trainable = get_model_entry(cfg.model.name).trainable and count_parameters(model) > 0
    precision = Precision(cfg.train.precision, device.type)
    optimizer = create_optimizer(model, cfg.optim) if trainable else None
    scaler = precision.grad_scaler()
    ema = None
    if cfg.train.ema_decay is not None and trainable:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.train.ema_decay))
    state = _restore(ckpt, model, optimizer, scaler, ema) if ckpt is not None else TrainState()
    bank = task.sample_bank(train_set, d, device)
    steps_per_epoch = max(1, int(len(bank) * cfg.train.epoch_fraction) // (cfg.train.batch_size * world))
    if cfg is not own_cfg:
        total_steps = _check_lengthened_schedule(own_cfg, cfg, state.step, steps_per_epoch, Path(run_dir))
    else:
        total_steps = _total_steps(cfg, steps_per_epoch)
    tracker = None
    if rank == 0:
        def env() -> dict[str, Any]:
            return dict(capture_environment(device), world_size=world, parameters=count_parameters(model),
                        train_windows=len(bank), val_sequences=len(val_set.keys), protocol=protocol.name)

        run_dir = _open_run_dir(cfg, run_dir, env if ckpt is None else None)
        if cfg is not own_cfg:  # the folder's config records the new length; checkpoints carry it from here on
            (run_dir / CONFIG_FILE).write_text(dump_config(cfg))
        tracker = open_trackers(run_dir, cfg.track, config_to_dict(cfg),
                                resume_step=state.step if ckpt is not None else None)
    loss_fn = engine_loss(cfg, precision, device.type)
    return Session(cfg=cfg, task=task, device=device, rank=rank, world=world, train_set=train_set, val_set=val_set,
                   protocol=protocol, bank=bank, model=model, train_model=_wrap(model, cfg, world, trainable),
                   optimizer=optimizer, scaler=scaler, ema=ema, loss_fn=loss_fn, state=state,
                   run_dir=Path(run_dir) if run_dir is not None else None, tracker=tracker,
                   steps_per_epoch=steps_per_epoch, total_steps=total_steps, trainable=trainable,
                   resumed=ckpt is not None)
