"""Sweep files: validation naming the key, trial configs, samplers, budget accounting, stale-trial reclaim, pruning."""

import functools
import importlib.util
import os
import socket
import threading
from pathlib import Path

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from conftest import dead_pid  # noqa: E402

from crisscross.experiments.sweep import (  # noqa: E402
    SweepError,
    budget_counts,
    load_sweep,
    make_pruner,
    make_sampler,
    open_storage,
    open_study,
    quiet_optuna,
    reclaim_trials,
    report_epoch,
    suggest_params,
    trial_config,
)
from crisscross.experiments.sweep.channel import Channel, open_channel  # noqa: E402
from crisscross.experiments.sweep.driver import _serve  # noqa: E402
from crisscross.experiments.sweep.trial import ObjectiveReporter, channel_reporter  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


def write_sweep(tmp_path: Path, body: dict, name: str = "s.yaml") -> Path:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"model": {"name": "simlpe", "args": {"depth": 2}},
                                                        "train": {"epochs": 2}}))
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"base": "base.yaml", **body}, sort_keys=False))
    return path


GRID = {"space": {"optim.lr": {"type": "loguniform", "values": [1e-3, 1e-2]},
                  "opt": {"type": "choice", "values": {"adam": {"optim.name": "adam"},
                                                       "sgdm": {"optim.name": "sgd", "optim.momentum": 0.9}}}},
        "sampler": "grid", "seeds": [0, 1]}


def test_grid_sweep_loads_and_builds_trial_configs(tmp_path):
    spec = load_sweep(write_sweep(tmp_path, {**GRID, "overrides": ["train.epochs=3"]}), ["train.batch_size=8"])
    assert spec.name == "s" and spec.sampler == "grid" and spec.grid_size() == 4 and spec.budget() == 4
    assert spec.budget(2) == 2 and spec.budget(10) == 4
    assert spec.metric == "val/mpjpe22_avg_mm" and spec.direction == "minimize" and spec.mode() == "min"
    cfg = trial_config(spec, {"optim.lr": 1e-2, "opt": "sgdm"}, seed=1)
    assert (cfg.optim.name, cfg.optim.momentum, cfg.optim.lr, cfg.seed) == ("sgd", 0.9, 1e-2, 1)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.progress) == (3, 8, False)
    assert cfg.model.args == {"depth": 2}


@pytest.mark.parametrize("body, fragment", [
    ({"spce": {}}, "spce: unknown key; allowed keys: name, base"),
    ({"space": {"optim.lrr": {"type": "choice", "values": [1]}}}, "space.optim.lrr: value 1: optim.lrr: unknown key"),
    ({"space": {"optim.lr": {"type": "choice", "values": [-1.0]}}},
     "space.optim.lr: value -1.0: optim.lr: must be > 0"),
    ({"space": {"optim.lr": {"type": "normal", "low": 1}}}, "space.optim.lr.type: got 'normal'"),
    ({"space": {"optim.lr": {"type": "uniform", "low": 1e-3}}}, "space.optim.lr.high: required"),
    ({"space": {"optim.lr": {"type": "loguniform", "low": 0.0, "high": 1.0}}}, "space.optim.lr.low: must be > 0"),
    ({"space": {"optim.lr": {"type": "uniform", "low": 1e-3, "high": 1e-2}}, "sampler": "grid"},
     "space.optim.lr: the grid sampler needs explicit 'values'"),
    ({"space": {"optim.lr": {"type": "uniform", "low": 1e-3, "high": 1e-2}}, "sampler": "tpe"}, "trials: required"),
    ({"space": {"train.epochs": {"type": "int", "low": 1, "high": 3}}, "sampler": "random", "trials": 2,
      "objective": {"metric": "val_loss"}}, "objective.metric: got 'val_loss'"),
    ({"space": {"train.epochs": {"type": "int", "low": 1, "high": 3}}, "sampler": "grid", "seeds": [1, 1]},
     "seeds: repeated seed"),
    ({"space": {"train.epochs": {"type": "int", "low": 1, "high": 3}}, "sampler": "grid", "pruner": "hyperband"},
     "pruner.type: got 'hyperband'"),
    ({"space": {"train.epochs": {"type": "int", "low": 1, "high": 3}}, "sampler": "grid",
      "overrides": {"optim.name": "lion"}}, "overrides: optim.name: got 'lion'"),
    ({"space": {"opt": {"type": "choice", "values": {"x": {"optim.nam": "sgd"}}}}, "sampler": "grid"},
     "space.opt: value 'x': optim.nam: unknown key"),
])
def test_bad_sweep_files_name_the_key(tmp_path, body, fragment):
    path = write_sweep(tmp_path, body)
    with pytest.raises(SweepError) as info:
        load_sweep(path)
    assert str(path) in str(info.value) and fragment in str(info.value)


def test_missing_files_are_clear(tmp_path):
    with pytest.raises(SweepError, match="does not exist"):
        load_sweep(tmp_path / "nope.yaml")
    (tmp_path / "s.yaml").write_text("base: missing.yaml\nspace: {seed: {type: choice, values: [1]}}\n")
    with pytest.raises(SweepError, match="base: config file .*missing.yaml does not exist"):
        load_sweep(tmp_path / "s.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_sweeps_load_for_synthetic_and_h36m(path):
    spec = load_sweep(path)
    assert spec.budget() >= 2
    assert "crisscross sweep configs/sweeps/" + path.name in path.read_text()  # header gives the launch command
    h36m = load_sweep(path, ["data.dataset=h36m", "data.data_dir=/data/h3.6m"])
    assert trial_config(h36m, {}, seed=0).data.dataset == "h36m"


def test_grid_sampler_runs_every_point_through_ask_and_tell(tmp_path):
    quiet_optuna()
    spec = load_sweep(write_sweep(tmp_path, GRID))
    study = optuna.create_study(sampler=make_sampler(spec), pruner=make_pruner(spec))
    seen = []
    for _ in range(spec.budget()):
        trial = study.ask()
        params = suggest_params(trial, spec)
        seen.append((params["optim.lr"], params["opt"]))
        study.tell(trial, 1.0)  # GridSampler.after_trial would call Study.stop() here and raise
    assert sorted(seen) == sorted((lr, o) for lr in (1e-3, 1e-2) for o in ("adam", "sgdm"))


def test_tpe_and_random_samplers_suggest_in_range(tmp_path):
    quiet_optuna()
    body = {"space": {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
                      "model.args.depth": {"type": "int", "low": 1, "high": 4, "step": 1},
                      "optim.weight_decay": {"type": "uniform", "low": 0.0, "high": 0.1}}, "trials": 3}
    for sampler in ("tpe", "random"):
        spec = load_sweep(write_sweep(tmp_path, {**body, "sampler": sampler}))
        study = optuna.create_study(sampler=make_sampler(spec))
        for _ in range(3):
            trial = study.ask()
            p = suggest_params(trial, spec)
            assert 1e-4 <= p["optim.lr"] <= 1e-2 and p["model.args.depth"] in (1, 2, 3, 4)
            assert trial_config(spec, p, 0).model.args["depth"] == p["model.args.depth"]
            study.tell(trial, 1.0)


def test_existing_study_needs_resume_and_the_same_space(tmp_path):
    quiet_optuna()
    spec = load_sweep(write_sweep(tmp_path, GRID))
    url = f"sqlite:///{tmp_path / 'study.db'}"
    open_study(spec, url, resume=False)
    with pytest.raises(SweepError, match="already exists.*--resume"):
        open_study(spec, url, resume=False)
    assert open_study(spec, url, resume=True).study_name == "s"
    changed = load_sweep(write_sweep(tmp_path, {**GRID, "seeds": [0]}))
    with pytest.raises(SweepError, match="different seeds"):
        open_study(changed, url, resume=True)


def test_reclaim_fails_trials_of_dead_sweeps_and_retries_them(tmp_path):
    quiet_optuna()
    spec = load_sweep(write_sweep(tmp_path, GRID))
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    study = open_study(spec, storage, resume=False)
    host = socket.gethostname()
    params = []
    for outcome in ("dead-driver", "diverged", "completed"):
        t = study.ask()
        params.append(suggest_params(t, spec))
        t.set_user_attr("host", host)
        t.set_user_attr("driver_pid", dead_pid())
        if outcome == "diverged":
            t.set_user_attr("outcome", "diverged")
            study.tell(t, state=optuna.trial.TrialState.FAIL)
        elif outcome == "completed":
            study.tell(t, 3.0)
    alive = study.ask()  # a trial of a live sweep on this machine is left alone
    suggest_params(alive, spec)
    alive.set_user_attr("host", host)
    alive.set_user_attr("driver_pid", os.getppid())
    assert budget_counts(study) == (2, 2, 0)  # the diverged trial uses up budget; nothing counts the stale one

    assert reclaim_trials(study, storage, budget=4, driver_id="me", wait_s=0.0) == [0]
    trials = study.get_trials()
    assert trials[0].state == optuna.trial.TrialState.FAIL and trials[0].user_attrs["outcome"] == "stale"
    assert trials[3].state == optuna.trial.TrialState.RUNNING
    retry = trials[4]
    assert retry.state == optuna.trial.TrialState.WAITING and retry.user_attrs["retry_of"] == 0
    assert budget_counts(study) == (2, 1, 1)
    assert reclaim_trials(study, storage, budget=4, wait_s=0.0) == []  # one retry per stale trial
    asked = study.ask()
    assert suggest_params(asked, spec) == params[0]  # the retry runs the stale trial's parameters


def _study_with_a_finished_trial():
    quiet_optuna()
    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    done = study.ask()
    for e in (1, 2, 3):
        done.report(10.0, e)
    study.tell(done, 10.0)
    return study


def test_epoch_callback_reports_and_prunes():
    study = _study_with_a_finished_trial()
    trial = study.ask()
    reporter = ObjectiveReporter(functools.partial(report_epoch, trial), "val/mpjpe22_avg_mm", prune=True)
    assert reporter(1, {"epoch": 1, "train/epoch_loss": 1.0}) is None  # no validation in this row: nothing to report
    assert reporter(1, {"epoch": 1, "val/mpjpe22_avg_mm": 50.0}) == "pruned"  # fit stops after the checkpoint
    assert reporter.pruned_at == 1
    assert study.get_trials()[1].intermediate_values == {1: 50.0}


def test_epoch_callback_asks_the_driver_over_the_channel():
    study = _study_with_a_finished_trial()
    trial = study.ask()
    driver_end, fds = open_channel()
    child_end = Channel(*fds)
    served = {}
    server = threading.Thread(target=lambda: served.update(result=_serve(trial, driver_end)))
    server.start()
    reporter = ObjectiveReporter(channel_reporter(child_end), "val/mpjpe22_avg_mm", prune=False)
    assert reporter(1, {"epoch": 1, "val/mpjpe22_avg_mm": 50.0}) is None  # reported, never pruned without a pruner
    child_end.send({"attrs": {"run_dir": "/tmp/x"}})
    child_end.send({"result": {"state": "PRUNED", "value": None, "attrs": {}}})
    child_end.close()
    server.join(10)
    driver_end.close()
    assert served["result"]["state"] == "PRUNED"
    frozen = study.get_trials()[1]
    assert frozen.intermediate_values == {1: 50.0} and frozen.user_attrs["run_dir"] == "/tmp/x"
    gone_end, gone_fds = open_channel()
    orphan = Channel(*gone_fds)
    gone_end.close()  # the driver is gone: the run stops at this epoch's end, as interrupted
    assert ObjectiveReporter(channel_reporter(orphan), "val/x", prune=True)(1, {"val/x": 1.0}) == "interrupted"
    orphan.close()


def test_sweep_cli_errors_are_one_line(tmp_path, capsys):
    from crisscross.cli.main import main

    bad = write_sweep(tmp_path, {"space": {"optim.lrr": {"type": "choice", "values": [1]}}, "sampler": "grid"})
    assert main(["sweep", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "space.optim.lrr" in err and str(bad) in err
    good = write_sweep(tmp_path, GRID, name="g.yaml")
    assert main(["sweep", str(good), "--summary", "--out", str(tmp_path / "none")]) == 2
    assert "run the sweep first" in capsys.readouterr().err
    assert main(["sweep", str(good), "--seeds", "1,x"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_a_missing_postgresql_driver_names_the_extra_and_hides_the_password():
    pytest.importorskip("optuna")
    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("the PostgreSQL driver is installed here")
    with pytest.raises(SweepError, match=r"crisscross\[postgres\]") as err:
        open_storage("postgresql://crisscross:s3cret@localhost:5432/sweeps")
    assert "s3cret" not in str(err.value) and "crisscross:***@localhost" in str(err.value)
    assert "\n" not in str(err.value)
