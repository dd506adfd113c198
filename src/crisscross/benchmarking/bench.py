"""The benchmark sweep behind ``crisscross bench``.

A sweep is the product models x batch sizes x precisions x compile flags x modes; each element is a
:class:`BenchCell` and gives one tidy row (:mod:`crisscross.benchmarking.table`): parameters, FLOPs per sample
(``FlopCounterMode``, multiply-add = 2), peak memory, throughput and latency (median, p10, p90 after warm-up), status
and message, achieved GFLOP/s and model FLOP utilisation (MFU, below), and the environment (torch and CUDA versions,
device name, threads, git commit, timestamp). A failing cell (out of memory, a precision or ``torch.compile`` this
platform does not support) becomes a row with ``status=error`` and the sweep goes on. With ``isolate=True`` every
cell runs in its own Python process (``python -m crisscross.benchmarking.bench``), as timm's ``bulk_runner.py``
does, so a crash or an out-of-memory kill cannot end the sweep and CPU peak memory is measured in a fresh process.

Modes: ``train`` times the engine's own ``train_step`` with the loss the engine gives it
(:func:`crisscross.training.setup.engine_loss`: forward under autocast and the attention kernel, loss in fp32, scaled
backward, optimizer step) on a fixed device-resident batch, so data loading is excluded (``crisscross profile``
measures it); ``infer`` times ``model(past)`` under ``torch.inference_mode`` and autocast. Latency is per batch;
throughput is ``batch_size / median latency``.

MFU: every row's achieved GFLOP/s is its counted FLOPs per step (the forward pass for ``infer``; forward + backward
as ``FlopCounterMode`` counts them for ``train``, about 3x the forward, not assumed to be) over its median step
time. :func:`measure_ceilings` measures the dense matmul ceiling (:mod:`crisscross.benchmarking.ceiling`) once per
device and precision of a sweep, in the sweep's own process, before the first cell; :func:`run_sweep` then sets
each row's ``mfu_pct`` = achieved / the ceiling of its precision.

Lifting models (registry task ``lifting``) get the lifting task's batches: ``input_frames`` is the receptive field
``R`` and ``output_frames`` is 1 (the centre frame) or ``R``; a sample is one window of 2D keypoints of the 17
Human3.6M joints, and the training loss is the lifting task's own.
"""

from __future__ import annotations

import datetime as _dt
import gc
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import yaml

from crisscross.benchmarking.ceiling import (
    MatmulCeiling,
    achieved_gflops_per_s,
    ceiling_unsupported,
    measure_matmul_ceiling,
    mfu_pct,
)
from crisscross.benchmarking.environment import cached_git_commit, device_name
from crisscross.benchmarking.flops import forward_flops, train_flops
from crisscross.benchmarking.table import ROW_COLUMNS, one_line
from crisscross.benchmarking.timing import MemoryMeter, summarize_times, synchronize, time_iterations
from crisscross.config.schema import ExperimentConfig
from crisscross.data.skeleton import get_skeleton
from crisscross.models.registry import ModelSpec, build_model, count_parameters, get_model_entry, parse_model_spec
from crisscross.runtime import configure_cpu_allocator, select_device
from crisscross.training.loop import train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import PRECISION_DTYPES, Precision
from crisscross.training.setup import engine_loss

__all__ = [
    "MODES",
    "PRECISIONS",
    "BenchCell",
    "BenchSpec",
    "add_mfu",
    "load_bench_config",
    "measure_ceilings",
    "run_cell",
    "run_cell_isolated",
    "run_sweep",
]

MODES = ("train", "infer")
PRECISIONS = tuple(PRECISION_DTYPES)
ROW_MARKER = "CRISSCROSS_BENCH_ROW "


@dataclass(frozen=True)
class BenchCell:
    """One benchmark configuration, run by :func:`run_cell` (JSON-serialisable for ``--isolate``)."""

    model: str
    model_args: tuple[tuple[str, Any], ...]
    mode: str
    batch_size: int
    input_frames: int = 10
    output_frames: int = 25
    precision: str = "fp32"
    compile: bool = False
    device: str = "auto"
    warmup: int = 5
    iters: int = 20
    threads: int | None = None
    fresh_process: bool = False
    seed: int = 0

    @property
    def label(self) -> str:
        """The model label with its overrides."""
        return ModelSpec(self.model, self.model_args).label


@dataclass
class BenchSpec:
    """A sweep: the product of the lists below (modes vary fastest)."""

    models: list[ModelSpec]
    batch_sizes: list[int] = field(default_factory=lambda: [1, 64, 256])
    input_frames: int = 10
    output_frames: int = 25
    precisions: list[str] = field(default_factory=lambda: ["fp32"])
    compile: list[bool] = field(default_factory=lambda: [False])
    modes: list[str] = field(default_factory=lambda: ["train", "infer"])
    device: str = "auto"
    warmup: int = 5
    iters: int = 20
    threads: int | None = None

    def validate(self) -> None:
        """Raise ``ValueError`` with one line on the first bad entry."""
        if not self.models:
            raise ValueError("no models to benchmark")
        for p in self.precisions:
            if p not in PRECISIONS:
                raise ValueError(f"unknown precision {p!r}; choose from {', '.join(PRECISIONS)}")
        for m in self.modes:
            if m not in MODES:
                raise ValueError(f"unknown mode {m!r}; choose from {', '.join(MODES)}")
        if any(b < 1 for b in self.batch_sizes) or not self.batch_sizes:
            raise ValueError(f"batch sizes must be positive integers, got {self.batch_sizes}")
        if self.input_frames < 1 or self.output_frames < 1:
            raise ValueError("input and output frames must be >= 1")
        if self.warmup < 0 or self.iters < 1:
            raise ValueError(f"need warmup >= 0 and iters >= 1, got {self.warmup} and {self.iters}")
        for spec in self.models:
            get_model_entry(spec.name)  # KeyError listing the known models

    def cells(self, fresh_process: bool = False) -> list[BenchCell]:
        """Every configuration of the sweep, in a stable order."""
        self.validate()
        return [
            BenchCell(model=m.name, model_args=m.args, mode=mode, batch_size=b, input_frames=self.input_frames,
                      output_frames=self.output_frames, precision=p, compile=c, device=self.device,
                      warmup=self.warmup, iters=self.iters, threads=self.threads, fresh_process=fresh_process)
            for m in self.models for b in self.batch_sizes for p in self.precisions for c in self.compile
            for mode in self.modes
        ]


def load_bench_config(path: str | Path) -> dict[str, Any]:
    """Read a ``configs/bench/*.yaml`` file: keys of :class:`BenchSpec` plus optional ``isolate``, ``out``.

    ``models`` entries are ``NAME[:key=value...]`` strings or ``{name, args}`` mappings.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bench config {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"bench config {path} must be a mapping")
    known = ({f.name for f in BenchSpec.__dataclass_fields__.values()}
             | {"isolate", "out", "cell_timeout_s", "repeats", "ceiling"})
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"bench config {path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if "models" in values:
        values["models"] = [parse_model_spec(m) for m in values["models"]]
    return values


def _base_row(cell: BenchCell, device: torch.device | None) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in ROW_COLUMNS}
    row.update(
        model=cell.label, model_args=json.dumps(dict(cell.model_args), sort_keys=True), mode=cell.mode,
        batch_size=cell.batch_size, input_frames=cell.input_frames, output_frames=cell.output_frames,
        precision=cell.precision, compile=cell.compile, warmup=cell.warmup, iters=cell.iters,
        device=str(device) if device is not None else cell.device,
        device_name=device_name(device) if device is not None else None,
        threads=torch.get_num_threads(), flop_counter="FlopCounterMode (multiply-add = 2 FLOPs)",
        load_avg_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        torch=torch.__version__, cuda=torch.version.cuda, git_commit=cached_git_commit(),
        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    return row


def _check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"bf16 is not supported on {device_name(device)}")


Workload = tuple[Callable[[], Any], Callable[[], int]]


def _cell_config(cell: BenchCell, task: str) -> ExperimentConfig:
    """The default experiment config with the cell's task and window lengths (the engine's loss splits batches by
    them)."""
    cfg = ExperimentConfig(task=task)
    return replace(cfg, data=replace(cfg.data, input_frames=cell.input_frames, output_frames=cell.output_frames))


def _random_batch(cell: BenchCell, task: str, joints: int, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """``(batch, model input, target)`` as the engine feeds the task: a forecasting window ``[B, T_in + T_out, J,
    3]``, or a lifting window ``[B, R, J, 5]`` (2D keypoints and the 3D pose of every frame; the target is the
    centre frame when the model outputs one)."""
    if task == "lifting":
        batch = torch.randn(cell.batch_size, cell.input_frames, joints, 5, generator=gen) * 0.3
        target = batch[..., 2:]
        if cell.output_frames == 1:
            target = target[:, cell.input_frames // 2:cell.input_frames // 2 + 1]
        return batch, batch[..., :2], target
    window = torch.randn(cell.batch_size, cell.input_frames + cell.output_frames, joints, 3, generator=gen) * 0.3
    return window, window[:, : cell.input_frames], window[:, cell.input_frames:]


def _build_workload(cell: BenchCell, device: torch.device, row: dict[str, Any]) -> Workload | None:
    """Model, inputs and the timed step for ``cell``; None (row marked skipped) when there is nothing to time."""
    task = get_model_entry(cell.model).task
    skeleton = get_skeleton("h36m17" if task == "lifting" else "h36m")
    model = build_model(cell.model, dict(cell.model_args), skeleton, cell.input_frames, cell.output_frames).to(device)
    row["parameters"] = count_parameters(model)
    gen = torch.Generator(device="cpu").manual_seed(cell.seed)
    window, past, future = (t.to(device) for t in _random_batch(cell, task, len(skeleton.predicted), gen))
    precision = Precision(cell.precision, device.type)
    run_model = torch.compile(model) if cell.compile else model

    if cell.mode == "train":
        if not (get_model_entry(cell.model).trainable and row["parameters"] > 0):
            row.update(status="skipped", message="model has no trainable parameters")
            return None
        cfg = _cell_config(cell, task)
        optimizer = create_optimizer(model, cfg.optim)
        scaler = precision.grad_scaler()
        loss_fn = engine_loss(cfg, precision, device.type)
        model.train()

        def step() -> Any:
            return train_step(run_model, optimizer, scaler, window, loss_fn, cfg.optim.clip_grad_norm)

        return step, lambda: train_flops(model, past, future)

    model.eval()

    def infer() -> Any:
        with torch.inference_mode(), precision.autocast():
            return run_model(past)

    return infer, lambda: forward_flops(model, past)


def _prewarm(cell: BenchCell, device: torch.device) -> None:
    """Run the same model eagerly on a batch of 2 (BatchNorm trains on no fewer) so code pages and lazily initialised
    library state (oneDNN, thread pools) are resident before the CPU memory peak is reset; they would otherwise count
    as the workload's."""
    workload = _build_workload(replace(cell, batch_size=2, compile=False), device, {})
    if workload is not None:
        for _ in range(2):
            workload[0]()
    del workload
    gc.collect()


def _measure(cell: BenchCell, device: torch.device, row: dict[str, Any]) -> None:
    if device.type == "cpu":
        _prewarm(cell, device)
    meter = MemoryMeter(device, fresh_process=cell.fresh_process)
    meter.start()
    workload = _build_workload(cell, device, row)
    if workload is None:
        return
    step, flops_fn = workload
    synchronize(device)
    t0 = time.perf_counter()
    step()  # first call: lazy initialisation and, with compile, the compilation itself
    synchronize(device)
    row["first_iter_s"] = time.perf_counter() - t0
    times = time_iterations(step, device, warmup=max(0, cell.warmup - 1), iters=cell.iters)
    row["peak_mem_mb"] = meter.peak_mb()
    row["peak_mem_method"] = meter.method
    stats = summarize_times(times)
    row.update(latency_ms_median=stats.median_ms, latency_ms_p10=stats.p10_ms, latency_ms_p90=stats.p90_ms,
               samples_per_s=cell.batch_size / (stats.median_ms / 1000.0))
    flops = flops_fn()
    row["gflops_per_sample"] = flops / cell.batch_size / 1e9
    row["achieved_gflops_per_s"] = achieved_gflops_per_s(flops, stats.median_ms / 1000.0)
    row["status"] = "ok"


def _add_warnings(row: dict[str, Any], caught: Sequence[warnings.WarningMessage], precision: str) -> None:
    """Append the distinct warnings to the row's message; a silent autocast fallback to fp32 makes it an error."""
    notes: list[str] = []
    for w in caught:
        text = one_line(str(w.message), 160)
        if text not in notes:
            notes.append(text)
    if any("autocast" in n.lower() and "disabl" in n.lower() for n in notes) and row["status"] == "ok":
        row["status"] = "error"  # autocast silently fell back to fp32: the timing is not of this precision
        notes.insert(0, f"{precision} autocast unsupported here")
    if notes:
        row["message"] = one_line("; ".join(filter(None, [row["message"]] + notes)))


def run_cell(cell: BenchCell) -> dict[str, Any]:
    """Measure one configuration in this process; failures become ``status=error`` rows, never exceptions.

    Args:
        cell: the configuration.

    Returns:
        A row with every column of :data:`~crisscross.benchmarking.table.ROW_COLUMNS`.
    """
    if cell.threads:
        torch.set_num_threads(cell.threads)
    try:
        configure_cpu_allocator()  # as the training engine does
        device = select_device(cell.device)
    except RuntimeError as err:
        row = _base_row(cell, None)
        row.update(status="error", message=one_line(str(err)))
        return row
    row = _base_row(cell, device)
    torch.manual_seed(cell.seed)
    caught: list[warnings.WarningMessage] = []
    try:
        _check_precision(cell.precision, device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _measure(cell, device, row)
    except torch.OutOfMemoryError as err:
        row.update(status="error", message=one_line(f"out of memory: {err}"))
    except Exception as err:
        row.update(status="error", message=one_line(f"{type(err).__name__}: {err}"))
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    _add_warnings(row, caught, cell.precision)
    return row


def run_cell_isolated(cell: BenchCell, timeout_s: float | None = None) -> dict[str, Any]:
    """Run :func:`run_cell` in a fresh Python process; a crash, kill or timeout becomes an error row."""
    payload = json.dumps(asdict(replace(cell, fresh_process=True)))
    cmd = [sys.executable, "-m", "crisscross.benchmarking.bench", payload]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=dict(os.environ))
    except subprocess.TimeoutExpired:
        row = _base_row(cell, None)
        row.update(status="error", message=f"timed out after {timeout_s:g} s")
        return row
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(ROW_MARKER):
            return json.loads(line[len(ROW_MARKER):])
    row = _base_row(cell, None)
    if proc.returncode < 0:
        why = f"killed by signal {-proc.returncode}" + (" (likely out of memory)" if proc.returncode == -9 else "")
    else:
        why = f"exited with code {proc.returncode}"
    tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    row.update(status="error", message=one_line(f"benchmark process {why}: {tail}"))
    return row


Ceilings = dict[tuple[str, str], MatmulCeiling]


def measure_ceilings(cells: Sequence[BenchCell], log: Callable[[str], None] | None = None) -> Ceilings:
    """The dense matmul ceiling of every (device, precision) among ``cells``, measured in this process.

    Each is measured once, with the cells' thread count (restored afterwards). A precision without a ceiling (fp16
    on CPU, bf16 on a GPU without it), a device that is not there or a measurement that fails (out of memory) is
    left out, and its rows get no MFU; the sweep goes on.

    Args:
        cells: the sweep's configurations.
        log: called with one line per ceiling measured or left out (e.g. to print progress).

    Returns:
        ``{(device, precision): ceiling}``, ``device`` as rows record it (``str(select_device(cell.device))``).
    """
    ceilings: Ceilings = {}
    seen: set[tuple[str, str, int | None]] = set()
    for cell in cells:
        if (cell.device, cell.precision, cell.threads) in seen:
            continue
        seen.add((cell.device, cell.precision, cell.threads))
        try:
            device = select_device(cell.device)
        except RuntimeError:
            continue  # the cells' own rows say why
        key = (str(device), cell.precision)
        reason = ceiling_unsupported(cell.precision, device)
        if reason is not None and log is not None:
            log(f"{cell.precision} on {device}: {reason}; its rows get no MFU")
        if reason is not None or key in ceilings:
            continue
        threads = torch.get_num_threads()
        try:
            if cell.threads:
                torch.set_num_threads(cell.threads)
            ceilings[key] = measure_matmul_ceiling(cell.precision, device)
            line = ceilings[key].describe()
        except (RuntimeError, torch.OutOfMemoryError) as err:
            line = one_line(f"{cell.precision} on {device}: ceiling not measured ({type(err).__name__}: {err}); "
                            "its rows get no MFU")
        finally:
            torch.set_num_threads(threads)
            if device.type == "cuda":
                torch.cuda.empty_cache()  # the GEMM operands' blocks, before the cells measure peak memory
        if log is not None:
            log(line)
    return ceilings


def add_mfu(row: dict[str, Any], ceilings: Ceilings) -> dict[str, Any]:
    """Set ``row``'s ceiling columns and ``mfu_pct`` from the ceiling of its device and precision (in place).

    A row without achieved GFLOP/s (an error, a skipped cell) or without a ceiling keeps ``mfu_pct`` empty.
    """
    ceiling = ceilings.get((str(row.get("device")), str(row.get("precision"))))
    if ceiling is None:
        return row
    row.update(ceiling_gflops_per_s=ceiling.ceiling_gflops_per_s, ceiling_per_size=ceiling.per_size())
    if row.get("achieved_gflops_per_s") is not None:
        row["mfu_pct"] = mfu_pct(float(row["achieved_gflops_per_s"]), ceiling.ceiling_gflops_per_s)
    return row


def run_sweep(cells: Sequence[BenchCell], *, isolate: bool = False, timeout_s: float | None = None,
              repeats: int = 1, on_row: Callable[[dict[str, Any]], None] | None = None,
              ceilings: Ceilings | None = None) -> list[dict[str, Any]]:
    """Run every cell (each in its own process when ``isolate``) ``repeats`` times; call ``on_row`` after each.

    Repeats go round-robin (the whole sweep, then again), so slow periods of a shared machine spread over all
    configurations instead of hitting one; :func:`~crisscross.benchmarking.table.best_of_repeats` then keeps each
    configuration's fastest repeat.

    Args:
        cells: configurations, e.g. ``BenchSpec.cells()``.
        isolate: one fresh process per cell.
        timeout_s: per-cell limit when isolated.
        repeats: passes over the sweep (>= 1); rows carry their pass in ``repeat``.
        on_row: called with each finished row (e.g. to append it to a file and print progress).
        ceilings: from :func:`measure_ceilings`; each row gets its MFU (:func:`add_mfu`) before ``on_row``.

    Returns:
        The rows, pass by pass, in cell order.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    rows = []
    for repeat in range(repeats):
        for cell in cells:
            row = run_cell_isolated(cell, timeout_s) if isolate else run_cell(cell)
            row["repeat"] = repeat
            if ceilings:
                add_mfu(row, ceilings)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def _main(argv: list[str]) -> int:
    """Entry of an isolated cell: ``python -m crisscross.benchmarking.bench '<BenchCell JSON>'``."""
    values = json.loads(argv[0])
    values["model_args"] = tuple(tuple(kv) for kv in values["model_args"])
    row = run_cell(BenchCell(**values))
    sys.stdout.write(ROW_MARKER + json.dumps(row) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
