"""Text tables of forecasting results (tabulate), for the terminal and Markdown files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tabulate import tabulate

from crisscross.evaluation.forecasting import PREDICTED_JOINTS_KEY

__all__ = ["action_table", "horizon_table"]


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
