"""Faults injected as a user meets them: kill -9 at random moments, a full disk, a damaged checkpoint, Ctrl-C.

Each test counts what it injected and what was lost; ``-s`` prints the counts. docs/reliability.md holds the table.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crisscross.config import load_config
from crisscross.config.load import QUICKSTART_CONFIG
from crisscross.runs.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from crisscross.training.loop import fit

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TINY = ["model.name=stcformer", "model.args.dim=16", "model.args.enc_blocks=1", "model.args.dec_blocks=1",
        "train.batch_size=32", "train.progress=false", "train.log_every_steps=2", "train.num_threads=1",
        "track.tensorboard=false", "seed=5", "train.deterministic=true"]
RUN = [*TINY, "train.epochs=2", "train.epoch_fraction=0.06"]
KILLS = 20


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crisscross.cli.main", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model_state"]


def test_kill_9_at_random_moments_then_resume_ends_bit_identical(tmp_path: Path) -> None:
    # the command line starts from the quick-start config: the reference does too
    reference = fit(load_config(QUICKSTART_CONFIG, [*RUN, f"track.root={tmp_path / 'reference'}"]))
    root = tmp_path / "killed"
    first = subprocess.Popen(_command("train", *RUN, f"track.root={root}", "train.checkpoint_every_s=0.2",
                                      "--no-baseline"), env=_env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not list(root.glob("*/*/checkpoints/last.pt")):  # a run exists once its first checkpoint does
        assert first.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    run_dir = next(root.glob("*/*"))
    rng = random.Random(0)
    kills, completed = 1, False
    while not completed:
        process = subprocess.Popen(_command("train", "--resume", str(run_dir), "--no-baseline"), env=_env(),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if kills < KILLS:
            try:
                process.wait(timeout=rng.uniform(0.5, 4.5))  # startup takes a few seconds: some kills land there
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                continue
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()[-2000:]
        completed = True
    assert kills == KILLS
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "completed" and status["step"] == reference.steps
    full, resumed = _weights(reference.run_dir), _weights(run_dir)
    for key in full:
        torch.testing.assert_close(resumed[key], full[key], rtol=0, atol=0, msg=key)
    print(f"\nkill -9: {kills} kills, the resumed run matches the uninterrupted one bit for bit "
          f"({reference.steps} updates)")


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "last.pt", {"model_state": {"w": torch.ones(3)}, "step": 1})

    def disk_full(obj, fh, *args, **kwargs):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(path, {"model_state": {"w": torch.zeros(3)}, "step": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["step"] == 1  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # and no partial file is left


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(reference run, a run stopped two updates before the end)``, made once for the damage tests."""
    root = tmp_path_factory.mktemp("damaged")
    args = [*RUN, "train.checkpoint_every_s=null"]
    reference = fit(load_config(None, [*args, f"track.root={root / 'reference'}"]))
    part = fit(load_config(None, [*args, f"track.root={root / 'part'}"]), stop_after_steps=reference.steps - 2)
    return reference.run_dir, part.run_dir


@pytest.mark.parametrize("damage", ["truncated", "zeroed", "deleted"])
def test_a_damaged_last_checkpoint_resumes_from_best(tmp_path: Path, stopped_run: tuple[Path, Path],
                                                     damage: str) -> None:
    reference, stopped = stopped_run
    run_dir = tmp_path / "run"
    shutil.copytree(stopped, run_dir)
    last = run_dir / "checkpoints" / "last.pt"
    data = last.read_bytes()
    if damage == "truncated":
        last.write_bytes(data[: len(data) // 3])
    elif damage == "zeroed":
        last.write_bytes(bytes(len(data)))
    else:
        last.unlink()
    resumed = fit(None, resume=run_dir)  # from best.pt, the end of epoch 1: redoes the lost updates exactly
    assert resumed.steps == load_checkpoint(reference / "checkpoints" / "last.pt")["train_state"]["step"]
    full, again = _weights(reference), _weights(run_dir)
    for key in full:
        torch.testing.assert_close(again[key], full[key], rtol=0, atol=0, msg=key)


def test_resume_without_any_checkpoint_says_how_to_start_again(tmp_path: Path, capsys) -> None:
    from crisscross.cli.main import main

    run_dir = tmp_path / "quickstart" / "20261130-000000-abcdef"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("seed: 0\n")
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "stopped before its first checkpoint" in err and "crisscross train --config" in err and err.count("\n") == 1
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointError, match="no readable checkpoint"):
        fit(None, resume=run_dir)


def test_ctrl_c_checkpoints_and_exits_130(tmp_path: Path) -> None:
    process = subprocess.Popen(_command("train", *TINY, "train.epochs=50", f"track.root={tmp_path}",
                                        "--no-baseline"), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("*/*/status.json")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(3.0)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130
    run_dir = next(tmp_path.glob("*/*"))
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    assert b"resume with: crisscross train --resume" in out
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["train_state"]["step"] > 0
