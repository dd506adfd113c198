"""Sweeps end to end on the embedded data: parallel workers on one SQLite study, SIGKILL + --resume, a diverging
trial recorded as failed, pruning that stops the engine, and a report of two real runs."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from crisscross.experiments.sweep import load_sweep, open_study, quiet_optuna, suggest_params  # noqa: E402
from crisscross.runs.folders import process_alive, read_epoch_rows  # noqa: E402

pytestmark = pytest.mark.integration

BASE = {"model": {"name": "simlpe", "args": {"depth": 2}}, "optim": {"name": "adam", "lr": 1e-3},
        "sched": {"name": "constant"}, "track": {"tensorboard": False},
        "train": {"epochs": 2, "batch_size": 16, "epoch_fraction": 0.01, "log_every_steps": 2, "num_threads": 1}}
TIMEOUT_S = 420


def write_sweep(tmp_path: Path, body: dict) -> Path:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(BASE))
    path = tmp_path / f"{body.get('name', 'sweep')}.yaml"
    path.write_text(yaml.safe_dump({"base": "base.yaml", "objective": "val/mpjpe22_avg_mm", **body}, sort_keys=False))
    return path


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "crisscross.cli.main", *args]


def study_of(out: Path, name: str) -> "optuna.Study":
    quiet_optuna()
    return optuna.load_study(study_name=name, storage=f"sqlite:///{out / 'study.db'}")


def states(study: "optuna.Study") -> list[str]:
    return [t.state.name for t in study.get_trials()]


@pytest.mark.slow
def test_two_workers_share_a_study_survive_sigkill_and_resume(tmp_path):
    sweep = write_sweep(tmp_path, {"name": "kill", "overrides": {"train.epochs": 12, "train.epoch_fraction": 0.02},
                                   "space": {"optim.lr": {"type": "choice", "values": [1e-3, 2e-3]}},
                                   "sampler": "grid"})
    out = tmp_path / "out"
    log = (tmp_path / "first.log").open("w")
    proc = subprocess.Popen(cli("sweep", str(sweep), "--workers", "2", "--out", str(out)), cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while True:  # both trials train at the same time: wait until each run has logged an epoch
            runs = sorted(out.glob("runs/trial*/*"))
            if len(runs) == 2 and all(read_epoch_rows(r) for r in runs):
                break
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "trials did not start"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    study = study_of(out, "kill")
    pids = [t.user_attrs["pid"] for t in study.get_trials()]
    end = time.monotonic() + 60  # the orphaned trial processes notice and stop (checkpoint, report interrupted)
    while any(process_alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.3)
    assert not any(process_alive(p) for p in pids), "trial processes outlived the killed sweep"
    for t in study_of(out, "kill").get_trials():  # stopped gracefully, or left running for the resume to reclaim
        assert t.state.name == "RUNNING" or (t.state.name == "FAIL" and t.user_attrs["outcome"] == "interrupted")

    res = subprocess.run(cli("sweep", str(sweep), "--workers", "2", "--out", str(out), "--resume"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "retrying stale/interrupted trials" in res.stdout
    study = study_of(out, "kill")
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 2 and sorted(t.params["optim.lr"] for t in complete) == [1e-3, 2e-3]
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert len(failed) == 2 and {t.user_attrs["outcome"] for t in failed} <= {"interrupted", "stale"}
    assert {t.user_attrs["retry_of"] for t in complete} == {0, 1}
    for t in complete:  # the retry continued the killed run folder from its checkpoint
        original = trials[t.user_attrs["retry_of"]]
        run = Path(t.user_attrs["run_dir"])
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == "completed" and len(read_epoch_rows(run)) == 12
        if (Path(original.user_attrs["run_dir"]) / "checkpoints" / "last.pt").exists():
            assert run == Path(original.user_attrs["run_dir"]) and status["resumed"] is True
    summary = (out / "summary.md").read_text()
    assert ("complete" in summary and "interrupted" in summary) or "stale" in summary
    # the budget is used up: running again changes nothing
    again = subprocess.run(cli("sweep", str(sweep), "--out", str(out), "--resume"), cwd=tmp_path,
                           capture_output=True, text=True, timeout=TIMEOUT_S)
    assert again.returncode == 0 and len(study_of(out, "kill").get_trials()) == 4


def test_diverging_trial_is_failed_and_the_sweep_goes_on(tmp_path):
    sweep = write_sweep(tmp_path, {"name": "div", "overrides": {"optim.name": "sgd"},
                                   "space": {"optim.lr": {"type": "choice", "values": [1e-3, 1e6]}},
                                   "sampler": "grid"})
    out = tmp_path / "out"
    res = subprocess.run(cli("sweep", str(sweep), "--workers", "2", "--out", str(out)), cwd=tmp_path,
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert res.returncode == 0, res.stdout + res.stderr
    trials = {t.params["optim.lr"]: t for t in study_of(out, "div").get_trials()}
    assert len(trials) == 2
    bad, good = trials[1e6], trials[1e-3]
    assert bad.state.name == "FAIL" and bad.user_attrs["outcome"] == "diverged"
    assert "TrainingDiverged" in bad.user_attrs["error"]
    assert json.loads((Path(bad.user_attrs["run_dir"]) / "status.json").read_text())["status"] == "failed"
    assert good.state.name == "COMPLETE" and good.value > 0
    assert "diverged" in res.stdout and "complete" in res.stdout
    with (out / "configurations.csv").open() as fh:
        rows = {float(r["optim.lr"]): r for r in csv.DictReader(fh)}
    assert rows[1e6]["failed"] == "1" and rows[1e-3]["completed"] == "1"


def test_pruned_trial_stops_its_run(tmp_path):
    sweep = write_sweep(tmp_path, {"name": "prune", "overrides": {"train.epochs": 30},
                                   "space": {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}},
                                   "sampler": "random", "trials": 2,
                                   "pruner": {"type": "median", "startup_trials": 1, "warmup_epochs": 0}})
    out = tmp_path / "out"
    out.mkdir()
    quiet_optuna()
    spec = load_sweep(sweep)
    study = open_study(spec, f"sqlite:///{out / 'study.db'}", resume=False)
    unbeatable = study.ask()  # a finished trial at 1 mm every epoch: any real run is behind the median
    suggest_params(unbeatable, spec)
    for epoch in range(1, 31):
        unbeatable.report(1.0, epoch)
    study.tell(unbeatable, 1.0)
    res = subprocess.run(cli("sweep", str(sweep), "--out", str(out), "--resume"), cwd=tmp_path,
                         capture_output=True, text=True, timeout=TIMEOUT_S)
    assert res.returncode == 0, res.stdout + res.stderr
    pruned = study_of(out, "prune").get_trials()[1]
    assert pruned.state.name == "PRUNED" and pruned.user_attrs["pruned_at_epoch"] >= 1
    run = Path(pruned.user_attrs["run_dir"])
    assert json.loads((run / "status.json").read_text())["status"] == "pruned"
    assert len(read_epoch_rows(run)) < 30  # the engine stopped early
    assert (run / "checkpoints" / "last.pt").exists()
    assert "pruned at epoch" in res.stdout


def test_report_of_two_real_runs(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    from crisscross.config import load_config
    from crisscross.experiments.report import CURVE_FILES, write_report
    from crisscross.training.loop import fit

    runs = []
    for lr in ("1e-3", "3e-3"):
        overrides = [f"{k}={v}" for k, v in (("model.name", "simlpe"), ("model.args.depth", 2), ("train.epochs", 2),
                                             ("train.batch_size", 16), ("train.epoch_fraction", 0.005),
                                             ("train.progress", "false"), ("track.tensorboard", "false"),
                                             ("optim.lr", lr), ("track.root", tmp_path / "runs"))]
        runs.append(fit(load_config(None, overrides)).run_dir)
    out = write_report(runs, tmp_path / "report")
    with (out / "report.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["run"] for r in rows] == ["lr=1e-3", "lr=3e-3"]
    for r in rows:
        assert int(r["params"]) > 0 and float(r["s_per_epoch"]) > 0 and float(r["peak_memory_mb"]) > 0
        assert r["memory_kind"] == "process RSS" and float(r["best_val"]) > 0 and r["epochs"] == "2"
        assert float(r["val_80ms"]) < float(r["val_1000ms"]) and float(r["val_avg"]) > 0
    md = (out / "report.md").read_text()
    assert "| optim.lr |" in md.replace("config key", "optim.lr").replace("| optim.lr         |", "| optim.lr |") \
        or "optim.lr" in md
    for name in CURVE_FILES:
        img = mpimg.imread(out / name)
        assert img.shape[0] >= 200 and img.shape[1] >= 200 and img[..., :3].std() > 0.05
        assert len(set(map(tuple, img[..., :3].reshape(-1, 3).round(2)))) > 10  # curves, text: not blank
    assert os.path.getsize(out / "report.html") > 1000
