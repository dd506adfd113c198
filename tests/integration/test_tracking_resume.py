"""A run with every tracker on, killed with SIGKILL three times and resumed: each tracker holds every step once.

TensorBoard and metrics.jsonl hold every step (events and rows after the resumed checkpoint are purged), MLflow
every step (the store's own last step decides what to skip), and W&B every step once across its offline
segments, although its service loses what it had buffered when the process is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from crisscross.runs.checkpoint import load_checkpoint
from crisscross.training.tracking import read_metrics

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
RUN = ["model.name=stcformer", "model.args.dim=16", "model.args.enc_blocks=1", "model.args.dec_blocks=1",
       "train.batch_size=32", "train.log_every_steps=1", "train.num_threads=1", "seed=5",
       "train.deterministic=true", "train.epochs=2", "train.epoch_fraction=0.06", "train.checkpoint_every_s=0.3",
       "track.tensorboard=true", "track.wandb=true", "track.mlflow=true", "track.project=crisscross-tests"]
KILLS = 3


def _train(wandb_home: Path, *args: str) -> subprocess.Popen:
    # Not WANDB_SERVICE: W&B stores its service's address there once this process has used W&B (an earlier test),
    # and a child that inherits it shares that service, which still holds the killed child's run ID on resume.
    inherited = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env = {**inherited, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src"), "WANDB_SILENT": "true",
           **{var: str(wandb_home / var.lower()) for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")}}
    return subprocess.Popen([sys.executable, "-m", "crisscross.cli.main", "train", *args, "--no-baseline"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _logged_past_checkpoint(run_dir: Path, pid: int, rows_past: int) -> bool:
    """True once process ``pid`` has logged ``rows_past`` steps after the last checkpoint (what a kill must not
    double)."""
    try:
        if json.loads((run_dir / "status.json").read_text())["pid"] != pid:
            return False  # a resumed process that has not started yet: the file still shows the killed one's rows
        saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")["train_state"]["step"]
    except Exception:  # not written yet
        return False
    steps = [r["step"] for r in read_metrics(run_dir) if "train/loss" in r]
    return bool(steps) and max(steps) >= saved + rows_past


def test_resume_after_kill_9_logs_no_step_twice_in_any_tracker(tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("wandb")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from crisscross.training.wandb_offline import read_offline_run

    root = tmp_path / "runs"
    process = _train(tmp_path, *RUN, f"track.root={root}")
    run_dir = None
    for kill in range(KILLS + 1):
        if kill > 0:
            process = _train(tmp_path, "--resume", str(run_dir))
        if kill == KILLS:
            _, err = process.communicate(timeout=600)
            assert process.returncode == 0, err.decode()[-2000:]
            break
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, process.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            run_dir = run_dir or next(iter(root.glob("*/*/checkpoints/last.pt")), Path()).parent.parent
            if run_dir != Path(".") and _logged_past_checkpoint(run_dir, process.pid, 2):
                break
            run_dir = None if run_dir == Path(".") else run_dir
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait()

    total = json.loads((run_dir / "status.json").read_text())["step"]
    rows = read_metrics(run_dir)
    pairs = Counter((key, r["step"]) for r in rows for key in r if key != "step")
    assert max(pairs.values()) == 1, [p for p, n in pairs.items() if n > 1][:5]
    jsonl_loss = {r["step"]: r["train/loss"] for r in rows if "train/loss" in r}
    assert sorted(jsonl_loss) == list(range(1, total + 1))

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tb_loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert [s for s, _ in tb_loss] == list(range(1, total + 1))
    assert all(v == pytest.approx(jsonl_loss[s], rel=1e-6) for s, v in tb_loss)

    ids = json.loads((run_dir / "trackers.json").read_text())
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    ml_loss = [(m.step, m.value) for m in client.get_metric_history(ids["mlflow"], "train/loss")]
    assert sorted(s for s, _ in ml_loss) == list(range(1, total + 1))
    # the steps logged before a kill and recomputed after it are bit-identical (exact resume)
    assert all(v == jsonl_loss[s] for s, v in ml_loss)
    assert client.get_run(ids["mlflow"]).info.status == "FINISHED"

    segments = [read_offline_run(f) for f in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))]
    # a killed segment's log may be empty (the service had buffered it all); the others are the one run
    assert len(segments) == KILLS + 1 and {s["run_id"] for s in segments} - {None} == {ids["wandb"]}
    wb_loss = [(row["_step"], row["train/loss"]) for s in segments for row in s["history"] if "train/loss" in row]
    # every step once, in order: what a killed segment's service had not written is replayed from metrics.jsonl
    assert [s for s, _ in wb_loss] == list(range(1, total + 1))
    assert all(v == jsonl_loss[s] for s, v in wb_loss)
    assert "final/mpjpe22_avg_mm" in segments[-1]["summary"]
