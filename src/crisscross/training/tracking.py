"""Metric trackers: the run folder's JSON-lines file always, TensorBoard by default, W&B and MLflow on request.

Every tracker receives the same calls: the run's hyper-parameters when it opens, scalar rows keyed by name at a
step while it trains, and at the end of a completed run its final metrics and files (:meth:`Tracker.finish`).
Each tracker records them the way its users look for them: TensorBoard scalars plus the HParams dashboard's
summaries, W&B config, history, summary and artifacts, MLflow params, metrics and artifacts.

Resuming continues the same tracked run without duplicate steps, also after a ``kill -9``: the checkpoint the run
resumes from is at step ``S``, and everything logged after ``S`` before the kill is either removed (the JSONL file
is rewritten up to ``S``; TensorBoard purges later events) or, where a tracker cannot remove points (W&B,
MLflow), skipped until the resumed run passes the last step that tracker already holds. An exact resume
recomputes those steps bit for bit, so skipping them loses nothing; and the steps up to ``S`` that a kill lost
before they reached a tracker (W&B's service buffers them) are replayed from ``metrics.jsonl``. W&B and MLflow run
ids live in ``trackers.json``.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from pathlib import Path
from typing import Any, Protocol

from crisscross.config.schema import TrackConfig
from crisscross.runs.folders import METRICS_FILE, TENSORBOARD_DIR, TRACKERS_FILE, read_json, write_json
from crisscross.runtime import atomic_write
from crisscross.training.wandb_offline import last_logged_step

__all__ = ["JsonlTracker", "MlflowTracker", "MultiTracker", "TensorBoardTracker", "Tracker", "WandbTracker",
           "flatten_config", "open_trackers", "read_metrics"]

#: The status a run ends with, as MLflow names it.
_MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED"}


class Tracker(Protocol):
    """Receives a run's scalars, and at the end its final metrics and files."""

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Record the numeric scalars of ``metrics`` at ``step``."""

    def finish(self, final: dict[str, float], step: int, artifacts: dict[str, Path]) -> None:
        """A completed run's final metrics (``final/...`` keys) at ``step`` and its files (name -> path)."""

    def close(self, status: str = "completed") -> None:
        """Flush and release resources; ``status`` is the run's (``completed``, ``interrupted``, ``failed``...)."""


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else str(v)
    return v


def _numeric(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


def flatten_config(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config values as ``{"optim.lr": 3e-4, ...}``; lists and ``None`` as text (trackers' param types)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten_config(v, key + "."))
        elif isinstance(v, (bool, int, float, str)):
            out[key] = v
        else:
            out[key] = json.dumps(v) if v is not None else "null"
    return out


class JsonlTracker:
    """Appends one JSON object per call to ``metrics.jsonl`` (flushed each line, so a crash loses nothing)."""

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        self.path = Path(run_dir) / METRICS_FILE
        #: The highest step the file held when the run resumed (what other trackers may already have received).
        self.high_water = -1
        if resume_step is not None and self.path.exists():
            self.high_water = self._rewind(resume_step)
        self._fh = self.path.open("a")

    def _rewind(self, resume_step: int) -> int:
        """Drop the rows logged after the checkpoint the run resumes from; return the highest step seen."""
        kept, high = [], -1
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the torn last line of a killed process
            step = int(row.get("step", -1))
            high = max(high, step)
            if step <= resume_step:
                kept.append(line + "\n")
        atomic_write(self.path, lambda fh: fh.write("".join(kept).encode()))
        return high

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Append ``{"step": step, **metrics}``."""
        self._fh.write(json.dumps({"step": step, **{k: _finite_or_none(v) for k, v in metrics.items()}}) + "\n")
        self._fh.flush()

    def finish(self, final: dict[str, float], step: int, artifacts: dict[str, Path]) -> None:
        """The final metrics as one more row (the files are already in the run folder)."""
        self.log(final, step)

    def close(self, status: str = "completed") -> None:
        """Close the file."""
        self._fh.close()


class TensorBoardTracker:
    """TensorBoard event files under ``run_dir/tb``: scalars, and the HParams dashboard at the end of a run.

    Needs the ``tensorboard`` package. A resumed run purges the events after its checkpoint's step, so the curves
    have no doubled segment.
    """

    def __init__(self, run_dir: Path, hparams: dict[str, Any] | None = None,
                 resume_step: int | None = None) -> None:
        from torch.utils.tensorboard import SummaryWriter  # lazy: needs the optional tensorboard package

        self.hparams = dict(hparams or {})
        purge = resume_step + 1 if resume_step is not None else None
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=purge)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Write every numeric scalar, flushed at once: a kill -9 loses no more here than in ``metrics.jsonl``."""
        for k, v in _numeric(metrics).items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def finish(self, final: dict[str, float], step: int, artifacts: dict[str, Path]) -> None:
        """Final metrics as scalars, and the run's hyper-parameters with them for the HParams dashboard."""
        from torch.utils.tensorboard.summary import hparams as hparams_summaries

        final = _numeric(final)
        self.log(final, step)
        experiment, session_start, session_end = hparams_summaries(self.hparams, final)
        for summary in (experiment, session_start, session_end):
            self.writer.file_writer.add_summary(summary, step)

    def close(self, status: str = "completed") -> None:
        """Flush and close the writer."""
        self.writer.flush()
        self.writer.close()


def _wandb_name(text: str) -> str:
    """W&B artifact names allow letters, digits, dashes, underscores and dots."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "run"


def _offline_last_step(wandb_dir: Path, run_id: str, fallback: int) -> int:
    """The last step the offline W&B segments hold; ``fallback`` (the JSONL file's) when they cannot be read."""
    try:
        return last_logged_step(wandb_dir, run_id)
    except Exception as err:  # a format of a future wandb: the JSONL file bounds what W&B received
        warnings.warn(f"could not read the W&B offline run {run_id} under {wandb_dir} ({err}); "
                      f"continuing its history after step {fallback}", stacklevel=2)
        return fallback


class WandbTracker:
    """Weights & Biases (offline mode works without an account): config, history, summary and artifacts.

    A resumed run re-attaches to the same run id and skips the steps W&B already holds: the server's count
    online, the offline segments' transaction logs offline (``skip_through`` when those cannot be read).
    """

    def __init__(self, run_dir: Path, cfg: TrackConfig, config: dict[str, Any], run_id: str | None,
                 skip_through: int = -1) -> None:
        import wandb  # lazy: optional dependency (extra "wandb")

        self.wandb = wandb
        self.name = f"{Path(run_dir).parent.name}-{Path(run_dir).name}"
        self.run = wandb.init(project=cfg.wandb_project or cfg.project, mode=cfg.wandb_mode, dir=str(run_dir),
                              config=config, id=run_id, resume="allow", name=self.name, group=Path(run_dir).parent.name)
        self.run_id = self.run.id
        self.artifacts = cfg.artifacts
        self.skip_through = -1
        if run_id is not None:  # resumed: skip what W&B already holds, re-log what a kill -9 lost before it wrote
            self.skip_through = self.run.step - 1 if cfg.wandb_mode == "online" else \
                _offline_last_step(Path(run_dir) / "wandb", run_id, fallback=skip_through)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log to the run's history (W&B keeps one row per step, so rows of one step merge)."""
        if step > self.skip_through:
            self.run.log(_numeric(metrics), step=step)

    def finish(self, final: dict[str, float], step: int, artifacts: dict[str, Path]) -> None:
        """Final metrics into the run summary; the files as a ``model`` and an ``evaluation`` artifact."""
        self.run.summary.update(_numeric(final))
        if not self.artifacts:
            return
        for name, path in artifacts.items():
            kind = "model" if path.suffix in (".pt", ".onnx") else "evaluation"
            artifact = self.wandb.Artifact(_wandb_name(f"{self.name}-{name}"), type=kind)
            artifact.add_file(str(path))
            self.run.log_artifact(artifact)

    def close(self, status: str = "completed") -> None:
        """Finish the W&B run (exit code 0 for a completed or interrupted run, 1 for a failed one)."""
        self.run.finish(exit_code=1 if status == "failed" else 0)


def default_mlflow_uri(root: str | Path) -> str:
    """``sqlite:///<track.root>/mlflow.db``: MLflow 3 refuses the old file store, SQLite needs no server."""
    return "sqlite:///" + str((Path(root) / "mlflow.db").resolve())


class MlflowTracker:
    """MLflow: params, metrics and artifacts, in ``track.mlflow_uri`` or an SQLite store under ``track.root``.

    The experiment is ``track.project``; its artifacts go beside the SQLite file unless the server decides.
    A resumed run re-attaches to its run id and skips the steps the store already holds.
    """

    def __init__(self, run_dir: Path, cfg: TrackConfig, config: dict[str, Any], run_id: str | None) -> None:
        from mlflow.entities import Metric, Param  # lazy: optional dependency (extra "mlflow")
        from mlflow.tracking import MlflowClient

        self.Metric = Metric
        uri = cfg.mlflow_uri or default_mlflow_uri(cfg.root)
        self.client = MlflowClient(tracking_uri=uri)
        self.artifacts = cfg.artifacts
        if run_id is None:
            experiment = self.client.get_experiment_by_name(cfg.project)
            if experiment is not None:
                experiment_id = experiment.experiment_id
            elif uri.startswith("sqlite:"):
                location = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").resolve().as_uri()
                experiment_id = self.client.create_experiment(cfg.project, artifact_location=location)
            else:
                experiment_id = self.client.create_experiment(cfg.project)
            run = self.client.create_run(experiment_id, run_name=f"{Path(run_dir).parent.name}-{Path(run_dir).name}",
                                         tags={"crisscross.run_dir": str(Path(run_dir).resolve())})
            self.run_id = run.info.run_id
            # MLflow params are at most 6000 characters each and immutable: logged once, when the run starts.
            params = [Param(k, str(v)[:6000]) for k, v in flatten_config(config).items()]
            for i in range(0, len(params), 100):
                self.client.log_batch(self.run_id, params=params[i:i + 100])
            self.skip_through = -1
        else:
            self.run_id = run_id
            self.client.update_run(run_id, status="RUNNING")
            self.skip_through = self._last_step()

    def _last_step(self) -> int:
        """The highest step the store holds for this run."""
        keys = self.client.get_run(self.run_id).data.metrics
        return max((m.step for k in keys for m in self.client.get_metric_history(self.run_id, k)), default=-1)

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log numeric scalars in one batch."""
        if step <= self.skip_through:
            return
        now = int(time.time() * 1000)
        batch = [self.Metric(k, v, now, step) for k, v in _numeric(metrics).items()]
        if batch:
            self.client.log_batch(self.run_id, metrics=batch)

    def finish(self, final: dict[str, float], step: int, artifacts: dict[str, Path]) -> None:
        """Final metrics, and the files under ``artifacts/`` of the run."""
        self.log(final, step)
        if self.artifacts:
            for path in artifacts.values():
                self.client.log_artifact(self.run_id, str(path))

    def close(self, status: str = "completed") -> None:
        """End the MLflow run with its status (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(self.run_id, status=_MLFLOW_STATUS.get(status, "KILLED"))


class MultiTracker:
    """Fans every call out to several trackers."""

    def __init__(self, trackers: list[Any]) -> None:
        self.trackers = trackers

    def log(self, metrics: dict[str, Any], step: int) -> None:
        """Log to every tracker."""
        for t in self.trackers:
            t.log(metrics, step)

    def finish(self, final: dict[str, float], step: int, artifacts: dict[str, Path]) -> None:
        """Final metrics and files to every tracker."""
        for t in self.trackers:
            t.finish(final, step, artifacts)

    def close(self, status: str = "completed") -> None:
        """Close every tracker."""
        for t in self.trackers:
            t.close(status)


def open_trackers(run_dir: Path, cfg: TrackConfig, config: dict[str, Any],
                  resume_step: int | None = None) -> MultiTracker:
    """The run folder's JSONL plus the configured optional trackers.

    Args:
        run_dir: the run folder.
        cfg: which trackers, the project name, the stores.
        config: the run's resolved config as nested values (the hyper-parameters).
        resume_step: the step of the checkpoint a resumed run continues from; ``None`` for a new run.
    """
    ids_path = Path(run_dir) / TRACKERS_FILE
    ids = read_json(ids_path) if ids_path.exists() else {}
    jsonl = JsonlTracker(run_dir, resume_step)
    trackers: list[Any] = [jsonl]
    if cfg.tensorboard:
        try:
            trackers.append(TensorBoardTracker(run_dir, flatten_config(config), resume_step))
        except ImportError:
            warnings.warn("track.tensorboard=true but the tensorboard package is not installed "
                          "(pip install 'crisscross[track]'); logging to metrics.jsonl only", stacklevel=2)
    for enabled, key, extra in ((cfg.wandb, "wandb", "wandb"), (cfg.mlflow, "mlflow", "mlflow")):
        if not enabled:
            continue
        try:
            if key == "wandb":
                tracker: Any = WandbTracker(run_dir, cfg, config, ids.get(key), skip_through=jsonl.high_water)
            else:
                tracker = MlflowTracker(run_dir, cfg, config, ids.get(key))
        except ImportError:
            raise RuntimeError(f"track.{key}=true needs the {extra} package: "
                               f"pip install 'crisscross[{extra}]'") from None
        ids[key] = tracker.run_id
        trackers.append(tracker)
        write_json(ids_path, ids)  # at once: a kill before the next tracker opens keeps this id
        if resume_step is not None:
            _replay(tracker, run_dir)
    return MultiTracker(trackers)


def _replay(tracker: Any, run_dir: Path) -> None:
    """Send a resumed tracker the rows of ``metrics.jsonl`` (already rewound to the checkpoint) past the last
    step it holds: what a kill -9 lost in a service's buffer before it reached W&B, for example."""
    for row in read_metrics(run_dir):
        step = int(row["step"])
        if step > tracker.skip_through:
            tracker.log({k: v for k, v in row.items() if k != "step"}, step)


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
