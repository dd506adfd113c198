"""The benchmark sweep behind ``crisscross bench`` (style.md R10).

A sweep is the product models x batch sizes x precisions x compile flags x modes; each element is a
:class:`BenchCell` and gives one tidy row: parameters, FLOPs per sample (``FlopCounterMode``, multiply-add = 2),
peak memory, throughput and latency (median, p10, p90 after warm-up), status and message, and the environment
(torch and CUDA versions, device name, threads, git commit, timestamp). A failing cell (out of memory, a precision
or ``torch.compile`` this platform does not support) becomes a row with ``status=error`` and the sweep goes on.
With ``isolate=True`` every cell runs in its own Python process (``python -m crisscross.benchmarking.runner``),
as timm's ``bulk_runner.py`` does, so a crash or an out-of-memory kill cannot end the sweep and CPU peak memory is
measured in a fresh process.

Modes: ``train`` times the engine's own ``train_step`` (forward under autocast, loss in fp32, scaled backward,
optimizer step) on a fixed device-resident batch, so data loading is excluded (``crisscross profile`` measures it);
``infer`` times ``model(past)`` under ``torch.inference_mode`` and autocast. Latency is per batch; throughput is
``batch_size / median latency``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import functools
import gc
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from crisscross.benchmarking.flops import FLOP_CONVENTION, forward_flops, train_flops
from crisscross.benchmarking.timing import MemoryMeter, summarize_times, synchronize, time_iterations

__all__ = [
    "BenchCell",
    "BenchSpec",
    "ModelSpec",
    "ROW_COLUMNS",
    "append_rows",
    "device_name",
    "format_table",
    "load_bench_config",
    "parse_model_spec",
    "run_cell",
    "run_cell_isolated",
    "run_sweep",
    "best_of_repeats",
    "precision_speedups",
]

MODES = ("train", "infer")
PRECISIONS = ("fp32", "bf16", "fp16")
ROW_MARKER = "CRISSCROSS_BENCH_ROW "

#: Columns of every row, in file order.
ROW_COLUMNS: tuple[str, ...] = (
    "model", "model_args", "mode", "batch_size", "input_frames", "output_frames", "precision", "compile", "repeat",
    "status", "message", "parameters", "gflops_per_sample", "peak_mem_mb", "samples_per_s", "latency_ms_median",
    "latency_ms_p10", "latency_ms_p90", "first_iter_s", "warmup", "iters", "device", "device_name", "threads",
    "peak_mem_method", "flop_counter", "load_avg_1m", "torch", "cuda", "git_commit", "timestamp",
)


@dataclass(frozen=True)
class ModelSpec:
    """A registry model with argument overrides, e.g. ``stcformer:dim=128:heads=4``."""

    name: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """``name`` followed by ``:key=value`` for each override."""
        return self.name + "".join(f":{k}={v}" for k, v in self.args)


def parse_model_spec(text: str | dict[str, Any]) -> ModelSpec:
    """Parse ``NAME[:key=value...]`` (values read as YAML scalars) or ``{name: NAME, args: {...}}``.

    Raises:
        ValueError: malformed text.
    """
    import yaml

    if isinstance(text, dict):
        if "name" not in text:
            raise ValueError(f"model entry {text!r} needs a 'name'")
        return ModelSpec(str(text["name"]), tuple((str(k), v) for k, v in dict(text.get("args") or {}).items()))
    parts = [p.strip() for p in str(text).split(":")]
    if not parts[0]:
        raise ValueError(f"model spec {text!r} has no model name")
    args = []
    for part in parts[1:]:
        if "=" not in part:
            raise ValueError(f"model spec {text!r}: {part!r} is not key=value")
        key, value = part.split("=", 1)
        args.append((key.strip(), yaml.safe_load(value)))
    return ModelSpec(parts[0], tuple(args))


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
        from crisscross.models.registry import get_model_entry

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
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"bench config {path} does not exist")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"bench config {path} must be a mapping")
    known = {f.name for f in BenchSpec.__dataclass_fields__.values()} | {"isolate", "out", "cell_timeout_s", "repeats"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"bench config {path}: unknown keys {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    if "models" in values:
        values["models"] = [parse_model_spec(m) for m in values["models"]]
    return values


@functools.lru_cache(maxsize=None)
def _cpu_model_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The GPU name on CUDA, else the CPU model name from ``/proc/cpuinfo``."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return _cpu_model_name()


@functools.lru_cache(maxsize=None)
def _git_commit() -> str | None:
    from crisscross.runtime import git_commit

    return git_commit()


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
        torch=torch.__version__, cuda=torch.version.cuda, git_commit=_git_commit(),
        timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    return row


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_precision(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise RuntimeError(f"bf16 is not supported on {device_name(device)}")


Workload = tuple[Callable[[], Any], Callable[[], int]]


def _build_workload(cell: BenchCell, device: torch.device, row: dict[str, Any]) -> Workload | None:
    """Model, inputs and the timed step for ``cell``; None (row marked skipped) when there is nothing to time."""
    from crisscross.config import ExperimentConfig
    from crisscross.data.skeleton import get_skeleton
    from crisscross.models.registry import count_parameters, get_model_entry
    from crisscross.training.loop import build_model, train_step
    from crisscross.training.optim import create_optimizer
    from crisscross.training.precision import Precision

    skeleton = get_skeleton("h36m")
    model = build_model(cell.model, dict(cell.model_args), skeleton, cell.input_frames, cell.output_frames).to(device)
    row["parameters"] = count_parameters(model)
    gen = torch.Generator(device="cpu").manual_seed(cell.seed)
    joints = len(skeleton.predicted)
    window = torch.randn(cell.batch_size, cell.input_frames + cell.output_frames, joints, 3, generator=gen) * 0.3
    window = window.to(device)
    past, future = window[:, : cell.input_frames], window[:, cell.input_frames:]
    precision = Precision(cell.precision, device.type)
    run_model = torch.compile(model) if cell.compile else model

    if cell.mode == "train":
        if not (get_model_entry(cell.model).trainable and row["parameters"] > 0):
            row.update(status="skipped", message="model has no trainable parameters")
            return None
        cfg = ExperimentConfig()
        optimizer = create_optimizer(model, cfg.optim)
        scaler = precision.grad_scaler()
        model.train()

        def step() -> Any:
            return train_step(run_model, optimizer, scaler, precision, window, cell.input_frames, cfg)

        return step, lambda: train_flops(model, past, future)

    model.eval()

    def infer() -> Any:
        with torch.inference_mode(), precision.autocast():
            return run_model(past)

    return infer, lambda: forward_flops(model, past)


def _prewarm(cell: BenchCell, device: torch.device) -> None:
    """Run the same model eagerly on a batch of 1 so code pages and lazily initialised library state (oneDNN,
    thread pools) are resident before the CPU memory peak is reset; they would otherwise count as the workload's."""
    workload = _build_workload(replace(cell, batch_size=1, compile=False), device, {})
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
    row["gflops_per_sample"] = flops_fn() / cell.batch_size / 1e9
    row["status"] = "ok"


def run_cell(cell: BenchCell) -> dict[str, Any]:
    """Measure one configuration in this process; failures become ``status=error`` rows, never exceptions.

    Args:
        cell: the configuration.

    Returns:
        A row with every column of :data:`ROW_COLUMNS`.
    """
    from crisscross.runtime import select_device

    if cell.threads:
        torch.set_num_threads(cell.threads)
    try:
        device = select_device(cell.device)
    except RuntimeError as err:
        row = _base_row(cell, None)
        row.update(status="error", message=_one_line(str(err)))
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
        row.update(status="error", message=_one_line(f"out of memory: {err}"))
    except Exception as err:  # noqa: BLE001  (any failure of one cell is recorded and the sweep goes on)
        row.update(status="error", message=_one_line(f"{type(err).__name__}: {err}"))
    finally:
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    notes = []
    for w in caught:
        text = _one_line(str(w.message), 160)
        if text not in notes:
            notes.append(text)
    if any("autocast" in n.lower() and "disabl" in n.lower() for n in notes) and row["status"] == "ok":
        row["status"] = "error"  # autocast silently fell back to fp32: the timing is not of this precision
        notes.insert(0, f"{cell.precision} autocast unsupported here")
    if notes:
        row["message"] = _one_line("; ".join(filter(None, [row["message"]] + notes)))
    return row


def run_cell_isolated(cell: BenchCell, timeout_s: float | None = None) -> dict[str, Any]:
    """Run :func:`run_cell` in a fresh Python process; a crash, kill or timeout becomes an error row."""
    payload = json.dumps(asdict(replace(cell, fresh_process=True)))
    cmd = [sys.executable, "-m", "crisscross.benchmarking.runner", payload]
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
    row.update(status="error", message=_one_line(f"benchmark process {why}: {tail}"))
    return row


def run_sweep(cells: Sequence[BenchCell], *, isolate: bool = False, timeout_s: float | None = None,
              repeats: int = 1, on_row: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every cell (each in its own process when ``isolate``) ``repeats`` times; call ``on_row`` after each.

    Repeats go round-robin (the whole sweep, then again), so slow periods of a shared machine spread over all
    configurations instead of hitting one; :func:`best_of_repeats` then keeps each configuration's fastest repeat.

    Args:
        cells: configurations, e.g. ``BenchSpec.cells()``.
        isolate: one fresh process per cell.
        timeout_s: per-cell limit when isolated.
        repeats: passes over the sweep (>= 1); rows carry their pass in ``repeat``.
        on_row: called with each finished row (e.g. to append it to a file and print progress).

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
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


def _config_key(row: dict[str, Any]) -> tuple:
    return tuple(str(row.get(k)) for k in ("model", "mode", "batch_size", "input_frames", "output_frames",
                                           "precision", "compile", "device"))


def best_of_repeats(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration: the successful repeat with the lowest median latency (else the first row).

    On a machine shared with other work, contention only ever adds time, so the fastest repeat is the best estimate
    of the uncontended speed (the same argument as timing the minimum in ``timeit``).
    """
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = _config_key(row)
        current = best.get(key)
        if current is None or (row["status"] == "ok" and (
                current["status"] != "ok" or float(row["latency_ms_median"]) < float(current["latency_ms_median"]))):
            best[key] = row
    return list(best.values())


def precision_speedups(rows: Sequence[dict[str, Any]], baseline: str = "fp32",
                       tablefmt: str = "github") -> str:
    """Table of the speed-up of every other precision over ``baseline`` (median-latency ratio) per configuration.

    Args:
        rows: benchmark rows (use :func:`best_of_repeats` first when there are repeats).
        baseline: the reference precision.
        tablefmt: tabulate format.

    Returns:
        The table, or an empty string when fewer than two precisions succeeded for any configuration.
    """
    from tabulate import tabulate

    ok = [r for r in rows if r["status"] == "ok"]
    others = [p for p in PRECISIONS if p != baseline and any(r["precision"] == p for r in ok)]
    base = {_config_key({**r, "precision": baseline}): r for r in ok if r["precision"] == baseline}
    lines = []
    for key, ref in base.items():
        cells = []
        for p in others:
            match = [r for r in ok if _config_key(r) == _config_key({**ref, "precision": p})]
            cells.append(f"{float(ref['latency_ms_median']) / float(match[0]['latency_ms_median']):.2f}x"
                         if match else "")
        if any(cells):
            lines.append([ref["model"], ref["mode"], ref["batch_size"], "on" if ref["compile"] in (True, "True") else
                          "off", f"{float(ref['latency_ms_median']):.2f}"] + cells)
    if not lines:
        return ""
    headers = ["model", "mode", "batch", "compile", f"{baseline} median ms"] + [f"{p} speed-up" for p in others]
    return tabulate(lines, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def append_rows(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Append rows to a ``.csv`` (header written once; an existing header must match) or ``.jsonl`` file."""
    path = Path(path)
    rows = list(rows)
    if path.suffix not in (".csv", ".jsonl"):
        raise ValueError(f"benchmark output {path} must end in .csv or .jsonl")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        with open(path, "a") as fh:
            for row in rows:
                fh.write(json.dumps({c: row.get(c) for c in ROW_COLUMNS}) + "\n")
        return path
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        if tuple(header) != ROW_COLUMNS:
            raise ValueError(f"{path} has other columns than this benchmark writes; use a new file")
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(ROW_COLUMNS))
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c) for c in ROW_COLUMNS})
    return path


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None or value == "" else format(float(value), spec)


def _peak(row: dict[str, Any]) -> str:
    text = _fmt(row.get("peak_mem_mb"), ".1f")
    return f">={text}" if text and "lower bound" in str(row.get("peak_mem_method")) else text


def format_table(rows: Sequence[dict[str, Any]], tablefmt: str = "github") -> str:
    """A model-zoo table (one line per row) preceded by a header stating the device and the FLOP convention."""
    from tabulate import tabulate

    headers = ["model", "mode", "batch", "prec", "compile", "params", "GFLOPs/sample", "peak MiB", "samples/s",
               "median ms", "p10-p90 ms", "status"]
    lines = []
    for r in rows:
        spread = (f"{_fmt(r['latency_ms_p10'], '.2f')}-{_fmt(r['latency_ms_p90'], '.2f')}"
                  if r.get("latency_ms_p10") is not None else "")
        status = r["status"] if r["status"] == "ok" else f"{r['status']}: {_one_line(r.get('message') or '', 60)}"
        lines.append([r["model"], r["mode"], r["batch_size"], r["precision"], "on" if r["compile"] else "off",
                      f"{r['parameters']:,}" if r.get("parameters") is not None else "",
                      _fmt(r.get("gflops_per_sample"), ".4f"), _peak(r),
                      _fmt(r.get("samples_per_s"), ",.0f"), _fmt(r.get("latency_ms_median"), ".2f"), spread, status])
    devices = sorted({f"{r['device']} ({r['device_name']})" for r in rows if r.get("device_name")})
    header = (f"device: {', '.join(devices) or 'unknown'}; torch {torch.__version__}\n{FLOP_CONVENTION}; "
              "train = full step (forward, loss, backward, optimizer), infer = forward; "
              "latency per batch after warm-up; peak MiB: CUDA max_memory_allocated, CPU resident-set growth "
              "(>= marks a lower bound from a shared process; use --isolate)")
    return header + "\n" + tabulate(lines, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def _main(argv: list[str]) -> int:
    """Entry of an isolated cell: ``python -m crisscross.benchmarking.runner '<BenchCell JSON>'``."""
    values = json.loads(argv[0])
    values["model_args"] = tuple(tuple(kv) for kv in values["model_args"])
    row = run_cell(BenchCell(**values))
    sys.stdout.write(ROW_MARKER + json.dumps(row) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
