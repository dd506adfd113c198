"""Every tracker's output read back with its own reader: metrics.jsonl, TensorBoard event files (scalars and the
HParams dashboard's summaries), a W&B offline run's transaction log and an MLflow SQLite store; and resuming
without duplicate steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crisscross.config.schema import TrackConfig
from crisscross.training.tracking import JsonlTracker, flatten_config, open_trackers, read_metrics

CONFIG = {"seed": 3, "model": {"name": "stcformer", "args": {"dim": 16}}, "optim": {"lr": 3e-4},
          "data": {"actions": None, "subjects": ["S1", "S5"]}}


def _files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "eval.json").write_text(json.dumps({"mpjpe22_mm": {"mean": {"avg": 50.0}}}))
    (tmp_path / "best.pt").write_bytes(b"weights")
    return {"best": tmp_path / "best.pt", "eval": tmp_path / "eval.json"}


def test_flatten_config_gives_tracker_param_types():
    flat = flatten_config(CONFIG)
    assert flat == {"seed": 3, "model.name": "stcformer", "model.args.dim": 16, "optim.lr": 3e-4,
                    "data.actions": "null", "data.subjects": '["S1", "S5"]'}


def test_jsonl_resume_drops_rows_after_the_checkpoint_and_reports_the_high_water(tmp_path):
    tracker = JsonlTracker(tmp_path)
    for step in range(1, 11):
        tracker.log({"train/loss": 1.0 / step}, step)
    tracker.close()
    with (tmp_path / "metrics.jsonl").open("a") as fh:
        fh.write('{"step": 11, "train/lo')  # the torn line of a kill -9
    resumed = JsonlTracker(tmp_path, resume_step=6)
    assert resumed.high_water == 10
    for step in range(7, 9):
        resumed.log({"train/loss": 2.0}, step)
    resumed.close()
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert rows[5]["train/loss"] == pytest.approx(1 / 6) and rows[6]["train/loss"] == 2.0


def test_tensorboard_scalars_hparams_and_purge_on_resume(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    cfg = TrackConfig(root=str(tmp_path))
    first = open_trackers(tmp_path, cfg, CONFIG)
    for step in range(1, 11):
        first.log({"train/loss": float(step)}, step)
    first.close("interrupted")  # as a kill would leave it: steps 7..10 are after the checkpoint at 6
    resumed = open_trackers(tmp_path, cfg, CONFIG, resume_step=6)
    for step in range(7, 13):
        resumed.log({"train/loss": 100.0 + step}, step)
    resumed.finish({"final/mpjpe22_avg_mm": 48.5, "final/mpjpe22_80ms_mm": 10.25}, 12, _files(tmp_path))
    resumed.close("completed")

    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert loss == [(s, float(s)) for s in range(1, 7)] + [(s, 100.0 + s) for s in range(7, 13)]
    assert [(e.step, e.value) for e in acc.Scalars("final/mpjpe22_avg_mm")] == [(12, 48.5)]
    content = acc.PluginTagToContent("hparams")
    data = {tag: plugin_data_pb2.HParamsPluginData.FromString(raw) for tag, raw in content.items()}
    experiment = next(d.experiment for d in data.values() if d.HasField("experiment"))
    start = next(d.session_start_info for d in data.values() if d.HasField("session_start_info"))
    assert {m.name.tag for m in experiment.metric_infos} == {"final/mpjpe22_avg_mm", "final/mpjpe22_80ms_mm"}
    assert start.hparams["optim.lr"].number_value == pytest.approx(3e-4)
    assert start.hparams["model.name"].string_value == "stcformer"
    assert start.hparams["data.subjects"].string_value == '["S1", "S5"]'
    jsonl = [r["step"] for r in read_metrics(tmp_path) if "train/loss" in r]
    assert jsonl == list(range(1, 13))


def _wandb_runs(run_dir: Path) -> list[dict]:
    from crisscross.training.wandb_offline import read_offline_run

    return [read_offline_run(f) for f in sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))]


def test_wandb_offline_config_history_summary_artifacts_and_resume(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    for var in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):  # artifact staging stays in the test
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    run_dir = tmp_path / "h36m-stcformer" / "20261130-000000-abcdef"
    run_dir.mkdir(parents=True)
    cfg = TrackConfig(root=str(tmp_path), tensorboard=False, wandb=True, project="crisscross-tests")
    first = open_trackers(run_dir, cfg, CONFIG)
    for step in range(1, 9):
        first.log({"train/loss": float(step)}, step)
    first.close("interrupted")
    run_id = json.loads((run_dir / "trackers.json").read_text())["wandb"]
    resumed = open_trackers(run_dir, cfg, CONFIG, resume_step=5)  # W&B already holds 6..8: skipped
    for step in range(6, 11):
        resumed.log({"train/loss": float(step), "val/mpjpe22_avg_mm": 60.0 - step}, step)
    resumed.finish({"final/mpjpe22_avg_mm": 50.5}, 10, _files(tmp_path))
    resumed.close("completed")

    runs = _wandb_runs(run_dir)
    assert len(runs) == 2 and {r["run_id"] for r in runs} == {run_id}
    steps = [row["_step"] for r in runs for row in r["history"] if "train/loss" in row]
    assert steps == list(range(1, 11))  # the same run, every step once
    assert runs[0]["config"]["optim"] == {"lr": 3e-4} and runs[0]["config"]["model"]["name"] == "stcformer"
    assert runs[1]["summary"]["final/mpjpe22_avg_mm"] == 50.5
    artifacts = {(name, kind): files for name, kind, files in runs[1]["artifacts"]}
    assert artifacts == {("h36m-stcformer-20261130-000000-abcdef-best", "model"): ["best.pt"],
                         ("h36m-stcformer-20261130-000000-abcdef-eval", "evaluation"): ["eval.json"]}


def test_mlflow_sqlite_params_metrics_artifacts_status_and_resume(tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "h36m-stcformer" / "20261130-000000-abcdef"
    run_dir.mkdir(parents=True)
    cfg = TrackConfig(root=str(tmp_path), tensorboard=False, mlflow=True, project="crisscross-tests")
    first = open_trackers(run_dir, cfg, CONFIG)
    for step in range(1, 9):
        first.log({"train/loss": float(step), "time/wall_s": 0.5 * step}, step)
    first.close("interrupted")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run_id = json.loads((run_dir / "trackers.json").read_text())["mlflow"]
    assert client.get_run(run_id).info.status == "KILLED"
    resumed = open_trackers(run_dir, cfg, CONFIG, resume_step=5)
    for step in range(6, 11):
        resumed.log({"train/loss": 100.0 + step}, step)
    resumed.finish({"final/mpjpe22_avg_mm": 50.5, "final/mpjpe22_1000ms_mm": 90.0}, 10, _files(tmp_path))
    resumed.close("completed")

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "h36m-stcformer-20261130-000000-abcdef"
    assert client.get_experiment(run.info.experiment_id).name == "crisscross-tests"
    assert run.data.params["optim.lr"] == "0.0003" and run.data.params["model.args.dim"] == "16"
    history = [(m.step, m.value) for m in client.get_metric_history(run_id, "train/loss")]
    assert sorted(history) == [(s, float(s)) for s in range(1, 9)] + [(s, 100.0 + s) for s in (9, 10)]
    assert run.data.metrics["final/mpjpe22_avg_mm"] == 50.5 and run.data.metrics["final/mpjpe22_1000ms_mm"] == 90.0
    assert sorted(a.path for a in client.list_artifacts(run_id)) == ["best.pt", "eval.json"]


def test_missing_optional_tracker_package_is_one_clear_error(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    message = r"track.mlflow=true needs the mlflow package: pip install 'crisscross\[mlflow\]'"
    with pytest.raises(RuntimeError, match=message):
        open_trackers(tmp_path, TrackConfig(root=str(tmp_path), tensorboard=False, mlflow=True), CONFIG)
