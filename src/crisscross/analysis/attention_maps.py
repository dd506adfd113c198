"""Attention maps per block and head, their focus, and the distance between spatial and temporal maps.

The course project behind crisscross plotted, for a trained STCFormer, the spatial (joints x joints) and temporal
(frames x frames) attention map of every block and head, and "an L1 distance between spatial and temporal maps".
The two maps have different sizes (22 x 22 against 10 x 10 or 25 x 25, 25 x 10 for temporal cross-attention), so an
element-wise L1 distance is undefined; resampling one onto the other's grid would be arbitrary, because joints have
no natural order (neighbouring rows of a joint map are not neighbouring in any sense). The comparison is therefore of
how *focused* each map is, with a size-independent L1 measure:

* every row of an attention map is a distribution ``p`` over the ``n`` keys the query may see (keys a mask hides,
  e.g. future frames under the decoder's causal mask, have weight exactly 0 in every sample and head and are
  excluded, so ``n`` can vary by row; an unmasked softmax weight is exactly 0 in float32 only when its logit is
  about 100 below the row's maximum, so in practice only masked keys are dropped);
* the **focus** of a row is its L1 distance from the uniform distribution over those ``n`` keys, divided by the
  largest possible value ``2 (1 - 1/n)`` (reached by a one-hot row): ``focus = sum_k |p_k - 1/n| / (2 (1 - 1/n))``,
  0 for uniform attention ("look everywhere"), 1 for attention to a single key; rows with ``n = 1`` carry no choice
  and are skipped;
* the focus of a map is the mean over its rows; the **spatial-temporal distance** of a block and head is
  ``|focus_spatial - focus_temporal|`` for the spatial and temporal maps of the same attention call (same block,
  same self/cross mode), in [0, 1].

The normalised entropy ``H(p) / log n`` (1 = uniform) is reported alongside as a second, smoother view of the same
property. Both are computed per map and sample, and averaged over the chosen samples.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tabulate import tabulate

from crisscross.models.attention import capture_attention

__all__ = [
    "AttentionReport",
    "attention_statistics",
    "capture_maps",
    "key_support",
    "map_entropy",
    "map_focus",
    "plot_attention_heads",
    "plot_spatial_temporal_distance",
    "spatial_temporal_distance",
    "write_attention_report",
]

STATS_COLUMNS = ("sample", "call", "block", "kind", "mode", "head", "queries", "keys", "focus", "entropy")
DISTANCE_COLUMNS = ("sample", "block", "mode", "head", "focus_spatial", "focus_temporal", "entropy_spatial",
                    "entropy_temporal", "distance")


def capture_maps(model: nn.Module, past: torch.Tensor) -> list[Any]:
    """Run ``model`` once in eval mode and return its attention records (``capture_attention``).

    Args:
        model: a forecaster.
        past: Tensor[B, T_in, J, 3] (metres).

    Returns:
        ``AttentionRecord`` list in call order, each with ``weights: Tensor[B, H, L_q, L_k]``.

    Raises:
        ValueError: the model has no attention layer that records maps.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), capture_attention(model) as records:
            model(past)
    finally:
        model.train(was_training)
    if not records:
        raise ValueError(f"{type(model).__name__} has no attention layers to capture (try an attention model such "
                         "as stcformer, stacformer, sttformer or conv-stgat)")
    return list(records)


def key_support(weights: torch.Tensor) -> torch.Tensor:
    """Keys each query can see: those with a non-zero weight in any sample or head.

    Args:
        weights: Tensor[B, H, L_q, L_k].

    Returns:
        BoolTensor[L_q, L_k].
    """
    return (weights > 0).flatten(0, -3).any(dim=0)


def _row_stats(weights: torch.Tensor, support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(focus, normalised entropy) of every row over its support: Tensor[..., L_q] each, NaN where n <= 1."""
    w = weights.double() * support
    n = support.sum(dim=-1).double()  # [L_q]
    uniform = torch.where(n > 0, 1.0 / n.clamp(min=1), torch.zeros_like(n))
    l1 = ((w - uniform[:, None]).abs() * support).sum(dim=-1)
    focus = l1 / (2.0 * (1.0 - uniform))
    plogp = torch.where(w > 0, w * w.clamp(min=1e-300).log(), torch.zeros_like(w))
    entropy = -plogp.sum(dim=-1) / n.clamp(min=2).log()
    valid = n > 1
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    return torch.where(valid, focus, nan), torch.where(valid, entropy, nan)


def map_focus(weights: torch.Tensor, support: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows of the normalised L1 distance from uniform attention (see the module docstring).

    Args:
        weights: Tensor[..., L_q, L_k], rows summing to 1.
        support: BoolTensor[L_q, L_k] visible keys (default: :func:`key_support` of ``weights``).

    Returns:
        Tensor[...] in [0, 1] (float64): 0 uniform, 1 one-hot.
    """
    if support is None:
        support = key_support(weights.reshape(-1, 1, *weights.shape[-2:]))
    focus, _ = _row_stats(weights, support)
    return focus.nanmean(dim=-1)


def map_entropy(weights: torch.Tensor, support: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over rows of the entropy divided by ``log n`` (1 uniform, 0 one-hot).

    Args:
        weights: Tensor[..., L_q, L_k], rows summing to 1.
        support: BoolTensor[L_q, L_k] visible keys (default: :func:`key_support` of ``weights``).

    Returns:
        Tensor[...] in [0, 1] (float64).
    """
    if support is None:
        support = key_support(weights.reshape(-1, 1, *weights.shape[-2:]))
    _, entropy = _row_stats(weights, support)
    return entropy.nanmean(dim=-1)


def attention_statistics(records: Sequence[Any], samples: Sequence[int]) -> list[dict[str, Any]]:
    """One row per sample, attention call and head: sizes, focus and normalised entropy.

    Args:
        records: attention records whose batch dimension is ``samples``.
        samples: the sample id of each batch element.

    Returns:
        Rows with the keys of ``STATS_COLUMNS``.
    """
    rows = []
    for call, rec in enumerate(records):
        w = rec.weights  # [B, H, L_q, L_k]
        if w.shape[0] != len(samples):
            raise ValueError(f"record {rec.block} has batch {w.shape[0]} but {len(samples)} samples were given")
        support = key_support(w)
        focus = map_focus(w, support)  # [B, H]
        entropy = map_entropy(w, support)
        for b, sample in enumerate(samples):
            for h in range(w.shape[1]):
                rows.append({"sample": sample, "call": call, "block": rec.block, "kind": rec.kind, "mode": rec.mode,
                             "head": h, "queries": w.shape[2], "keys": w.shape[3], "focus": float(focus[b, h]),
                             "entropy": float(entropy[b, h])})
    return rows


def spatial_temporal_distance(stats: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pair the spatial and temporal maps of each (sample, block, mode, head); add ``sample="mean"`` rows.

    Args:
        stats: rows of :func:`attention_statistics`.

    Returns:
        Rows with the keys of ``DISTANCE_COLUMNS``; empty when the model has no spatial/temporal pairs.
    """
    by_key: dict[tuple, dict[str, dict[str, Any]]] = {}
    for row in stats:
        if row["kind"] in ("spatial", "temporal"):
            by_key.setdefault((row["sample"], row["block"], row["mode"], row["head"]), {})[row["kind"]] = row
    out = []
    for (sample, block, mode, head), pair in by_key.items():
        if set(pair) != {"spatial", "temporal"}:
            continue
        s, t = pair["spatial"], pair["temporal"]
        out.append({"sample": sample, "block": block, "mode": mode, "head": head, "focus_spatial": s["focus"],
                    "focus_temporal": t["focus"], "entropy_spatial": s["entropy"], "entropy_temporal": t["entropy"],
                    "distance": abs(s["focus"] - t["focus"])})
    means: dict[tuple, list[dict[str, Any]]] = {}
    for row in out:
        means.setdefault((row["block"], row["mode"], row["head"]), []).append(row)
    for (block, mode, head), group in means.items():
        mean = {k: sum(r[k] for r in group) / len(group) for k in DISTANCE_COLUMNS[4:]}
        out.append({"sample": "mean", "block": block, "mode": mode, "head": head, **mean})
    return out


def _pyplot() -> Any:
    import matplotlib  # lazy: heavy, and only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_attention_heads(weights: torch.Tensor, kind: str, title: str = "",
                         key_labels: Sequence[str] | None = None, query_labels: Sequence[str] | None = None) -> Any:
    """Heatmaps of one attention call for one sample, a panel per head.

    Args:
        weights: Tensor[H, L_q, L_k] (rows sum to 1).
        kind: ``spatial`` (joints), ``temporal`` (frames) or another record kind, for the axis labels.
        title: figure title.
        key_labels: optional L_k tick labels (e.g. joint names).
        query_labels: optional L_q tick labels.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    w = weights.detach().cpu().float().numpy()
    heads, lq, lk = w.shape
    unit = {"spatial": "joint", "temporal": "frame", "graph": "joint"}.get(kind, "token")
    fig, axes = plt.subplots(1, heads, figsize=(3.6 * heads + 0.6, 4.0), dpi=100, squeeze=False, layout="constrained")
    vmax = float(w.max()) if w.size else 1.0
    image = None
    for h, ax in enumerate(axes[0]):
        image = ax.imshow(w[h], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest", aspect="auto")
        ax.set_title(f"head {h}", fontsize=9)
        ax.set_xlabel(f"key {unit}", fontsize=8)
        ax.set_ylabel(f"query {unit}", fontsize=8)
        for labels, setter, length in ((key_labels, ax.set_xticks, lk), (query_labels, ax.set_yticks, lq)):
            if labels is not None and len(labels) == length:
                setter(range(length), labels=list(labels), fontsize=5, rotation=90 if setter == ax.set_xticks else 0)
            else:
                ax.tick_params(labelsize=7)
    fig.colorbar(image, ax=list(axes[0]), fraction=0.025, pad=0.02, label="attention weight")
    fig.suptitle(title, fontsize=9)
    return fig


def plot_spatial_temporal_distance(rows: Sequence[dict[str, Any]], title: str = "") -> Any:
    """Focus of the spatial and temporal maps and their distance per block and head (``sample == "mean"`` rows).

    Args:
        rows: output of :func:`spatial_temporal_distance`.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    plt = _pyplot()
    mean_rows = [r for r in rows if r["sample"] == "mean"]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(mean_rows) + 2), 4.8), dpi=100, layout="constrained")
    if not mean_rows:
        ax.text(0.5, 0.5, "no spatial/temporal attention pairs in this model", ha="center", va="center")
        ax.set_axis_off()
        return fig
    x = list(range(len(mean_rows)))
    width = 0.28
    ax.bar([i - width for i in x], [r["focus_spatial"] for r in mean_rows], width, label="focus, spatial")
    ax.bar(x, [r["focus_temporal"] for r in mean_rows], width, label="focus, temporal")
    ax.bar([i + width for i in x], [r["distance"] for r in mean_rows], width, label="|spatial - temporal|",
           color="black")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{r['block']} ({r['mode']}) h{r['head']}" for r in mean_rows], rotation=60, ha="right",
                       fontsize=7)
    top = max(max(r["focus_spatial"], r["focus_temporal"], r["distance"]) for r in mean_rows)
    ax.set_ylim(0, min(1.0, 1.2 * top + 0.02))
    ax.set_ylabel("focus: L1 distance from uniform / max")
    ax.set_title(title or "spatial vs temporal attention focus", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


@dataclass
class AttentionReport:
    """Files written by :func:`write_attention_report` and the distance rows."""

    out_dir: Path
    images: list[Path]
    stats_csv: Path
    distance_csv: Path
    distance_png: Path
    distances: list[dict[str, Any]] = field(default_factory=list)

    def summary(self, tablefmt: str = "github") -> str:
        """Table of the mean focus and distance per block and head."""
        rows = [[r["block"], r["mode"], r["head"], f"{r['focus_spatial']:.3f}", f"{r['focus_temporal']:.3f}",
                 f"{r['distance']:.3f}"] for r in self.distances if r["sample"] == "mean"]
        if not rows:
            return "no spatial/temporal attention pairs (per-map statistics are in the CSV)"
        return tabulate(rows, headers=["block", "mode", "head", "focus spatial", "focus temporal", "distance"],
                        tablefmt=tablefmt, disable_numparse=True)


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in row.items()})


def write_attention_report(model: nn.Module, past: torch.Tensor, out_dir: str | Path, *, samples: Sequence[int],
                           joint_names: Sequence[str] | None = None, title: str = "") -> AttentionReport:
    """Capture the maps for a batch of samples and write heatmaps, statistics and the distance plot.

    Args:
        model: a forecaster with attention layers.
        past: Tensor[S, T_in, J, 3] the samples' observed frames (metres).
        out_dir: output folder (created).
        samples: the id of each of the S samples (used in file names and CSVs).
        joint_names: J names used as tick labels of spatial maps.
        title: prefix of the figure titles.

    Returns:
        The report (paths and distance rows).
    """
    plt = _pyplot()
    out = Path(out_dir)
    records = capture_maps(model, past)  # first: a model without attention leaves no empty folder behind
    out.mkdir(parents=True, exist_ok=True)
    images = []
    for call, rec in enumerate(records):
        labels = joint_names if rec.kind in ("spatial", "graph") else None
        for b, sample in enumerate(samples):
            fig = plot_attention_heads(rec.weights[b], rec.kind, key_labels=labels, query_labels=labels,
                                       title=f"{title}\nsample {sample}: {rec.block}, {rec.kind} {rec.mode}-attention")
            path = out / f"sample{sample:03d}_{call:02d}_{rec.block.replace('.', '-')}_{rec.kind}_{rec.mode}.png"
            fig.savefig(path)
            plt.close(fig)
            images.append(path)
    stats = attention_statistics(records, samples)
    distances = spatial_temporal_distance(stats)
    report = AttentionReport(out, images, out / "attention_stats.csv", out / "spatial_temporal_distance.csv",
                             out / "spatial_temporal_distance.png", distances)
    _write_csv(report.stats_csv, STATS_COLUMNS, stats)
    _write_csv(report.distance_csv, DISTANCE_COLUMNS, distances)
    fig = plot_spatial_temporal_distance(distances, f"{title}: focus and spatial-temporal distance, mean over "
                                                    f"samples {', '.join(map(str, samples))}")
    fig.savefig(report.distance_png)
    plt.close(fig)
    return report
