"""Run listing: discovery, crashed detection, summaries, filters, sorting, config differences, the CLI."""

import os
import socket

import pytest

from crisscross.cli.main import main
from crisscross.experiments.summaries import (
    STALE_AFTER_S,
    best_value,
    config_diff,
    filter_runs,
    flatten_config,
    load_run_summary,
    running_status,
    sort_runs,
)
from crisscross.runs.folders import find_runs, process_alive, read_epoch_rows


def test_find_runs_lists_every_state_without_descending(run_factory):
    a = run_factory("a", overrides=("optim.name=adam",))
    b = run_factory("b", status="failed", error="TrainingDiverged: nan")
    c = run_factory("c", status="interrupted")
    (a / "checkpoints").mkdir()
    (a / "checkpoints" / "config.yaml").write_text("not a run")  # inside a run: never listed
    runs = find_runs(run_factory.root)
    assert runs == sorted([a, b, c])
    assert find_runs(a) == [a]
    with pytest.raises(FileNotFoundError):
        find_runs(run_factory.root / "nope")


def test_running_run_with_dead_process_is_crashed(run_factory):
    crashed = run_factory("crashed", status="running")
    alive = run_factory("alive", status="running", pid=os.getpid())
    assert load_run_summary(crashed).status == "crashed"
    assert load_run_summary(alive).status == "running"
    assert process_alive(os.getpid()) and not process_alive(-1)
    assert load_run_summary(crashed).status_detail.startswith("process ")
    assert load_run_summary(run_factory("done")).status_detail is None


def test_running_run_on_another_host_is_crashed_once_silent(run_factory):
    """Another machine's process cannot be checked from here: a folder silent for STALE_AFTER_S means crashed."""
    fresh = run_factory("fresh", status="running", host="gpu-node-7", age_s=60.0)
    silent = run_factory("silent", status="running", host="gpu-node-7", age_s=STALE_AFTER_S + 600.0)
    s_fresh, s_silent = load_run_summary(fresh), load_run_summary(silent)
    assert s_fresh.status == "running" and "gpu-node-7" in s_fresh.status_detail
    assert s_silent.status == "crashed" and "gpu-node-7" in s_silent.status_detail
    status = {"status": "running", "host": "gpu-node-7", "pid": 1}
    assert running_status(fresh, status, now=os.path.getmtime(fresh / "metrics.jsonl") + STALE_AFTER_S + 1)[0] == \
        "crashed"  # the same folder, seen an hour later
    # on this machine the recorded process decides: alive is running, gone is crashed however fresh the write
    alive = run_factory("alive", status="running", pid=os.getpid(), host=socket.gethostname())
    gone = run_factory("gone", status="running", host=socket.gethostname())
    assert load_run_summary(alive).status == "running" and "alive" in load_run_summary(alive).status_detail
    assert load_run_summary(gone).status == "crashed"


def test_summary_fields(run_factory):
    run = run_factory("x", overrides=("model.name=simlpe", "train.epochs=3"), val=(120.0, 100.0, 105.0), params=77)
    s = load_run_summary(run)
    assert (s.model, s.dataset, s.parameters, s.epochs, s.epochs_total) == ("simlpe", "synthetic", 77, 3, 3)
    assert s.best == 100.0 and s.best_epoch == 2
    assert s.metric == "val/mpjpe22_avg_mm"
    assert s.epoch_time_s == pytest.approx(2.5) and s.peak_memory_mb == pytest.approx(503.0)
    assert s.train_time_s == pytest.approx(9.0)
    assert s.eval["mpjpe22_mm"]["mean"]["avg"] == 100.0
    rows = read_epoch_rows(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert best_value(rows, "val/mpjpe22_avg_mm", "last") == (105.0, 3)
    assert best_value(rows, "val/mpjpe22_avg_mm", "max") == (120.0, 1)
    assert best_value(rows, "missing") == (None, None)


def test_resumed_run_duplicate_epoch_rows_keep_the_last(run_factory):
    run = run_factory("r")
    with (run / "metrics.jsonl").open("a") as fh:
        fh.write('\n{"step": 30, "epoch": 3, "val/mpjpe22_avg_mm": 90.0}\n')
    rows = read_epoch_rows(run)
    assert len(rows) == 3 and rows[-1]["val/mpjpe22_avg_mm"] == 90.0


def test_filter_and_sort(run_factory):
    run_factory("adam", overrides=("optim.name=adam", "model.args.dim=32"), val=(90.0,), params=10)
    run_factory("sgd", overrides=("optim.name=sgd", "model.args.dim=64"), val=(150.0,), params=30)
    run_factory("bad", overrides=("optim.name=sgd",), status="failed", with_eval=False, val=(300.0,), params=20)
    runs = [load_run_summary(p) for p in find_runs(run_factory.root)]
    assert [r.path.parent.name for r in filter_runs(runs, ["optim.name=sgd"])] == ["bad", "sgd"]
    assert [r.path.parent.name for r in filter_runs(runs, ["model.args.dim=64"])] == ["sgd"]
    assert [r.path.parent.name for r in filter_runs(runs, ["model=stc*"], status="failed")] == ["bad"]
    assert filter_runs(runs, ["no.such.key=1"]) == []
    with pytest.raises(ValueError, match="KEY=VALUE"):
        filter_runs(runs, ["optim.name"])
    assert [r.path.parent.name for r in sort_runs(runs, "best")] == ["adam", "sgd", "bad"]
    assert [r.path.parent.name for r in sort_runs(runs, "-parameters")] == ["sgd", "bad", "adam"]
    assert [r.path.parent.name for r in sort_runs(runs, "mpjpe22_mm.mean.avg")] == ["adam", "sgd", "bad"]
    assert next(r.path.parent.name for r in sort_runs(runs, "val/mpjpe32_avg_mm")) == "adam"


def test_config_diff_names_dotted_keys():
    a = {"optim": {"name": "adam", "lr": 1e-3}, "model": {"args": {"dim": 32}}, "track": {"name": "a"}}
    b = {"optim": {"name": "sgd", "lr": 1e-3}, "model": {"args": {}}, "track": {"name": "b"}}
    diff = config_diff({"A": a, "B": b})
    assert diff == {"model.args.dim": {"A": 32, "B": None}, "optim.name": {"A": "adam", "B": "sgd"}}
    assert flatten_config(a)["optim.lr"] == 1e-3


def test_runs_cli_lists_and_compares(run_factory, capsys):
    a = run_factory("adam", overrides=("optim.name=adam",))
    b = run_factory("sgd", overrides=("optim.name=sgd",), status="running")
    assert main(["runs", str(run_factory.root)]) == 0
    out = capsys.readouterr().out
    assert "crashed" in out and "completed" in out and "adam/" in out
    assert main(["runs", str(run_factory.root), "--status", "crashed"]) == 0
    out = capsys.readouterr().out
    assert "sgd/" in out and "adam/" not in out
    assert main(["runs", "--compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "optim.name" in out and "adam" in out and "sgd" in out and "val MPJPE 80 ms" in out
    assert main(["runs", str(run_factory.root / "nope")]) == 2
