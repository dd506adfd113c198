"""Every shipped lifting config loads, fits its protocol, builds its model and trains one step on its data's shape."""

from pathlib import Path

import pytest
import torch

from crisscross.config import load_config
from crisscross.data.datasets import get_dataset_info
from crisscross.data.skeleton import get_skeleton
from crisscross.models.registry import build_model, get_model_entry
from crisscross.tasks.registry import get_task
from crisscross.training.precision import Precision
from crisscross.training.setup import forward_context

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "lift").glob("*.yaml"))


def test_there_are_lifting_configs():
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_lifting_config_fits_its_protocol_and_trains_one_step(path):
    cfg = load_config(path)
    d = cfg.data
    task = get_task(cfg.task)
    assert task.name == "lifting" and get_model_entry(cfg.model.name).task == "lifting"
    entry = get_dataset_info(d.dataset)
    protocol = task.resolve_protocol(d.dataset, d.input_frames, d.output_frames, cfg.eval.protocol)
    assert entry.task == "lifting" and protocol.receptive_field == d.input_frames
    skeleton = get_skeleton(entry.skeleton)
    torch.manual_seed(0)
    model = build_model(cfg.model.name, cfg.model.args, skeleton, d.input_frames, d.output_frames)
    batch = torch.randn(4, d.input_frames, skeleton.num_joints, 5) * 0.3
    loss, terms = task.training_loss(model, batch, d, cfg.train, forward_context(Precision("fp32", "cpu"), "auto",
                                                                                 "cpu"))
    loss.backward()
    assert torch.isfinite(loss) and terms.shape == (len(task.loss_term_names),)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
