"""One training step broken into phases with the PyTorch profiler (``crisscross profile``).

:func:`profiled_train_step` is the engine's ``train_step`` (``training/loop.py``) with a
``torch.profiler.record_function`` range around each phase. Its loss is the engine's own: the task's
``training_loss`` with the engine's forward context (:func:`crisscross.training.setup.task_loss`), handed a forward
context that opens the ``forward`` range around the engine's and the ``loss`` range when the forward ends:

* ``data``: the device-resident ``WindowBank`` gather of the batch by index (plus augmentation when configured);
* ``forward``: the model under autocast and the configured attention kernel (``training_outputs`` when the model
  has it);
* ``loss``: the rest of the task's loss: position loss, optional velocity term and auxiliary terms, in fp32;
* ``backward``: ``zero_grad`` and the (scaled) backward pass;
* ``optimizer``: optional unscale + gradient clipping, ``scaler.step`` and ``scaler.update``.

``tests/unit/benchmarking/test_profile.py`` checks it makes exactly the same update as the engine's step.

Per-phase CPU times come from the profiler's events: the wall span of each phase's range on the calling thread,
averaged over the profiled steps (after untimed warm-up steps). On CUDA the CPU ranges only measure kernel
launches, so the GPU time of each phase is measured as well, with CUDA events recorded on the current stream at the
phase boundaries (backward kernels run on the forward's stream, so stream order attributes every kernel to the phase
that queued it). The whole step is also timed with ``time.perf_counter`` (synchronised on CUDA). The phases are
disjoint sub-ranges of that interval, so their sum is the step time less the Python glue between the ranges
(reported as ``other``); shares are of the measured step, using the CPU times on CPU and the CUDA times on CUDA.
The Chrome trace of the profiled steps is written next to the summary.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tabulate import tabulate
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile, record_function

from crisscross.benchmarking.environment import device_name
from crisscross.benchmarking.timing import summarize_times, synchronize
from crisscross.config.schema import ExperimentConfig
from crisscross.training.batches import epoch_permutation, step_generator
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import Precision
from crisscross.training.setup import ForwardContext, forward_context, task_loss

__all__ = ["PHASES", "PhaseTime", "ProfileResult", "new_profile_dir", "profile_training", "profiled_train_step"]

PHASES: tuple[str, ...] = ("data", "forward", "loss", "backward", "optimizer")
_LABEL = "phase:"


@dataclass(frozen=True)
class PhaseTime:
    """Mean time of one phase per step (ms); ``share`` is its fraction of the measured step time (of the CUDA time
    on CUDA, of the CPU time otherwise)."""

    name: str
    cpu_ms: float
    cuda_ms: float | None
    share: float


@dataclass
class ProfileResult:
    """What :func:`profile_training` measured and wrote."""

    phases: list[PhaseTime]
    step_ms: float
    step_ms_median: float
    steps: int
    warmup: int
    batch_size: int
    device: str
    device_name: str
    precision: str
    out_dir: Path
    trace_path: Path
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def phase_sum_ms(self) -> float:
        """Sum of the phases' times per step (ms): CUDA times on CUDA, CPU times otherwise."""
        return sum(p.cuda_ms if p.cuda_ms is not None else p.cpu_ms for p in self.phases)

    def table(self, tablefmt: str = "github") -> str:
        """Phases with their CPU (and CUDA) ms per step and share of the measured step, plus ``other`` and ``step``."""
        cuda = any(p.cuda_ms is not None for p in self.phases)
        headers = ["phase", "CPU ms/step"] + (["CUDA ms/step"] if cuda else []) + ["share of step"]
        rows = []
        for p in self.phases:
            rows.append([p.name, f"{p.cpu_ms:.3f}"] + ([f"{p.cuda_ms:.3f}"] if cuda else [])
                        + [f"{100 * p.share:.1f}%"])
        other = self.step_ms - self.phase_sum_ms
        other_cells = ["", f"{other:.3f}"] if cuda else [f"{other:.3f}"]
        rows.append(["other (between phases)"] + other_cells + [f"{100 * other / self.step_ms:.1f}%"])
        step_cells = ["", f"{self.step_ms:.3f}"] if cuda else [f"{self.step_ms:.3f}"]
        rows.append(["step (measured wall time)"] + step_cells + ["100.0%"])
        return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out = {k: v for k, v in asdict(self).items() if k not in ("out_dir", "trace_path")}
        out.update(out_dir=str(self.out_dir), trace_path=str(self.trace_path), phase_sum_ms=self.phase_sum_ms)
        return out


def profiled_train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                        next_batch: Callable[[], torch.Tensor],
                        task_loss: Callable[..., tuple[torch.Tensor, torch.Tensor]], forward_context: ForwardContext,
                        clip_grad_norm: float | None = None, cuda_events: list[Any] | None = None) -> torch.Tensor:
    """The engine's ``train_step`` with a ``record_function`` range per phase (see the module docstring).

    Args:
        model: the model being trained (compiled or DDP-wrapped models work as in the engine).
        optimizer: its optimizer.
        scaler: gradient scaler of the precision (enabled for fp16 only).
        next_batch: returns the step's batch Tensor[B, T_in + T_out, J, 3] (metres); called inside ``data``.
        task_loss: the task's training loss with its config bound, ``task_loss(model, batch, forward_context=...)
            -> (loss, terms)`` (:func:`~crisscross.training.setup.task_loss`).
        forward_context: the engine's forward-context factory (autocast and attention kernel,
            :func:`~crisscross.training.setup.forward_context`).
        clip_grad_norm: the engine's gradient clipping (``optim.clip_grad_norm``).
        cuda_events: on CUDA, ``len(PHASES) + 1`` timing events recorded at the phase boundaries.

    Returns:
        The detached loss terms the task's loss returns (as the engine's ``train_step``).
    """
    marks = iter(cuda_events or ())

    def mark() -> None:
        event = next(marks, None)
        if event is not None:
            event.record()

    loss_range = contextlib.ExitStack()

    @contextlib.contextmanager
    def phased_forward() -> Iterator[None]:
        # The task's loss runs the model inside this context and computes the loss after it: the forward range
        # spans the engine's context, and the loss range opens as it closes (and closes when the loss returns).
        mark()
        with record_function(_LABEL + "forward"), forward_context():
            yield
        mark()
        loss_range.enter_context(record_function(_LABEL + "loss"))

    mark()
    with record_function(_LABEL + "data"):
        batch = next_batch()
    with loss_range:
        loss, terms = task_loss(model, batch, forward_context=phased_forward)
    mark()
    with record_function(_LABEL + "backward"):
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
    mark()
    with record_function(_LABEL + "optimizer"):
        if clip_grad_norm is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    mark()
    return terms


def new_profile_dir(root: str | Path) -> Path:
    """Create and return a new ``root/profile-YYYYmmdd-HHMMSS[-N]`` folder (never an existing one)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = root / (f"profile-{stamp}" if n == 1 else f"profile-{stamp}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a new profile folder under {root}")


def _phase_cpu_ms(events: Any, steps: int) -> dict[str, float]:
    """Mean CPU wall time per step (ms) of each phase range in the profiler ``events``."""
    total_us = {p: 0.0 for p in PHASES}
    for evt in events:
        if evt.name.startswith(_LABEL) and evt.device_type == DeviceType.CPU:
            phase = evt.name[len(_LABEL):]
            if phase in total_us:
                total_us[phase] += evt.time_range.elapsed_us()
    return {p: us / 1000.0 / steps for p, us in total_us.items()}


class _PhaseStepper:
    """Profiled engine steps on the engine's batches; sums each phase's CUDA time while ``recording``."""

    def __init__(self, model: nn.Module, cfg: ExperimentConfig, bank: Any, device: torch.device,
                 batch_size: int) -> None:
        precision = Precision(cfg.train.precision, device.type)
        self.model, self.cfg, self.bank, self.device, self.batch_size = model, cfg, bank, device, batch_size
        self.optimizer = create_optimizer(model, cfg.optim)
        self.scaler = precision.grad_scaler()
        self.task_loss = task_loss(cfg)
        self.forward_context = forward_context(precision, cfg.train.attention, device.type)
        self.perm = epoch_permutation(len(bank), cfg.seed, 0, device)
        self.index = 0
        self.recording = False
        self.cuda_ms = {p: 0.0 for p in PHASES}

    def next_batch(self) -> torch.Tensor:
        """The engine's gather of this step's windows (indices wrap around when the bank is smaller)."""
        i, b = self.index, self.batch_size
        pos = (torch.arange(b, device=self.device) + i * b) % self.perm.numel()
        return self.bank.batch(self.perm[pos], self.cfg.data.augment, step_generator(self.cfg.seed, i, self.device))

    def step(self) -> torch.Tensor:
        """One profiled training step; returns its loss terms."""
        cuda = self.device.type == "cuda"
        events = [torch.cuda.Event(enable_timing=True) for _ in range(len(PHASES) + 1)] if cuda else None
        terms = profiled_train_step(self.model, self.optimizer, self.scaler, self.next_batch, self.task_loss,
                                    self.forward_context, self.cfg.optim.clip_grad_norm, events)
        if events is not None and self.recording:
            events[-1].synchronize()
            for p, start, end in zip(PHASES, events[:-1], events[1:]):
                self.cuda_ms[p] += start.elapsed_time(end)
        self.index += 1
        return terms


def profile_training(model: nn.Module, cfg: ExperimentConfig, bank: Any, *, device: torch.device,
                     batch_size: int = 256, steps: int = 10, warmup: int = 3, out_dir: str | Path,
                     meta: dict[str, Any] | None = None) -> ProfileResult:
    """Profile ``steps`` training steps (after ``warmup`` untimed ones) phase by phase; write trace and summary.

    Args:
        model: a trainable model on ``device``.
        cfg: the ``ExperimentConfig`` giving optimizer, loss, precision, attention kernel, augmentation and seed.
        bank: the task's sample bank on ``device`` (a ``WindowBank``: the engine's batches, an index gather).
        device: where the step runs.
        batch_size: windows per step (indices wrap around when the bank is smaller).
        steps: profiled steps (>= 1); times are averaged over them.
        warmup: steps run first, untimed and unprofiled.
        out_dir: an existing, empty folder (see :func:`new_profile_dir`) for ``trace.json``, ``phases.csv`` and
            ``profile.json``.
        meta: extra entries for ``profile.json`` (model, source, environment).

    Returns:
        The per-phase breakdown and the measured step time.
    """
    if steps < 1 or warmup < 0 or batch_size < 1:
        raise ValueError(f"need steps >= 1, warmup >= 0 and batch size >= 1 (got {steps}, {warmup}, {batch_size})")
    if sum(p.numel() for p in model.parameters() if p.requires_grad) == 0:
        raise ValueError("the model has no trainable parameters; there is no training step to profile")
    out_dir = Path(out_dir)
    stepper = _PhaseStepper(model, cfg, bank, device, batch_size)
    cuda = device.type == "cuda"
    model.train()
    for _ in range(warmup):
        stepper.step()
    synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    times = []
    stepper.recording = True
    with profile(activities=activities) as prof:
        for _ in range(steps):
            synchronize(device)
            t0 = time.perf_counter()
            stepper.step()
            synchronize(device)
            times.append(time.perf_counter() - t0)
    trace_path = out_dir / "trace.json"
    prof.export_chrome_trace(str(trace_path))
    stats = summarize_times(times)
    cpu_ms = _phase_cpu_ms(prof.events(), steps)
    phases = []
    for p in PHASES:
        dev = stepper.cuda_ms[p] / steps if cuda else None
        phases.append(PhaseTime(p, cpu_ms[p], dev, (dev if dev is not None else cpu_ms[p]) / stats.mean_ms))
    result = ProfileResult(phases=phases, step_ms=stats.mean_ms, step_ms_median=stats.median_ms, steps=steps,
                           warmup=warmup, batch_size=batch_size, device=str(device), device_name=device_name(device),
                           precision=cfg.train.precision, out_dir=out_dir, trace_path=trace_path,
                           meta=dict(meta or {}))
    _write_summary(result)
    return result


def _write_summary(result: ProfileResult) -> None:
    with open(result.out_dir / "phases.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["phase", "cpu_ms", "cuda_ms", "share"])
        for p in result.phases:
            writer.writerow([p.name, f"{p.cpu_ms:.6f}", "" if p.cuda_ms is None else f"{p.cuda_ms:.6f}",
                             f"{p.share:.6f}"])
        writer.writerow(["step", f"{result.step_ms:.6f}", "", "1.0"])
    (result.out_dir / "profile.json").write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
