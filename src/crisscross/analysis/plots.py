"""Plots of tidy result tables: learning curves of several runs overlaid, and bar charts with error bars.

Every function takes tidy rows (a sequence of mappings, one observation per row, e.g. one epoch of one run) and
an optional matplotlib ``Axes``, and returns the ``Figure``, so callers can compose panels and inspect the result.
Figures are built with ``matplotlib.figure.Figure`` and rendered with the Agg canvas, never through ``pyplot``: no
global figure state, no GUI backend, nothing left open. matplotlib is imported inside the functions, so importing
this module is free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["new_figure", "plot_bars", "plot_curves", "save_figure"]


def new_figure(width_in: float = 6.4, height_in: float = 4.0) -> Figure:
    """A figure attached to an Agg canvas (renders to files; no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: heavy; importing this module stays free
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = new_figure()
    return fig, fig.add_subplot(1, 1, 1)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_LINESTYLES = ("-", "--", ":", "-.")


def plot_curves(rows: Sequence[Mapping[str, Any]], x: str, y: str, *, group: str = "run", color: str | None = None,
                ax: Axes | None = None, title: str | None = None, xlabel: str | None = None,
                ylabel: str | None = None, logy: bool | None = False) -> Figure:
    """One line per group (e.g. per run) of ``y`` against ``x``; rows lacking a finite x or y are skipped.

    Args:
        rows: tidy rows, e.g. ``{"run": "adam s0", "epoch": 3, "time/wall_s": 41.2, "train/epoch_loss": 0.097}``.
        x: the column on the horizontal axis (``epoch``, ``time/wall_s``, ...).
        y: the column on the vertical axis.
        group: the column naming the line each row belongs to.
        color: a column shared by related lines (e.g. the configuration of several seeds): they get one colour
            and different line styles. Default: one colour per line.
        ax: draw into these axes instead of a new figure.
        title, xlabel, ylabel: labels (default: the column names).
        logy: logarithmic vertical axis; None chooses it when the values span more than a factor of 10.

    Returns:
        The figure holding the axes.
    """
    fig, ax = _axes(ax)
    lines: dict[Any, list[tuple[float, float]]] = {}
    colour_of: dict[Any, Any] = {}
    for r in rows:
        if _finite(r.get(x)) and _finite(r.get(y)):
            lines.setdefault(r.get(group), []).append((float(r[x]), float(r[y])))
            colour_of.setdefault(r.get(group), r.get(color) if color else r.get(group))
    palette = [f"C{i}" for i in range(10)]
    colours = {c: palette[i % len(palette)] for i, c in enumerate(dict.fromkeys(colour_of.values()))}
    seen: dict[Any, int] = {}
    for label, points in lines.items():
        points.sort()
        xs, ys = zip(*points)
        key = colour_of[label]
        style = _LINESTYLES[seen.get(key, 0) % len(_LINESTYLES)]
        seen[key] = seen.get(key, 0) + 1
        ax.plot(xs, ys, marker="o" if len(points) <= 30 else None, markersize=3, linewidth=1.5, label=str(label),
                color=colours[key], linestyle=style)
    values = [v for pts in lines.values() for _, v in pts]
    if logy is None:
        logy = bool(values) and min(values) > 0 and max(values) / min(values) > 10
    if logy and any(v > 0 for v in values):
        ax.set_yscale("log")
    if x == "epoch":
        from matplotlib.ticker import MaxNLocator  # lazy: heavy; importing this module stays free

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if lines:
        ax.legend(fontsize="small", loc="best")
    else:
        ax.text(0.5, 0.5, f"no finite values of {y}", ha="center", va="center", transform=ax.transAxes)
    return fig


def plot_bars(rows: Sequence[Mapping[str, Any]], x: str, y: str, *, yerr: str | None = None,
              ax: Axes | None = None, title: str | None = None, ylabel: str | None = None,
              zoom: bool = True) -> Figure:
    """A bar per row: ``y`` (e.g. a mean over seeds) labelled by ``x``, with optional ``yerr`` error bars.

    Rows without a finite ``y`` are drawn as an empty slot marked "n/a" (e.g. a diverged configuration).

    Args:
        rows: tidy rows, one per bar.
        x: the label column.
        y: the bar height column.
        yerr: the error-bar column (e.g. a standard deviation); missing values draw no bar.
        ax: draw into these axes instead of a new figure.
        title, ylabel: labels.
        zoom: start the vertical axis just below the smallest bar, so that differences of a few percent (typical
            between configurations) are visible; the axis then does not start at zero.

    Returns:
        The figure holding the axes.
    """
    fig, ax = _axes(ax)
    labels = [str(r.get(x)) for r in rows]
    heights = [float(r[y]) if _finite(r.get(y)) else 0.0 for r in rows]
    errs = [float(r[yerr]) if yerr and _finite(r.get(yerr)) else 0.0 for r in rows]
    pos = list(range(len(rows)))
    ax.bar(pos, heights, color="tab:blue", alpha=0.8)
    with_err = [(p, h, e) for p, h, e in zip(pos, heights, errs) if e > 0]
    if with_err:
        px, py, pe = zip(*with_err)
        ax.errorbar(px, py, yerr=pe, fmt="none", ecolor="black", capsize=4)
    finite = [(h, e) for r, h, e in zip(rows, heights, errs) if _finite(r.get(y))]
    if zoom and finite:
        lo, hi = min(h - e for h, e in finite), max(h + e for h, e in finite)
        span = (hi - lo) or abs(hi) * 0.05 or 1.0
        ax.set_ylim(max(0.0, lo - 0.5 * span) if lo >= 0 else lo - 0.5 * span, hi + 0.2 * span)
    for p, r in zip(pos, rows):
        if not _finite(r.get(y)):
            ax.text(p, 0.02, "n/a", ha="center", va="bottom", fontsize="small",
                    transform=ax.get_xaxis_transform())
    ax.set_xticks(pos, labels, rotation=30 if max((len(s) for s in labels), default=0) > 8 else 0, ha="right"
                  if max((len(s) for s in labels), default=0) > 8 else "center")
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write the figure (format from the suffix, e.g. ``.png``) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
