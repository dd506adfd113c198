"""``crisscross bench``: parameters, FLOPs, peak memory, training and inference speed and MFU of registry models."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from crisscross.benchmarking.bench import BenchSpec, load_bench_config, measure_ceilings, run_sweep
from crisscross.benchmarking.table import append_rows, best_of_repeats, format_table, precision_speedups
from crisscross.models.registry import parse_model_spec

__all__ = ["add_parser", "run"]

_DEFAULTS: dict[str, Any] = {
    "models": "stcformer,simlpe", "batch_sizes": "1,64,256", "input_frames": 10, "output_frames": 25,
    "precisions": "fp32", "compile": "off", "modes": "train,infer", "device": "auto", "warmup": 5, "iters": 20,
    "threads": None, "isolate": False, "out": None, "cell_timeout_s": 1800.0, "repeats": 1,
    "ceiling": True,
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register the subcommand."""
    p = sub.add_parser(
        "bench", help="benchmark models: params, FLOPs, memory, train/infer throughput and latency",
        description="Benchmark every combination of models x batch sizes x precisions x compile x modes. One row per "
        "configuration is appended to --out (.csv or .jsonl) with the environment; failures (out of memory, an "
        "unsupported precision or compile) are recorded as status=error and the sweep goes on. FLOPs come from "
        "torch.utils.flop_counter.FlopCounterMode (one multiply-add = 2 FLOPs). Every row also gets its achieved "
        "GFLOP/s and MFU: achieved over the dense matmul ceiling of its precision, measured once per precision in "
        "this run (square GEMMs, a few seconds on CPU). Command-line values override "
        "--config. Model overrides: NAME:key=value, e.g. stcformer:dim=128:heads=4.")
    p.add_argument("--config", "-c", metavar="FILE.yaml", help="a sweep file such as configs/bench/zoo.yaml")
    p.add_argument("--models", help=f"comma-separated model specs (default {_DEFAULTS['models']})")
    p.add_argument("--batch-sizes", help=f"comma-separated (default {_DEFAULTS['batch_sizes']})")
    p.add_argument("--input-frames", type=int, help="observed frames (default 10)")
    p.add_argument("--output-frames", type=int, help="predicted frames (default 25)")
    p.add_argument("--precisions", help="comma-separated from fp32,bf16,fp16 (default fp32)")
    p.add_argument("--compile", help="comma-separated from off,on (default off)")
    p.add_argument("--mode", dest="modes", help="comma-separated from train,infer (default both)")
    p.add_argument("--device", help="auto (CUDA when available), cpu, cuda, cuda:1 ...")
    p.add_argument("--warmup", type=int, help="untimed iterations first (default 5)")
    p.add_argument("--iters", type=int, help="timed iterations (default 20)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--isolate", action="store_true", default=None,
                   help="run every configuration in its own process (crash- and OOM-safe, exact CPU peak memory)")
    p.add_argument("--cell-timeout", dest="cell_timeout_s", type=float, help="seconds per isolated configuration")
    p.add_argument("--repeats", type=int, help="passes over the whole sweep (round-robin); the printed table keeps "
                   "each configuration's fastest pass, every pass is written to --out (default 1)")
    p.add_argument("--out", metavar="FILE.csv|FILE.jsonl", help="append one row per configuration and pass")
    p.add_argument("--no-ceiling", dest="ceiling", action="store_false", default=None,
                   help="skip measuring the matmul ceiling (rows get achieved GFLOP/s but no MFU)")
    p.set_defaults(run=run)


def _split(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


def _on_off(value: str) -> bool:
    table = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
    if value.lower() not in table:
        raise ValueError(f"--compile takes off and/or on, got {value!r}")
    return table[value.lower()]


def _int_list(values: list[str], what: str) -> list[int]:
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValueError(f"{what} must be comma-separated integers, got {','.join(values)}") from None


def run(args: argparse.Namespace) -> int:
    """Build the sweep, run it (in-process or isolated), append rows, print the table."""
    values = dict(_DEFAULTS)
    if args.config:
        values.update(load_bench_config(args.config))
    values.update({k: v for k, v in vars(args).items() if k in _DEFAULTS and v is not None})
    models = values["models"]
    models = [m if not isinstance(m, str) else parse_model_spec(m) for m in
              (models if isinstance(models, list) else _split(models))]
    compile_flags = values["compile"]
    compile_flags = ([bool(c) if isinstance(c, bool) else _on_off(str(c)) for c in compile_flags]
                     if isinstance(compile_flags, list) else [_on_off(c) for c in _split(compile_flags)])
    spec = BenchSpec(models=models, batch_sizes=_int_list(_split(values["batch_sizes"]), "--batch-sizes"),
                     input_frames=int(values["input_frames"]), output_frames=int(values["output_frames"]),
                     precisions=_split(values["precisions"]), compile=compile_flags, modes=_split(values["modes"]),
                     device=str(values["device"]), warmup=int(values["warmup"]), iters=int(values["iters"]),
                     threads=values["threads"])
    cells = spec.cells()
    out = values["out"]
    if out and not str(out).endswith((".csv", ".jsonl")):
        raise ValueError(f"--out {out} must end in .csv or .jsonl")

    def on_row(row: dict[str, Any]) -> None:
        if out:
            append_rows(out, [row])
        status = row["status"] if row["status"] == "ok" else f"{row['status']} ({row['message']})"
        print(f"[{len(done) + 1}/{len(cells) * repeats}] {row['model']} {row['mode']} batch {row['batch_size']} "
              f"{row['precision']} compile={'on' if row['compile'] else 'off'}: {status}", file=sys.stderr)
        done.append(row)

    done: list[dict[str, Any]] = []
    repeats = int(values["repeats"])
    ceilings = None
    if values["ceiling"]:
        ceilings = measure_ceilings(cells, log=lambda line: print(line, file=sys.stderr))
    rows = run_sweep(cells, isolate=bool(values["isolate"]), timeout_s=values["cell_timeout_s"], repeats=repeats,
                     on_row=on_row, ceilings=ceilings)
    best = best_of_repeats(rows) if repeats > 1 else rows
    if repeats > 1:
        print(f"fastest of {repeats} passes per configuration")
    print(format_table(best))
    speedups = precision_speedups(best)
    if speedups:
        print("\nspeed-up over fp32 (ratio of median latencies; > 1 is faster)")
        print(speedups)
    if out:
        print(f"\nappended {len(rows)} rows to {out}")
    return 0 if any(r["status"] == "ok" for r in rows) else 1
