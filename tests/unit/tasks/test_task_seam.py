"""The task seam: the registry, the forecasting task's pieces, and a second task trained by the unchanged engine.

``ReconstructionTask`` below is a task written only against :class:`crisscross.tasks.base.Task` (a window of
``T`` frames in, the same frames out, scored by the registered ``mpjpe`` metric). Adding it is one object plus one
registry entry; ``fit``, run storage and ``evaluate_source`` run it without knowing what it is.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from crisscross.config import load_config
from crisscross.data.datasets import load_motion
from crisscross.data.skeleton import skeleton_to_dict
from crisscross.evaluation.metrics import get_metric
from crisscross.models.registry import build_model
from crisscross.runs.folders import EVAL_FILE, STATUS_FILE, checkpoint_path
from crisscross.tasks import registry
from crisscross.tasks.forecasting import ForecastingTask
from crisscross.tasks.forecasting.windows import WindowBank
from crisscross.tasks.sources import evaluate_source
from crisscross.training import fit
from crisscross.training.precision import Precision
from crisscross.training.setup import forward_context


class ReconstructionTask:
    """Auto-encode a window: ``x[B, T, J, 3] -> x`` (metres), MPJPE in millimetres."""

    name = "reconstruction"
    description = "reconstruct the observed window (a test task)"
    select_metric = "mpjpe_mm"
    validation_metric = "val/mpjpe_mm"
    loss_term_names = ("loss",)

    def load_split(self, data, split, actions=None):
        return load_motion(data.dataset, split=split, data_dir=data.data_dir, cache_dir=data.cache_dir,
                           actions=actions or data.actions)

    def resolve_protocol(self, dataset, input_frames, output_frames, name=None):
        return SimpleNamespace(name=name or f"{dataset}-reconstruct-{input_frames}", frames=input_frames)

    def check_select_metric(self, protocol, path):
        if path not in (None, "mpjpe_mm"):
            raise ValueError(f"eval.select_metric: {path!r} is not mpjpe_mm")

    def build_model(self, name, args, dataset, input_frames, output_frames):
        return build_model(name, dict(args), dataset.skeleton, input_frames, input_frames)

    def sample_bank(self, dataset, data, device):
        return WindowBank.from_motion(dataset, data.input_frames, data.train_stride, device)

    def training_loss(self, model, batch, data, train, forward_context):
        with forward_context():
            pred = model(batch)
        loss = get_metric("mpjpe").fn(pred, batch).mean()
        return loss, loss.detach()[None]

    def loss_log(self, terms):
        return {"mpjpe_mm": terms[0] * 1000}

    def evaluate(self, model, dataset, protocol, *, device, batch_size, actions=None):
        starts = dataset.train_windows(protocol.frames, stride=protocol.frames)
        windows = dataset.gather(starts, protocol.frames)[:, :, list(dataset.skeleton.predicted)] / 1000
        with torch.no_grad():
            error = get_metric("mpjpe").fn(model(windows), windows).mean() * 1000
        return {"protocol": protocol.name, "protocol_version": 1, "dataset": dataset.dataset,
                "split": dataset.split, "num_windows": int(starts.numel()), "mpjpe_mm": float(error)}

    def validation_row(self, result):
        return {"mpjpe_mm": result["mpjpe_mm"]}

    def checkpoint_meta(self, dataset, data, protocol):
        skeleton = dataset.skeleton
        return {"skeleton": skeleton.name, "skeleton_spec": skeleton_to_dict(skeleton),
                "predicted_joints": list(skeleton.predicted), "fps": float(dataset.fps),
                "input_frames": data.input_frames, "output_frames": data.input_frames, "protocol": protocol.name}

    def results_table(self, results):
        return "\n".join(f"{label}: {r['mpjpe_mm']:.1f} mm" for label, r in results.items())


@pytest.fixture
def reconstruction(monkeypatch):
    task = ReconstructionTask()
    monkeypatch.setitem(registry.TASKS, task.name, task)
    return task


def test_the_registry_names_its_tasks_and_refuses_unknown_ones():
    assert registry.get_task("forecasting").name == "forecasting"
    assert "forecasting" in registry.list_tasks()
    with pytest.raises(ValueError, match=r"^task: unknown task 'lifting-typo'; known tasks: forecasting"):
        registry.get_task("lifting-typo")


def test_an_unknown_task_in_a_config_fails_before_any_data_is_loaded(tmp_path):
    cfg = load_config(None, ["task=nope", f"track.root={tmp_path}"])
    with pytest.raises(ValueError, match="task: unknown task 'nope'"):
        fit(cfg)
    assert not any(tmp_path.iterdir())


def test_forecasting_loss_terms_are_the_position_and_velocity_losses():
    """terms = [total, position, velocity]; the model runs inside the engine's forward context."""
    task = ForecastingTask()
    cfg = load_config(None, ["train.velocity_loss_weight=0.5", "model.name=zero-velocity", "model.args={}"])
    motion = load_motion("synthetic", split="val")
    model = build_model("zero-velocity", {}, motion.skeleton, 10, 25)
    bank = task.sample_bank(motion, cfg.data, torch.device("cpu"))
    batch = bank.batch(torch.arange(4), cfg.data.augment, None)
    entered = []

    def context():
        entered.append(True)
        return forward_context(Precision("fp32", "cpu"), "auto", "cpu")()

    loss, terms = task.training_loss(model, batch, cfg.data, cfg.train, context)
    past, future = batch[:, :10], batch[:, 10:]
    position = torch.linalg.vector_norm(past[:, -1:] - future, dim=-1).mean()
    assert entered == [True]
    assert terms[1] == pytest.approx(float(position), rel=1e-6)
    assert terms[2] > 0 and terms[0] == pytest.approx(float(terms[1] + 0.5 * terms[2]), rel=1e-6)
    assert float(loss) == pytest.approx(float(terms[0]))
    assert task.loss_log(terms.tolist()) == {"mpjpe_mm": pytest.approx(float(position) * 1000, rel=1e-6)}


def test_a_second_task_trains_checkpoints_and_evaluates_through_the_unchanged_engine(reconstruction, tmp_path):
    cfg = load_config(None, ["task=reconstruction", "model.name=simlpe", "model.args={}", "train.epochs=2",
                             "train.max_steps=4", "train.batch_size=16", "train.progress=false",
                             f"track.root={tmp_path}", "track.tensorboard=false"])
    result = fit(cfg)
    assert result.status == "completed" and result.steps == 4
    assert json.loads((result.run_dir / STATUS_FILE).read_text())["status"] == "completed"
    assert checkpoint_path(result.run_dir, "best").is_file()
    saved = json.loads((result.run_dir / EVAL_FILE).read_text())
    assert saved["protocol"] == "synthetic-reconstruct-10" and saved["mpjpe_mm"] > 0
    rows = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    epoch_rows = [r for r in rows if "epoch" in r]
    assert epoch_rows and all("val/mpjpe_mm" in r and "train/epoch_mpjpe_mm" in r for r in epoch_rows)
    again = evaluate_source(result.run_dir, device="cpu")
    assert again["mpjpe_mm"] == pytest.approx(saved["mpjpe_mm"], rel=1e-5)
