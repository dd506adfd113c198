"""Plots of tidy result tables: learning curves of several runs overlaid, bar charts, and a metric per setting.

Every function takes tidy rows (a sequence of mappings, one observation per row, e.g. one epoch of one run) and
an optional matplotlib ``Axes``, and returns the ``Figure``, so callers can compose panels and inspect the result.
Figures are built with ``matplotlib.figure.Figure`` and rendered with the Agg canvas, never through ``pyplot``: no
global figure state, no GUI backend, nothing left open. matplotlib is imported inside the functions, so importing
this module is free.

Axes name quantities, never log keys: :data:`METRIC_LABELS` maps the keys the engine logs (``val/mpjpe22_avg_mm``,
``time/wall_s``, ...) to a human name and a unit, and :func:`axis_label` writes ``name [unit]``. A run's status
picks its line style (:func:`status_kind`): solid when it completed, dashed while it is running, dotted with a
cross at its last point when it ended early (crashed, failed, interrupted, pruned).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "METRIC_LABELS",
    "axis_label",
    "metric_label",
    "new_figure",
    "plot_bars",
    "plot_by_setting",
    "plot_curves",
    "save_figure",
    "short_value",
    "status_kind",
]

# Log keys -> (human name, unit or None). Positional errors are in millimetres, as the engine logs them.
METRIC_LABELS: dict[str, tuple[str, str | None]] = {
    "epoch": ("epoch", None),
    "step": ("optimizer step", None),
    "time/wall_s": ("wall-clock training time", "s"),
    "time/epoch_s": ("training time per epoch", "s"),
    "time/samples_per_s": ("throughput", "samples/s"),
    "memory/peak_mb": ("peak memory", "MB"),
    "train/lr": ("learning rate", None),
    "train/loss": ("training loss", None),  # its unit depends on the task and train.loss (see the report)
    "train/epoch_loss": ("training loss (epoch mean)", None),
    "train/epoch_mpjpe_mm": ("training MPJPE (epoch mean)", "mm"),
    "train/mpjpe_mm": ("training MPJPE", "mm"),
}
# Result quantities (the part of a key after ``val/``, ``test/`` or ``train/epoch_``) -> (human name, unit).
_QUANTITIES: dict[str, tuple[str, str]] = {
    "mpjpe22": ("MPJPE (predicted joints)", "mm"),  # 22 joints on H3.6M, 25 on CMU
    "mpjpe32": ("MPJPE (all joints)", "mm"),  # 32 on H3.6M, 38 on CMU
    "mpjpe": ("MPJPE", "mm"),
    "p_mpjpe": ("P-MPJPE (similarity-aligned)", "mm"),
    "n_mpjpe": ("N-MPJPE (scale-aligned)", "mm"),
    "mpjve": ("MPJVE (velocity error)", "mm/frame"),
}
_PREFIXES = (("val/", "validation"), ("test/", "test"), ("train/epoch_", "training"), ("train/", "training"),
             ("time/", "time:"), ("memory/", "memory:"))
_UNIT_SUFFIXES = (("_mm", "mm"), ("_ms", "ms"), ("_s", "s"), ("_mb", "MB"))


def metric_label(key: str) -> tuple[str, str | None]:
    """The human name and unit of a logged key (``val/mpjpe22_avg_mm`` -> ``("validation MPJPE, ...", "mm")``).

    Known keys come from :data:`METRIC_LABELS`; others are read by their parts: the prefix (``val/`` ->
    validation), the quantity (``mpjpe22``, ``p_mpjpe``, ...) and a unit suffix (``_mm``, ``_s``, ``_mb``). A
    dotted result path such as ``val/mpjpe22_mm.mean.avg`` names the same quantity as ``val/mpjpe22_avg_mm``.

    Args:
        key: a logged key or a column name.

    Returns:
        ``(name, unit)``; the unit is None for unit-less quantities (epochs, steps, learning rate) and for keys
        that say nothing about it.
    """
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    prefix, body = "", key
    for p, word in _PREFIXES:
        if key.startswith(p):
            prefix, body = word, key[len(p):]
            break
    body = body.split(".", 1)[0]  # mpjpe22_mm.mean.avg -> mpjpe22_mm
    unit = None
    for suffix, u in _UNIT_SUFFIXES:
        if body.endswith(suffix):
            body, unit = body[:-len(suffix)], u
            break
    body = re.sub(r"_(avg|mean)$", "", body)
    name, qunit = _QUANTITIES.get(body, (body.replace("_", " ").replace("/", " "), None))
    return " ".join(x for x in (prefix, name) if x), qunit or unit


def axis_label(key: str, unit: str | None = None) -> str:
    """``name [unit]`` of a logged key (see :func:`metric_label`); ``unit`` replaces the key's own unit."""
    name, own = metric_label(key)
    unit = unit or own
    return f"{name} [{unit}]" if unit else name


def _readable(label: str | None, key: str) -> str:
    """An explicit label, translated when it is a log key itself (``val/...``); else the key's human label."""
    if label is None:
        return axis_label(key)
    return axis_label(label) if label in METRIC_LABELS or re.match(r"^(val|test|train|time|memory)/", label) \
        else label


def status_kind(status: str | None) -> str:
    """``finished`` (completed, or no status given), ``running``, or ``ended`` (crashed, failed, pruned, ...)."""
    if status in (None, "completed"):
        return "finished"
    return "running" if status == "running" else "ended"


_STATUS_LINESTYLE = {"finished": "-", "running": "--", "ended": ":"}
_PALETTE = tuple(f"C{i}" for i in range(10))
_MARKERS = ("o", "s", "^", "D", "v", "P", "*", "h")


def new_figure(width_in: float = 6.4, height_in: float = 4.0) -> Figure:
    """A figure attached to an Agg canvas (renders to files; no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: heavy; importing this module stays free
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _axes(ax: Axes | None, width_in: float = 6.4) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(width_in)
    return fig, fig.add_subplot(1, 1, 1)


def _set_title(ax: Axes, title: str) -> None:
    """The axes title, wrapped onto more lines where it is wider than the axes."""
    chars = max(20, int(ax.figure.get_figwidth() * ax.get_position().width * 11))
    ax.set_title(textwrap.fill(title, chars, break_on_hyphens=False))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _legend_outside(ax: Axes) -> None:
    """The legend right of the axes, so it never covers a curve."""
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def _tick(v: float) -> str:
    """A tick value: a plain number from 0.01 to 9999 (``0.02``, ``300``), else ``2e-4`` or ``1e5``."""
    return short_value(float(v))


def _readable_log_ticks(ax: Axes, values: Sequence[float], axis: str = "y") -> None:
    """Plain numbers on a logarithmic axis, with 2, 3 and 5 times a power of ten labelled on narrow ranges."""
    from matplotlib.ticker import FuncFormatter  # lazy: heavy; importing this module stays free

    positive = [v for v in values if v > 0]
    decades = math.log10(max(positive) / min(positive)) if positive else 0.0
    keep = (2, 3, 5) if decades <= 1.2 else (3,) if decades <= 2.2 else ()

    def minor(v: float, _pos: int) -> str:
        return _tick(v) if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in keep else ""

    target = ax.yaxis if axis == "y" else ax.xaxis
    target.set_major_formatter(FuncFormatter(lambda v, _pos: _tick(v)))
    target.set_minor_formatter(FuncFormatter(minor))


def plot_curves(rows: Sequence[Mapping[str, Any]], x: str, y: str, *, group: str = "run", color: str | None = None,
                palette: Mapping[Any, str] | None = None, status: str | None = None, ax: Axes | None = None,
                title: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
                logy: bool | None = False) -> Figure:
    """One line per group (e.g. per run) of ``y`` against ``x``; rows lacking a finite x or y are skipped.

    Args:
        rows: tidy rows, e.g. ``{"run": "adam s0", "epoch": 3, "time/wall_s": 41.2, "train/epoch_loss": 0.097}``.
        x: the column on the horizontal axis (``epoch``, ``time/wall_s``, ...).
        y: the column on the vertical axis.
        group: the column naming the line each row belongs to (the legend text).
        color: a column shared by related lines (e.g. the configuration of several seeds): they get one colour
            and different markers. Default: one colour per line.
        palette: value of the ``color`` column (or group) -> matplotlib colour, so that several figures give a
            configuration the same colour; values it lacks take the next free colours ``C0``, ``C1``, ...
        status: a column holding each line's run status: completed lines are solid, running ones dashed, and
            lines of runs that ended early dotted with a cross at their last point; the legend names the status
            of every line that is not completed.
        ax: draw into these axes instead of a new figure.
        title: the axes title.
        xlabel, ylabel: axis labels; default (or when a label is itself a log key) :func:`axis_label` of the column.
        logy: logarithmic vertical axis; None chooses it when the values span more than a factor of 10.

    Returns:
        The figure holding the axes.
    """
    longest = max((len(str(r.get(group))) for r in rows), default=0) + (12 if status else 0)
    fig, ax = _axes(ax, width_in=max(8.0, 5.4 + 0.075 * longest))
    lines: dict[Any, list[tuple[float, float]]] = {}
    colour_of: dict[Any, Any] = {}
    status_of: dict[Any, Any] = {}
    for r in rows:
        if _finite(r.get(x)) and _finite(r.get(y)):
            lines.setdefault(r.get(group), []).append((float(r[x]), float(r[y])))
            colour_of.setdefault(r.get(group), r.get(color) if color else r.get(group))
            status_of.setdefault(r.get(group), r.get(status) if status else None)
    colours = dict(palette or {})
    free = itertools.cycle([c for c in _PALETTE if c not in colours.values()] or _PALETTE)
    for c in dict.fromkeys(colour_of.values()):
        if c not in colours:
            colours[c] = next(free)
    seen: dict[Any, int] = {}
    for label, points in lines.items():
        points.sort()
        xs, ys = zip(*points)
        key, run_status = colour_of[label], status_of[label]
        kind = status_kind(run_status)
        marker = _MARKERS[seen.get(key, 0) % len(_MARKERS)]
        seen[key] = seen.get(key, 0) + 1
        text = str(label) if kind == "finished" else f"{label} ({run_status})"
        ax.plot(xs, ys, marker=marker, markevery=max(1, len(points) // 12), markersize=4, linewidth=1.6,
                label=text, color=colours[key], linestyle=_STATUS_LINESTYLE[kind])
        if kind == "ended":  # where the run stopped
            ax.plot(xs[-1:], ys[-1:], marker="x", markersize=10, markeredgewidth=2.2, linestyle="none",
                    color=colours[key])
    values = [v for pts in lines.values() for _, v in pts]
    if logy is None:
        logy = bool(values) and min(values) > 0 and max(values) / min(values) > 10
    if logy and any(v > 0 for v in values):
        ax.set_yscale("log")
        _readable_log_ticks(ax, values)
    if x == "epoch":
        from matplotlib.ticker import MaxNLocator  # lazy: heavy; importing this module stays free

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(_readable(xlabel, x))
    ax.set_ylabel(_readable(ylabel, y))
    if title:
        _set_title(ax, title)
    ax.grid(True, alpha=0.3)
    if lines:
        _legend_outside(ax)
    else:
        ax.text(0.5, 0.5, f"no finite values of {_readable(ylabel, y)}", ha="center", va="center",
                transform=ax.transAxes)
    return fig


def plot_bars(rows: Sequence[Mapping[str, Any]], x: str, y: str, *, yerr: str | None = None,
              ax: Axes | None = None, title: str | None = None, xlabel: str | None = None,
              ylabel: str | None = None, zoom: bool = True) -> Figure:
    """A bar per row: ``y`` (e.g. a mean over seeds) labelled by ``x``, with optional ``yerr`` error bars.

    Rows without a finite ``y`` are drawn as an empty slot marked "n/a" (e.g. a diverged configuration).

    Args:
        rows: tidy rows, one per bar.
        x: the label column.
        y: the bar height column.
        yerr: the error-bar column (e.g. a standard deviation); missing values draw no bar.
        ax: draw into these axes instead of a new figure.
        title: the axes title.
        xlabel: what the bar labels are (e.g. the parameter names of a sweep's configurations); default none.
        ylabel: the vertical axis label; a log key (``val/mpjpe22_avg_mm``) is shown as :func:`axis_label` says.
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
    long = max((len(s) for s in labels), default=0) > 8
    ax.set_xticks(pos, labels, rotation=30 if long else 0, ha="right" if long else "center")
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(_readable(ylabel, y))
    if title:
        _set_title(ax, title)
    ax.grid(True, axis="y", alpha=0.3)
    return fig


_STATUS_POINT = {"finished": {"marker": "o"}, "running": {"marker": "o", "facecolors": "none"},
                 "ended": {"marker": "x", "linewidths": 2.0}}
_STATUS_LEGEND = {"finished": "completed", "running": "running (so far)", "ended": "ended early (so far)"}


def plot_by_setting(rows: Sequence[Mapping[str, Any]], settings: Sequence[str], y: str, *,
                    setting_labels: Mapping[str, str] | None = None, status: str | None = None,
                    ylabel: str | None = None, title: str | None = None, lower_is_better: bool = True) -> Figure:
    """One panel per setting (e.g. a sweep parameter): ``y`` of every row against that setting's value.

    Numeric settings get a numeric axis (logarithmic when positive and spanning more than a factor of 20, as
    learning rates do); others get one slot per distinct value. With ``status``, completed runs are filled dots,
    running ones hollow dots and runs that ended early crosses; the best completed run is ringed.

    Args:
        rows: one row per run, holding every setting and ``y``.
        settings: the columns to put on the horizontal axes, one panel each.
        y: the column on the vertical axes.
        setting_labels: column -> horizontal axis label (default: the column name).
        status: the column holding each run's status (see :func:`status_kind`).
        ylabel: the vertical axis label (default: :func:`axis_label` of ``y``).
        title: the figure title.
        lower_is_better: which end of ``y`` is best.

    Returns:
        The figure.
    """
    cols = min(3, max(1, len(settings)))
    nrows = max(1, math.ceil(len(settings) / cols))
    fig = new_figure(max(7.0, 3.8 * cols + 1.0), 3.4 * nrows + 1.0)
    axes = fig.subplots(nrows, cols, squeeze=False, sharey=True).ravel()
    finished = [r for r in rows if _finite(r.get(y)) and status_kind(r.get(status) if status else None) == "finished"]
    best = (min if lower_is_better else max)(finished, key=lambda r: r[y]) if finished else None
    shown: set[str] = set()
    for ax, key in zip(axes, settings):
        values = [r.get(key) for r in rows]
        numeric = all(_finite(v) for v in values)
        slots = {} if numeric else {k: i for i, k in enumerate(dict.fromkeys(short_value(v) for v in values))}
        for r in rows:
            if not _finite(r.get(y)):
                continue
            kind = status_kind(r.get(status) if status else None)
            xv = float(r[key]) if numeric else slots[short_value(r.get(key))]
            ax.scatter([xv], [r[y]], color="C0", s=36, zorder=3, label=_STATUS_LEGEND[kind], **_STATUS_POINT[kind])
            shown.add(kind)
            if r is best:
                ax.scatter([xv], [r[y]], s=160, facecolors="none", edgecolors="C3", linewidths=1.8, zorder=4,
                           label="best completed run")
        if numeric and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_xscale("log")
            _readable_log_ticks(ax, values, axis="x")
        if numeric and len(set(values)) <= 8:  # a grid: tick exactly its values
            from matplotlib.ticker import NullFormatter, NullLocator  # lazy: heavy; importing this module stays free

            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())
            grid = sorted(set(values))
            ax.set_xticks(grid, [short_value(v) for v in grid])
        if not numeric:
            ax.set_xticks(list(slots.values()), list(slots), rotation=30 if max(map(len, slots)) > 10 else 0,
                          ha="right" if max(map(len, slots)) > 10 else "center")
            ax.set_xlim(-0.5, len(slots) - 0.5)
        ax.set_xlabel((setting_labels or {}).get(key, key))
        ax.grid(True, alpha=0.3)
    for ax in axes[len(settings):]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel(_readable(ylabel, y))
    if title:
        fig.suptitle(title)
    if rows:
        handles = dict(zip(*reversed(axes[0].get_legend_handles_labels())))
        for ax in axes[1:len(settings)]:
            handles.update(dict(zip(*reversed(ax.get_legend_handles_labels()))))
        fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=min(4, len(handles)),
                   fontsize="small", frameon=False)
    return fig


def short_value(v: Any) -> str:
    """A setting value in few characters, for legends and ticks: ``3e-4``, ``0.001``, ``true``, ``1,2``."""
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        if v == 0 or 1e-2 <= abs(v) < 1e4:
            return f"{v:.4g}" if abs(v) >= 1000 else f"{v:.3g}"
        mantissa, exponent = f"{v:.2e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    if isinstance(v, (list, tuple)):
        return ",".join(short_value(x) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return "none" if v is None else str(v)


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write the figure (format from the suffix, e.g. ``.png``) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
