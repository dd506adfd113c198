"""Text tables of forecasting results (tabulate), for the terminal and Markdown files.

Deterministic results (MPJPE per horizon and action) and stochastic ones (DLow's APD, best-of-K ADE/FDE,
MMADE/MMFDE and the per-horizon curves of :func:`crisscross.evaluation.stochastic.evaluate_stochastic`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

from crisscross.evaluation.forecasting import PREDICTED_JOINTS_KEY
from crisscross.evaluation.protocols import PROTOCOLS

__all__ = [
    "action_table",
    "horizon_table",
    "is_stochastic_result",
    "stochastic_heading",
    "stochastic_horizon_table",
    "stochastic_summary_table",
]

# DLow's own setting, named where a stochastic table is not in it (its figures are then not comparable).
_DLOW_SETTING = "DLow scores 16 of 17 joints at 50 Hz, 25 -> 100 frames, S9 S11, K = 50, in metres"
# DLow's data (VideoPose3D's data_3d_h36m.npz); the same settings on other data are not DLow's tables either.
_DLOW_DATASET = PROTOCOLS["h36m-stochastic-25-100"].dataset
# The rows of the per-horizon stochastic table: result key (mm) and row label; {k} is K.
_STOCHASTIC_HORIZON_ROWS = (
    ("ade_by_horizon_mm", "ADE, best of {k} (first h frames)"),
    ("fde_by_horizon_mm", "FDE, best of {k} (frame h)"),
    ("mpjpe_sample_mean_by_horizon_mm", "MPJPE of the mean of the {k} samples"),
    ("mpjpe_first_sample_by_horizon_mm", "MPJPE of the first sample"),
)


def horizon_table(results: Mapping[str, Mapping[str, Any]], averaging: str = PREDICTED_JOINTS_KEY,
                  tablefmt: str = "github", floatfmt: str = ".1f") -> str:
    """One row per labelled result: MPJPE (mm) per horizon in ms and the average over all output frames."""
    first = next(iter(results.values()))
    horizons = [str(h) for h in first["horizons_ms"]]
    headers = ["model"] + [f"{h} ms" for h in horizons] + ["avg"]
    rows = [[label] + [r[averaging]["mean"][h] for h in horizons] + [r[averaging]["mean"]["avg"]]
            for label, r in results.items()]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, floatfmt=floatfmt)


def action_table(result: Mapping[str, Any], averaging: str = PREDICTED_JOINTS_KEY, tablefmt: str = "github",
                 floatfmt: str = ".1f") -> str:
    """One row per action (and the mean over actions): MPJPE (mm) per horizon."""
    per_action = result[averaging]["per_action"]
    horizons = [str(h) for h in result["horizons_ms"]]
    headers = ["action"] + [f"{h} ms" for h in horizons] + ["avg"]
    rows = [[a] + [v[h] for h in horizons] + [v["avg"]] for a, v in per_action.items()]
    mean = result[averaging]["mean"]
    rows.append(["mean over actions"] + [mean[h] for h in horizons] + [mean["avg"]])
    return tabulate(rows, headers=headers, tablefmt=tablefmt, floatfmt=floatfmt)


def is_stochastic_result(result: Mapping[str, Any]) -> bool:
    """Whether ``result`` comes from the stochastic evaluator (K samples, DLow's metrics)."""
    return "apd" in result and "ade_by_horizon" in result


def _k_note(result: Mapping[str, Any]) -> str | None:
    protocol_k = result.get("k_protocol")
    if protocol_k is None or protocol_k == result["k"]:
        return None
    return (f"K = {result['k']}, not the protocol's {protocol_k} (--samples): a quick check; APD and the best-of-K "
            f"figures depend on K and are not comparable with K = {protocol_k} results")


def stochastic_heading(result: Mapping[str, Any], label: str | None = None, *, sampler: bool = True) -> list[str]:
    """The lines above a stochastic table: data, protocol, K, seed, threshold, what is scored, caveats.

    ``sampler``: end with how the samples were drawn (the model's sampler or K copies of a deterministic forecast).
    """
    who = f"{label} on " if label else ""
    version = f" v{result['protocol_version']}" if "protocol_version" in result else ""
    where = f"{result['dataset']} / {result['split']}, " if "dataset" in result else ""
    lines = [f"{who}{where}protocol {result.get('protocol', '(unnamed)')}{version}: {result['num_windows']} windows, "
             f"K = {result['k']} samples per window, seed {result['seed']}"]
    note = _k_note(result)
    if note:
        lines.append(note)
    skeleton = f" of the {result['skeleton']} skeleton" if "skeleton" in result else ""
    fps = f" at {result['fps']:g} fps" if result.get("fps") else ""
    mm = result["multimodal_futures"]
    lines.append(f"scored: {len(result['scored_joints'])} joints{skeleton}{fps}, {result['input_frames']} -> "
                 f"{result['output_frames']} frames; multi-modal futures: windows whose last observed pose is "
                 f"within {result['multimodal_threshold']:g} {result['unit']} (mean {mm['mean']:.1f} per window, "
                 f"{mm['alone']:.0%} alone)")
    if result.get("window_rule", "dlow") != "dlow":
        lines.append(f"not DLow's setting ({_DLOW_SETTING}): ADE/FDE/MMADE/MMFDE are not comparable with DLow's "
                     "tables")
    elif result.get("protocol_dataset") not in (None, result.get("dataset")):
        lines.append(f"the data is {result['dataset']}, not the protocol's {result['protocol_dataset']}: not "
                     "comparable with DLow's tables")
    elif result.get("protocol_dataset") not in (None, _DLOW_DATASET):
        lines.append(f"DLow's windows, K, threshold and joints on {result['protocol_dataset']}, not DLow's data "
                     f"({_DLOW_DATASET}): ADE/FDE/MMADE/MMFDE are not comparable with DLow's tables")
    else:
        lines.append("DLow's setting; DLow reports metres: divide these millimetres by 1000 to compare")
    if sampler and "sampler" in result:
        lines.append(f"sampler: {result['sampler']}")
    return lines


def stochastic_summary_table(results: Mapping[str, Mapping[str, Any]], tablefmt: str = "github",
                             floatfmt: str = ".1f") -> str:
    """One row per labelled stochastic result: K, APD, ADE, FDE, MMADE, MMFDE and the two MPJPE averages (mm)."""
    headers = ["model", "K", "APD", "ADE", "FDE", "MMADE", "MMFDE", "MPJPE mean sample", "MPJPE first sample"]
    rows = [[label, r["k"], r["apd_mm"], r["ade_mm"], r["fde_mm"], r["mmade_mm"], r["mmfde_mm"],
             r["mpjpe_sample_mean_by_horizon_mm"]["avg"], r["mpjpe_first_sample_by_horizon_mm"]["avg"]]
            for label, r in results.items()]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, floatfmt=floatfmt)


def stochastic_horizon_table(results: Mapping[str, Mapping[str, Any]], rows: Sequence[str] | None = None,
                             tablefmt: str = "github", floatfmt: str = ".1f") -> str:
    """Per-horizon stochastic figures (mm), one row per labelled result and per row kind.

    ``rows``: keys of the result to show (default every kind: best-of-K ADE and FDE, MPJPE of the mean sample and
    of the first sample); the ``avg`` column (mean over all output frames) is filled for the MPJPE rows only, and
    left out when there is none.
    """
    first = next(iter(results.values()))
    horizons = [str(h) for h in first["horizons_ms"]]
    kinds = [(key, name) for key, name in _STOCHASTIC_HORIZON_ROWS if rows is None or key in rows]
    if not kinds:
        raise ValueError(f"no per-horizon stochastic row among {list(rows or ())}; known: "
                         f"{', '.join(key for key, _ in _STOCHASTIC_HORIZON_ROWS)}")
    many = len(results) > 1
    table = []
    for key, name in kinds:
        for label, r in results.items():
            row = r[key]
            title = label if len(kinds) == 1 else f"{label}: {name.format(k=r['k'])}" if many else name.format(k=r["k"])
            table.append([title] + [row[h] for h in horizons] + [row.get("avg")])
    corner = f"{kinds[0][1].format(k='K')} (mm)" if len(kinds) == 1 else "figure (mm)"
    headers = [corner] + [f"{h} ms" for h in horizons] + ["avg"]
    if all(line[-1] is None for line in table):  # no MPJPE row: no average column
        headers, table = headers[:-1], [line[:-1] for line in table]
    return tabulate(table, headers=headers, tablefmt=tablefmt, floatfmt=floatfmt, missingval="")
