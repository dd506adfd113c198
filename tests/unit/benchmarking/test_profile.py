"""Phase profiling of a training step: same update as the engine, phases add up, trace is valid JSON."""

from __future__ import annotations

import copy
import json
from functools import partial

import pytest
import torch

from crisscross.benchmarking.profile import PHASES, new_profile_dir, profile_training, profiled_train_step
from crisscross.config import load_config
from crisscross.data.datasets import load_motion
from crisscross.models import create_model
from crisscross.models.registry import build_model
from crisscross.tasks import get_task
from crisscross.tasks.forecasting.windows import WindowBank
from crisscross.training.loop import train_step
from crisscross.training.optim import create_optimizer
from crisscross.training.precision import Precision
from crisscross.training.setup import forward_context

OVERRIDES = ["model.name=stcformer", "model.args.dim=16", "model.args.enc_blocks=1", "model.args.dec_blocks=1",
             "optim.clip_grad_norm=1.0", "train.velocity_loss_weight=0.5"]


@pytest.fixture(scope="module")
def setup():
    cfg = load_config(None, OVERRIDES)
    motion = load_motion("synthetic", split="train")
    bank = WindowBank.from_motion(motion, 35, 1, torch.device("cpu"))
    torch.manual_seed(0)
    model = build_model("stcformer", dict(cfg.model.args), motion.skeleton, 10, 25)
    return cfg, bank, model


def test_profiled_step_is_the_engine_step(setup) -> None:
    cfg, bank, model = setup
    batch = bank.batch(torch.arange(8), cfg.data.augment, None)
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    prec = Precision("fp32", "cpu")
    opt_a, opt_b = create_optimizer(a, cfg.optim), create_optimizer(b, cfg.optim)
    # The loss as the engine builds it (training/setup.py), and the same loss with the forward context left open.
    task_loss = partial(get_task(cfg.task).training_loss, data=cfg.data, train=cfg.train)
    context = forward_context(prec, cfg.train.attention, "cpu")
    terms_a = train_step(a, opt_a, prec.grad_scaler(), batch, partial(task_loss, forward_context=context),
                         cfg.optim.clip_grad_norm)
    terms_b = profiled_train_step(b, opt_b, prec.grad_scaler(), lambda: batch, task_loss, context,
                                  cfg.optim.clip_grad_norm)
    torch.testing.assert_close(terms_a, terms_b)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, msg=name)


def test_cuda_event_marks_bracket_every_phase(setup) -> None:
    cfg, bank, model = setup

    class Mark:
        def __init__(self) -> None:
            self.recorded = 0

        def record(self) -> None:
            self.recorded += 1

    marks = [Mark() for _ in range(len(PHASES) + 1)]
    prec = Precision("fp32", "cpu")
    m = copy.deepcopy(model)
    batch = bank.batch(torch.arange(4), cfg.data.augment, None)
    task_loss = partial(get_task(cfg.task).training_loss, data=cfg.data, train=cfg.train)
    profiled_train_step(m, create_optimizer(m, cfg.optim), prec.grad_scaler(), lambda: batch, task_loss,
                        forward_context(prec, cfg.train.attention, "cpu"), cfg.optim.clip_grad_norm, marks)
    assert [mk.recorded for mk in marks] == [1] * (len(PHASES) + 1)


def test_phases_add_up_to_the_step_and_trace_is_json(setup, tmp_path) -> None:
    cfg, bank, model = setup
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # steadier timings on a shared machine
    try:
        result = profile_training(copy.deepcopy(model), cfg, bank, device=torch.device("cpu"), batch_size=16,
                                  steps=4, warmup=1, out_dir=new_profile_dir(tmp_path))
    finally:
        torch.set_num_threads(threads)
    assert [p.name for p in result.phases] == list(PHASES)
    assert all(p.cpu_ms > 0 for p in result.phases)
    # The phases are disjoint sub-ranges of the timed step, so their sum cannot exceed it (beyond clock rounding),
    # and only the Python glue between the five ranges is outside them: a few tens of microseconds per step
    # against a step of several milliseconds here. 15 % leaves room for scheduler noise on a shared CPU.
    assert result.phase_sum_ms <= result.step_ms * 1.01 + 0.05
    assert result.phase_sum_ms >= 0.85 * result.step_ms
    assert sum(p.share for p in result.phases) == pytest.approx(result.phase_sum_ms / result.step_ms)
    trace = json.loads(result.trace_path.read_text())
    names = {e.get("name") for e in trace["traceEvents"]}
    assert {f"phase:{p}" for p in PHASES} <= names
    summary = json.loads((result.out_dir / "profile.json").read_text())
    assert summary["steps"] == 4 and len(summary["phases"]) == 5
    assert (result.out_dir / "phases.csv").read_text().splitlines()[0] == "phase,cpu_ms,cuda_ms,share"
    assert "step (measured wall time)" in result.table()


def test_profile_folders_are_never_reused(tmp_path) -> None:
    first, second = new_profile_dir(tmp_path), new_profile_dir(tmp_path)
    assert first != second and first.is_dir() and second.is_dir()


def test_weightless_model_is_a_clear_error(setup, tmp_path) -> None:
    cfg, bank, _ = setup
    model = create_model("zero-velocity", num_joints=22, input_frames=10, output_frames=25)
    with pytest.raises(ValueError, match="no trainable parameters"):
        profile_training(model, cfg, bank, device=torch.device("cpu"), batch_size=4, steps=1, warmup=0,
                         out_dir=tmp_path)
