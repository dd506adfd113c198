"""Every report figure is readable: human axis names with units, legends of the differing settings, status apart."""

import os
import re

import pytest

pytest.importorskip("matplotlib")

from crisscross.experiments.report import (
    CURVE_FILES,
    SETTINGS_FILE,
    build_report,
    default_labels,
    report_figures,
    short_names,
    write_report,
)
from crisscross.experiments.summaries import load_run_summary

TIMESTAMP = re.compile(r"\d{8}-\d{6}")  # a run folder's name, e.g. 20261130-061843
RAW_KEY = re.compile(r"\b(val|train|test|time|memory)/\w")  # a log key such as val/mpjpe22_avg_mm
UNIT = re.compile(r"\[[^\]]+\]")

# (lr, seed, status, best validation value); the crashed run has the lowest value but must not be "best"
SWEEP = [(3e-4, 0, "completed", 95.0), (3e-4, 1, "completed", 97.0), (1e-3, 0, "completed", 90.0),
         (1e-3, 1, "running", 92.0), (1e-2, 0, "crashed", 50.0), (1e-2, 1, "failed", 300.0)]
LABELS = {"lr=3e-4 seed=0", "lr=3e-4 seed=1", "lr=1e-3 seed=0", "lr=1e-3 seed=1", "lr=0.01 seed=0",
          "lr=0.01 seed=1"}


@pytest.fixture
def sweep_runs(run_factory):
    runs = []
    for lr, seed, status, val in SWEEP:
        kwargs = {"running": {"status": "running", "pid": os.getpid()},  # alive: this test process
                  "crashed": {"status": "running"},  # marked running, but its recorded process is gone
                  "failed": {"status": "failed", "error": "TrainingDiverged: loss is nan"}}.get(status, {})
        runs.append(run_factory(f"lr{lr}-s{seed}", overrides=(f"optim.lr={lr}", f"seed={seed}"), val=(val + 10, val),
                                epochs=2 if status != "completed" else 3, with_eval=status == "completed",
                                **kwargs))
    return runs


def texts(fig):
    """Every label, title, tick-free text and legend entry of a figure."""
    out = [fig.get_suptitle()] if fig.get_suptitle() else []
    for ax in fig.axes:
        out += [ax.get_xlabel(), ax.get_ylabel(), ax.get_title()]
        if ax.get_legend() is not None:
            out += [t.get_text() for t in ax.get_legend().get_texts()]
    for legend in fig.legends:
        out += [t.get_text() for t in legend.get_texts()]
    return [t for t in out if t]


def legend_texts(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def line(ax, label):
    """The line whose legend entry is ``label``."""
    return next(ln for ln in ax.get_lines() if ln.get_label() == label)


def test_every_figure_names_quantities_and_units(sweep_runs):
    figs = report_figures(build_report(sweep_runs))
    assert set(figs) == {*CURVE_FILES, SETTINGS_FILE}
    for name, fig in figs.items():
        visible = [ax for ax in fig.axes if ax.get_visible()]
        assert visible, name
        for ax in visible:
            assert ax.get_xlabel().strip(), name
            if name in CURVE_FILES:
                assert UNIT.search(ax.get_ylabel()), (name, ax.get_ylabel())  # a metric axis: its unit
                assert "mm" in ax.get_ylabel(), (name, ax.get_ylabel())  # positional errors in millimetres
        for text in texts(fig):
            assert not RAW_KEY.search(text), (name, text)
            assert not TIMESTAMP.search(text), (name, text)
    assert figs["val_vs_epoch.png"].axes[0].get_xlabel() == "epoch"
    assert figs["val_vs_epoch.png"].axes[0].get_ylabel() == "validation MPJPE (predicted joints) [mm]"
    assert figs["train_loss_vs_time.png"].axes[0].get_xlabel() == "wall-clock training time [s]"
    settings = figs[SETTINGS_FILE].axes[0]
    assert settings.get_xlabel() == "lr (optim.lr)"  # the sweep parameter by name
    assert UNIT.search(settings.get_ylabel()) and "best validation MPJPE" in settings.get_ylabel()


def test_training_loss_in_metres_is_shown_in_millimetres(sweep_runs, run_factory):
    rep = build_report(sweep_runs)
    ax = report_figures(rep)["train_loss_vs_epoch.png"].axes[0]
    assert ax.get_ylabel() == "training loss: MPJPE [mm] (logged in m, \N{MULTIPLICATION SIGN}1000)"
    assert list(line(ax, "lr=3e-4 seed=0").get_ydata()) == pytest.approx([200.0, 100.0, 200.0 / 3])  # 0.2/e m
    # a loss with a further term (STCFormer's flag loss) is not a distance: its logged position term is shown
    flagged = run_factory("flag", overrides=("optim.lr=0.1",), loss_extra=0.05)
    mse = run_factory("mse", overrides=("train.loss=mse",))
    axes = report_figures(build_report([*sweep_runs[:1], flagged, mse]))["train_loss_vs_epoch.png"].axes
    assert [a.get_ylabel() for a in axes] == ["training MPJPE [mm] (loss \N{MULTIPLICATION SIGN}1000, or its "
                                              "position term)", "training loss: MSE of positions [m²]"]
    term = next(ln for ln in axes[0].get_lines() if ln.get_label().endswith("position term"))
    assert list(term.get_ydata()) == pytest.approx([200.0, 100.0, 200.0 / 3])  # train/epoch_mpjpe_mm, not loss
    assert [ln.get_label() for ln in axes[1].get_lines()] == ["lr=1e-3 loss=mse"]
    assert list(axes[1].get_lines()[0].get_ydata()) == pytest.approx([0.2, 0.1, 0.2 / 3])  # m², as logged


def test_legends_name_differing_settings_and_status(sweep_runs):
    rep = build_report(sweep_runs)
    assert set(rep.labels) == LABELS
    ax = report_figures(rep)["val_vs_epoch.png"].axes[0]
    assert set(legend_texts(ax)) == {"lr=3e-4 seed=0", "lr=3e-4 seed=1", "lr=1e-3 seed=0",
                                     "lr=1e-3 seed=1 (running)", "lr=0.01 seed=0 (crashed)",
                                     "lr=0.01 seed=1 (failed)"}
    done, running = line(ax, "lr=1e-3 seed=0"), line(ax, "lr=1e-3 seed=1 (running)")
    crashed = line(ax, "lr=0.01 seed=0 (crashed)")
    assert (done.get_linestyle(), running.get_linestyle(), crashed.get_linestyle()) == ("-", "--", ":")
    assert done.get_color() == running.get_color() != crashed.get_color()  # one colour per configuration
    assert done.get_marker() != running.get_marker()  # markers tell the seeds apart
    ends = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]  # a cross where each early end happened
    assert sorted((ln.get_color(), list(ln.get_xdata())) for ln in ends) == [(crashed.get_color(), [2.0])] * 2


def test_status_kept_apart_in_tables_and_best(sweep_runs, tmp_path):
    rep = build_report(sweep_runs)
    by_run = {r["run"]: r for r in rep.table}
    assert by_run["lr=0.01 seed=0"]["status"] == "crashed" and by_run["lr=1e-3 seed=1"]["status"] == "running"
    assert "process" in by_run["lr=0.01 seed=0"]["status_detail"]
    ranks = {r["run"]: r["rank"] for r in rep.table}
    assert ranks == {"lr=1e-3 seed=0": 1, "lr=3e-4 seed=0": 2, "lr=3e-4 seed=1": 3, "lr=1e-3 seed=1": None,
                     "lr=0.01 seed=0": None, "lr=0.01 seed=1": None}  # the crashed run's 50 mm is not ranked
    groups = {g["configuration"]: g for g in rep.groups}
    assert (groups["lr=1e-3"]["runs"], groups["lr=1e-3"]["unfinished"]) == (1, 1)
    assert groups["lr=1e-3"]["best_val_mean"] == 90.0  # the running seed's 92 mm is left out
    assert groups["lr=0.01"]["runs"] == 0 and groups["lr=0.01"]["best_val_mean"] is None
    fig = report_figures(rep)[SETTINGS_FILE]
    ax = fig.axes[0]
    best = next(c for c in ax.collections if c.get_label() == "best completed run")
    assert best.get_offsets().tolist() == [[1e-3, 90.0]]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"completed", "best completed run",
                                                                  "running (so far)", "ended early (so far)"}
    md = (write_report(sweep_runs, tmp_path / "rep") / "report.md").read_text()
    completed, rest = md.split("## Completed runs")[1].split("## Running and unfinished runs")
    assert "| 1      | lr=1e-3 seed=0" in completed and "crashed" not in completed and "seed=1 " in completed
    unfinished = rest.split("## ")[0]
    for fragment in ("lr=0.01 seed=0 | crashed", "lr=1e-3 seed=1 | running", "TrainingDiverged"):
        assert fragment in unfinished, fragment
    assert not TIMESTAMP.search(md.split("## Run folders")[0])  # folder names only in the list of paths


def test_labels_short_unambiguous_and_never_a_folder_name(run_factory):
    assert short_names(["model.name", "optim.name", "optim.lr", "model.args.dim", "data.dim", "seed"]) == {
        "model.name": "model", "optim.name": "optim", "optim.lr": "lr", "model.args.dim": "model.dim",
        "data.dim": "data.dim", "seed": "seed"}
    a = run_factory("a", overrides=("model.name=simlpe",))
    b = run_factory("b", overrides=("model.name=stcformer", "optim.name=sgd", "optim.lr=3e-4", "seed=1"))
    assert default_labels([load_run_summary(p) for p in (a, b)]) == [
        "model=simlpe optim=adam lr=1e-3 seed=0", "model=stcformer optim=sgd lr=3e-4 seed=1"]
    same = [run_factory("c"), run_factory("d", status="running")]  # nothing differs: the model name
    assert default_labels([load_run_summary(p) for p in same]) == ["stcformer #1", "stcformer #2"]
    assert default_labels([load_run_summary(same[0])]) == ["stcformer"]
