"""Plot functions: tidy rows in, Figure out, optional Axes, no pyplot state, lazily imported matplotlib."""

import subprocess
import sys

import pytest

pytest.importorskip("matplotlib")

from crisscross.analysis.plots import new_figure, plot_bars, plot_curves, save_figure

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
