"""Plot functions: tidy rows in, Figure out, optional Axes, no pyplot state, lazily imported matplotlib."""

import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from crisscross.analysis.plots import (
    axis_label,
    metric_label,
    new_figure,
    plot_bars,
    plot_by_setting,
    plot_curves,
    save_figure,
    short_value,
)

ROWS = [{"run": r, "epoch": e, "time/wall_s": 2.0 * e * (i + 1), "loss": 1.0 / (e + i)}
        for i, r in enumerate(("a", "b")) for e in range(1, 5)] + [{"run": "a", "epoch": 5, "loss": None}]


def test_plot_curves_overlays_groups_and_returns_figure(tmp_path):
    fig = plot_curves(ROWS, "epoch", "loss", title="t", logy=True)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
    assert list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]  # the None row is skipped
    assert ax.get_yscale() == "log" and ax.get_title() == "t"
    path = save_figure(fig, tmp_path / "c.png")
    assert path.stat().st_size > 1000


def test_plot_into_given_axes_and_bars():
    fig = new_figure()
    ax1, ax2 = fig.subplots(1, 2)
    assert plot_curves(ROWS, "time/wall_s", "loss", ax=ax1) is fig
    rows = [{"cfg": "adam", "mean": 90.0, "std": 2.0}, {"cfg": "sgd", "mean": None, "std": None}]
    assert plot_bars(rows, "cfg", "mean", yerr="std", ax=ax2) is fig
    assert len(ax2.patches) == 2 and "n/a" in [t.get_text() for t in ax2.texts]
    assert "no finite values" in plot_curves([], "epoch", "loss").axes[0].texts[0].get_text()


def test_no_pyplot_state_and_lazy_import():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_curves(ROWS, "epoch", "loss")
    assert plt.get_fignums() == before
    code = ("import sys, crisscross.analysis.plots, crisscross.experiments.report, crisscross.experiments.sweep, "
            "crisscross.cli.main as m; m.build_parser(); "
            "print(sorted(k for k in ('matplotlib', 'optuna', 'tensorboard') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_metric_keys_read_as_names_with_units():
    assert metric_label("val/mpjpe22_avg_mm") == ("validation MPJPE (predicted joints)", "mm")
    assert metric_label("val/mpjpe22_mm.mean.avg") == metric_label("val/mpjpe22_avg_mm")  # the select path
    assert axis_label("val/mpjpe_mm") == "validation MPJPE [mm]"  # lifting
    assert axis_label("val/mpjve_mm") == "validation MPJVE (velocity error) [mm/frame]"
    assert axis_label("test/mpjpe32_avg_mm") == "test MPJPE (all joints) [mm]"
    assert axis_label("time/wall_s", "min") == "wall-clock training time [min]"
    assert axis_label("memory/peak_mb") == "peak memory [MB]" and axis_label("epoch") == "epoch"
    assert axis_label("val/some_new_metric_mm") == "validation some new metric [mm]"  # unknown: read by parts
    assert [short_value(v) for v in (3e-4, 0.001, 0.05, 1500.0, 1e5, 64, True, None, [1, 2])] == [
        "3e-4", "1e-3", "0.05", "1500", "1e5", "64", "true", "none", "1,2"]


def test_axis_labels_default_to_human_names_and_translate_keys():
    ax = plot_curves(ROWS, "time/wall_s", "loss").axes[0]
    assert ax.get_xlabel() == "wall-clock training time [s]"
    rows = [{"configuration": "0.001, 32", "mean": 90.0, "std": 2.0}]
    ax = plot_bars(rows, "configuration", "mean", ylabel="val/mpjpe22_avg_mm",
                   xlabel="optim.lr, model.args.dim").axes[0]
    assert ax.get_ylabel() == "validation MPJPE (predicted joints) [mm]"  # a sweep's objective key, translated
    assert ax.get_xlabel() == "optim.lr, model.args.dim"  # the sweep's parameter names
    assert plot_bars(rows, "configuration", "mean", ylabel="my own label").axes[0].get_ylabel() == "my own label"


def test_status_line_styles_and_log_ticks():
    rows = [{"run": r, "cfg": c, "status": st, "epoch": e, "v": 10.0 ** (e if r == "c" else 1) * (i + 1)}
            for i, (r, c, st) in enumerate((("a", "x", "completed"), ("b", "x", "running"), ("c", "y", "crashed")))
            for e in range(1, 5)]
    fig = plot_curves(rows, "epoch", "v", color="cfg", status="status", palette={"y": "C5"}, logy=None)
    ax = fig.axes[0]
    styles = {ln.get_label(): (ln.get_linestyle(), ln.get_color()) for ln in ax.get_lines()
              if not ln.get_label().startswith("_")}
    assert styles == {"a": ("-", "C0"), "b (running)": ("--", "C0"), "c (crashed)": (":", "C5")}
    cross = [ln for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert len(cross) == 1 and list(cross[0].get_xdata()) == [4.0]  # at the crashed run's last point
    assert ax.get_yscale() == "log"
    fig.canvas.draw()
    ticks = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert ticks and all("$" not in t and "^" not in t for t in ticks), ticks  # plain numbers, not 10^k


def test_plot_by_setting_panels_name_parameters():
    rows = [{"optim.lr": lr, "optim.name": opt, "best": v, "status": st}
            for lr, opt, v, st in ((1e-4, "adam", 80.0, "completed"), (1e-3, "adam", 70.0, "completed"),
                                   (1e-2, "sgd", 60.0, "crashed"), (1e-3, "sgd", 75.0, "running"))]
    fig = plot_by_setting(rows, ["optim.lr", "optim.name"], "best", setting_labels={"optim.lr": "lr (optim.lr)"},
                          status="status", ylabel="best validation MPJPE [mm]")
    lr_ax, name_ax = fig.axes[:2]
    assert (lr_ax.get_xlabel(), name_ax.get_xlabel()) == ("lr (optim.lr)", "optim.name")
    assert lr_ax.get_xscale() == "log" and lr_ax.get_ylabel() == "best validation MPJPE [mm]"
    assert [t.get_text() for t in name_ax.get_xticklabels()] == ["adam", "sgd"]
    best = [c for c in lr_ax.collections if c.get_label() == "best completed run"]
    assert best[0].get_offsets().tolist() == [[1e-3, 70.0]]  # the crashed run's 60 is not the best
