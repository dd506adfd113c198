"""TensorBoard tracking writes real event files that TensorBoard's own reader reads back."""

import math

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from crisscross.config import load_config
from crisscross.runs.folders import read_epoch_rows
from crisscross.training.tracking import TensorBoardTracker, read_metrics


def scalars(tb_dir):
    acc = EventAccumulator(str(tb_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return acc, {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_tracker_round_trip(tmp_path):
    tracker = TensorBoardTracker(tmp_path)
    tracker.log({"train/loss": 0.5, "train/lr": 1e-3, "flag": True, "note": "x"}, step=1)
    tracker.log({"train/loss": 0.25, "val/mpjpe22_avg_mm": 97.5}, step=2)
    tracker.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    _, got = scalars(tmp_path / "tb")
    assert got["train/loss"] == [(1, 0.5), (2, 0.25)]
    assert got["val/mpjpe22_avg_mm"] == [(2, 97.5)]
    assert "flag" not in got and "note" not in got  # only numeric scalars


@pytest.mark.integration
def test_fit_writes_tensorboard_events_matching_metrics_jsonl(tmp_path):
    from crisscross.training.loop import fit

    cfg = load_config(None, ["model.name=simlpe", "model.args.depth=2", "train.epochs=2", "train.batch_size=16",
                             "train.epoch_fraction=0.005", "train.log_every_steps=2", "train.progress=false",
                             "sched.name=constant", f"track.root={tmp_path}", "track.tensorboard=true"])
    result = fit(cfg)
    _, got = scalars(result.run_dir / "tb")
    for tag in ("train/loss", "train/lr", "time/wall_s", "train/epoch_loss", "time/epoch_s", "memory/peak_mb",
                "val/mpjpe22_avg_mm", "val/mpjpe32_avg_mm"):
        assert tag in got, (tag, sorted(got))
    epochs = read_epoch_rows(result.run_dir)
    assert [s for s, _ in got["val/mpjpe22_avg_mm"]] == [r["step"] for r in epochs]
    for (_, v), row in zip(got["val/mpjpe22_avg_mm"], epochs):
        assert math.isclose(v, row["val/mpjpe22_avg_mm"], rel_tol=1e-6)
    step_rows = [r for r in read_metrics(result.run_dir) if "train/loss" in r]
    assert len(got["train/loss"]) == len(step_rows)
