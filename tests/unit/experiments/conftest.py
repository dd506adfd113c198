"""Fixtures: fabricated run folders in the engine's format (no training needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from crisscross.config.load import config_to_dict, load_config
from crisscross.tasks.registry import get_task


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def make_run(root: Path, name: str, *, overrides: tuple[str, ...] = (), status: str = "completed",
             pid: int | None = None, epochs: int = 3, val: tuple[float, ...] = (120.0, 100.0, 105.0),
             device: str = "cpu", params: int = 1234, with_eval: bool = True, test_eval: bool = False,
             error: str | None = None, host: str | None = None, age_s: float = 0.0,
             loss_extra: float = 0.0) -> Path:
    """Write a run folder like ``fit`` does: config, env, status, metrics, eval.

    ``host`` is recorded in ``status.json`` (none by default: this machine); ``age_s`` dates the last write that
    long ago (``updated_at`` and file times); ``loss_extra`` adds a term to ``train/epoch_loss`` that the logged
    position term ``train/epoch_mpjpe_mm`` lacks (e.g. STCFormer's flag loss).
    """
    run = root / name / "20260101-000000-abcdef"
    run.mkdir(parents=True)
    cfg = config_to_dict(load_config(None, list(overrides)))
    (run / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (run / "env.json").write_text(json.dumps({"device": device, "parameters": params, "torch": "x"}))
    now = (datetime.now(UTC) - timedelta(seconds=age_s)).isoformat()
    st: dict[str, Any] = {"started_at": now, "status": status, "updated_at": now,
                          "pid": pid if pid is not None else dead_pid(), **({"host": host} if host else {})}
    if status != "running":
        st.update(step=epochs * 10, epoch=epochs, train_time_s=3.0 * epochs)
    if error:
        st["error"] = error
    (run / "status.json").write_text(json.dumps(st))
    select = "val/" + (cfg["eval"]["select_metric"] or get_task(cfg["task"]).select_metric)
    with (run / "metrics.jsonl").open("w") as fh:
        for e in range(1, epochs + 1):
            for s in range(10):
                fh.write(json.dumps({"step": (e - 1) * 10 + s + 1, "train/loss": 0.2 / e, "train/lr": 1e-3,
                                     "time/wall_s": 3.0 * (e - 1) + 0.3 * s}) + "\n")
            v = val[(e - 1) % len(val)]
            fh.write(json.dumps({"step": e * 10, "epoch": e, "train/epoch_loss": 0.2 / e + loss_extra,
                                 "train/epoch_mpjpe_mm": 200.0 / e, "time/epoch_s": 2.5, "time/samples_per_s": 400.0,
                                 "time/wall_s": 3.0 * e, "memory/peak_mb": 500.0 + e, select: v,
                                 "val/mpjpe22_avg_mm": v, "val/mpjpe32_avg_mm": v * 0.9}) + "\n")
        fh.write('{"step": 99, "torn')  # a killed process can leave a torn last line
    if with_eval:
        (run / "eval.json").write_text(json.dumps(_eval(min(val))))
    if test_eval:
        (run / "eval_test.json").write_text(json.dumps({**_eval(min(val) + 7.0), "split": "test"}))
    if age_s:
        stamp = datetime.now().timestamp() - age_s
        for f in run.iterdir():
            os.utime(f, (stamp, stamp))
    return run


def _eval(avg: float) -> dict[str, Any]:
    horizons = [80, 160, 320, 400, 560, 720, 880, 1000]
    mean = {str(h): avg * (i + 1) / 4 for i, h in enumerate(horizons)}
    mean["avg"] = avg
    return {"protocol": "synthetic-10-25", "dataset": "synthetic", "split": "val", "horizons_ms": horizons,
            "mpjpe22_mm": {"mean": mean, "per_action": {"walking": mean}},
            "mpjpe32_mm": {"mean": {k: v * 0.9 for k, v in mean.items()}, "per_action": {}}}


@pytest.fixture
def run_factory(tmp_path: Path):
    """``run_factory(name, **kwargs)`` makes a run folder under ``tmp_path/runs``."""
    root = tmp_path / "runs"

    def factory(name: str, **kwargs: Any) -> Path:
        return make_run(root, name, **kwargs)

    factory.root = root  # type: ignore[attr-defined]
    return factory
