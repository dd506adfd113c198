"""Metric trackers: the run folder's JSON-lines file always, TensorBoard by default, W&B and MLflow on request.

Each tracker implements the :class:`Tracker` protocol; :func:`open_trackers` builds the set a config asks for.
A resumed run appends to the same ``metrics.jsonl`` and TensorBoard folder, and re-attaches to the same
W&B run id / MLflow run id stored in ``trackers.json``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Protocol

from crisscross.config.schema import TrackConfig
from crisscross.runs.folders import METRICS_FILE, TENSORBOARD_DIR, TRACKERS_FILE, read_json, write_json

__all__ = ["JsonlTracker", "MultiTracker", "TensorBoardTracker", "Tracker", "open_trackers", "read_metrics"]


class Tracker(Protocol):
    """Receives scalar metrics keyed by name at a step; closed at the end of the run."""

    def log(self, metrics: dict[str, float], step: int) -> None:
        """Record scalars at ``step``."""

    def close(self) -> None:
        """Flush and release resources."""


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else str(v)
    return v


class JsonlTracker:
    """Appends one JSON object per call to ``metrics.jsonl`` (flushed each line, so a crash loses nothing)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        self._fh = self.path.open("a")

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Append ``{"step": step, **metrics}``."""
        self._fh.write(json.dumps({"step": step, **{k: _finite_or_none(v) for k, v in metrics.items()}}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        """Close the file."""
        self._fh.close()


class TensorBoardTracker:
    """TensorBoard event files under ``run_dir/tb`` (needs the ``tensorboard`` package)."""

    def __init__(self, run_dir: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: needs the optional tensorboard package

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR))

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Write every numeric scalar."""
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                self.writer.add_scalar(k, v, step)

    def close(self) -> None:
        """Flush and close the writer."""
        self.writer.flush()
        self.writer.close()


class WandbTracker:
    """Weights & Biases (offline mode works without an account); resumes the same run id."""

    def __init__(self, run_dir: Path, cfg: TrackConfig, config: dict[str, Any], run_id: str | None) -> None:
        import wandb  # lazy: optional dependency (extra "wandb")

        self.run = wandb.init(project=cfg.wandb_project, mode=cfg.wandb_mode, dir=str(run_dir), config=config,
                              id=run_id, resume="allow", name=Path(run_dir).name)
        self.run_id = self.run.id

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log to the W&B run."""
        self.run.log(metrics, step=step)

    def close(self) -> None:
        """Finish the W&B run."""
        self.run.finish()


class MlflowTracker:
    """MLflow (a local ``mlruns`` store in the run folder unless ``track.mlflow_uri`` is set)."""

    def __init__(self, run_dir: Path, cfg: TrackConfig, config: dict[str, Any], run_id: str | None) -> None:
        import mlflow  # lazy: optional dependency (extra "mlflow")

        mlflow.set_tracking_uri(cfg.mlflow_uri or (Path(run_dir) / "mlruns").resolve().as_uri())
        self.mlflow = mlflow
        self.run = mlflow.start_run(run_id=run_id, run_name=Path(run_dir).name)
        self.run_id = self.run.info.run_id
        if run_id is None:
            mlflow.log_params(_flatten(config))

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log numeric scalars."""
        numeric = {k.replace("@", "_at_"): float(v) for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self.mlflow.log_metrics(numeric, step=step)

    def close(self) -> None:
        """End the MLflow run."""
        self.mlflow.end_run()


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class MultiTracker:
    """Fans metrics out to several trackers."""

    def __init__(self, trackers: list[Any]) -> None:
        self.trackers = trackers

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log to every tracker."""
        for t in self.trackers:
            t.log(metrics, step)

    def close(self) -> None:
        """Close every tracker."""
        for t in self.trackers:
            t.close()


def open_trackers(run_dir: Path, cfg: TrackConfig, config: dict[str, Any]) -> MultiTracker:
    """The run folder's JSONL plus the configured optional trackers; remembers external run ids for resume."""
    ids_path = Path(run_dir) / TRACKERS_FILE
    ids = read_json(ids_path) if ids_path.exists() else {}
    trackers: list[Any] = [JsonlTracker(run_dir)]
    if cfg.tensorboard:
        try:
            trackers.append(TensorBoardTracker(run_dir))
        except ImportError:
            warnings.warn("track.tensorboard=true but the tensorboard package is not installed "
                          "(pip install 'crisscross[track]'); logging to metrics.jsonl only", stacklevel=2)
    for enabled, key, cls, extra in ((cfg.wandb, "wandb", WandbTracker, "wandb"),
                                     (cfg.mlflow, "mlflow", MlflowTracker, "mlflow")):
        if not enabled:
            continue
        try:
            tracker = cls(run_dir, cfg, config, ids.get(key))
        except ImportError:
            raise RuntimeError(f"track.{key}=true needs the {extra} package: "
                               f"pip install 'crisscross[{extra}]'") from None
        ids[key] = tracker.run_id
        trackers.append(tracker)
    if ids:
        write_json(ids_path, ids)
    return MultiTracker(trackers)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of a run's ``metrics.jsonl`` (a torn last line from a killed run is ignored)."""
    path = Path(run_dir) / METRICS_FILE
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows
