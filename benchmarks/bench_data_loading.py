"""Data loading: first-time preprocessing of the real H3.6M subjects (cold cache) against a cached load.

Run::

    python benchmarks/bench_data_loading.py [--data-dir DATA_DIR] [--repeats 3]
        [--splits train val] [--output results.jsonl]

Stages, each timed in this process:

* ``unpack``: extracting the archive into a fresh cache folder (only when ``--data-dir`` holds the ``.tar.xz``);
* ``cold``: ``load_motion("h36m", split)`` for every split with an empty preprocessing cache: read + hash every
  file, parse the exp-map text, FK to 32 joints, downsample to 25 fps, write the cache entries;
* ``cached``: the same loads again (median of ``--repeats``): hash the file bytes, read the ``.npz`` entries;
* ``synthetic``: generating the three splits of the embedded dataset.

Targets: cold <= 60 s, cached <= 2 s, synthetic <= 2 s. Reported per stage: wall time, process CPU time (all
threads; close to the wall time on an idle machine, and insensitive to waiting for a core that other processes keep
busy), the target and measured/target. Each row records torch/numpy versions, the CPU count, the torch thread count
and the 1-minute load average, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tabulate import tabulate

from crisscross.data.datasets import find_data_dir, load_motion
from crisscross.data.synthetic import SYNTHETIC_SPLITS, load_synthetic

TARGETS_S = {"cold": 60.0, "cached": 2.0, "synthetic": 2.0}


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def _environment() -> dict:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, check=False).stdout.strip()
    except OSError:
        sha = ""
    return {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_1m": os.getloadavg()[0],
            "git_sha": sha}


def _load_splits(data_dir: Path, cache_dir: Path, splits: list[str]) -> int:
    return sum(load_motion("h36m", s, data_dir=data_dir, cache_dir=cache_dir).num_frames for s in splits)


def main() -> None:
    """Run the stages and print the table (and append JSON rows to ``--output``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_data = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("CRISSCROSS_DATA", default_data)))
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, help="append one JSON row per stage to this file")
    args = parser.parse_args()

    rows = []
    env = _environment()
    work = Path(tempfile.mkdtemp(prefix="crisscross-bench-"))
    try:
        cache = work / "cache"
        wall, cpu, root = _timed(lambda: find_data_dir("h36m", args.data_dir, cache_dir=cache))
        if str(root).startswith(str(cache)):
            rows.append({"stage": "unpack", "wall_s": wall, "cpu_s": cpu, "detail": "archive -> cache folder"})
        wall, cpu, frames = _timed(lambda: _load_splits(root, cache, args.splits))
        rows.append({"stage": "cold", "wall_s": wall, "cpu_s": cpu,
                     "detail": f"{' + '.join(args.splits)}: {frames} frames at 25 fps"})
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu, _ = _timed(lambda: _load_splits(root, cache, args.splits))
            walls.append(wall)
            cpus.append(cpu)
        rows.append({"stage": "cached", "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                     "detail": f"median of {args.repeats}, min {min(walls):.2f} s, max {max(walls):.2f} s"})
        walls, cpus = [], []
        for _ in range(args.repeats):
            wall, cpu, _ = _timed(lambda: [load_synthetic(s) for s in SYNTHETIC_SPLITS])
            walls.append(wall)
            cpus.append(cpu)
        rows.append({"stage": "synthetic", "wall_s": statistics.median(walls), "cpu_s": statistics.median(cpus),
                     "detail": f"train + val + test, median of {args.repeats}"})
    finally:
        shutil.rmtree(work, ignore_errors=True)

    table = []
    for row in rows:
        target = TARGETS_S.get(row["stage"])
        row["target_s"] = target
        row["ratio"] = row["wall_s"] / target if target else None
        row.update(env)
        table.append([row["stage"], f"{row['wall_s']:.2f}", f"{row['cpu_s']:.2f}",
                      f"{target:g}" if target else "-", f"{row['ratio']:.3f}" if target else "-", row["detail"]])
    print(f"torch {env['torch']}, {env['cpus']} CPUs, {env['torch_threads']} torch threads, "
          f"load average {env['load_avg_1m']:.2f}, git {env['git_sha']}")
    print(tabulate(table, headers=["stage", "wall s", "cpu s", "target s", "wall/target", "detail"],
                   tablefmt="github"))
    if args.output:
        with args.output.open("a") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
