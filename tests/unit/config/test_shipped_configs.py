"""Every shipped forecasting config loads, agrees with its protocol, and builds a model that trains a step."""

from pathlib import Path

import pytest
import torch

from crisscross.config import load_config
from crisscross.data.datasets import get_dataset_info
from crisscross.data.skeleton import get_skeleton
from crisscross.evaluation.protocols import default_protocol_name, get_protocol
from crisscross.models.registry import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[3] / "configs" / "forecast").glob("*.yaml"))


def test_there_are_shipped_configs():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_builds_and_trains_one_step(path):
    cfg = load_config(path, [])
    d = cfg.data
    info = get_dataset_info(d.dataset)
    protocol = get_protocol(cfg.eval.protocol or default_protocol_name(d.dataset, d.input_frames, d.output_frames))
    assert protocol.dataset == d.dataset, (path.name, protocol.name)
    # the model sees the protocol's observed frames; models trained on a shorter horizon are rolled out
    assert protocol.input_frames == d.input_frames, (path.name, protocol.name)
    assert d.output_frames <= protocol.output_frames
    skeleton = get_skeleton(info.skeleton)
    model = build_model(cfg.model.name, dict(cfg.model.args), skeleton, d.input_frames, d.output_frames)
    past = torch.randn(2, d.input_frames, len(skeleton.predicted), 3) * 0.1
    future = torch.randn(2, d.output_frames, len(skeleton.predicted), 3) * 0.1
    model.train()
    # auxiliary terms (a CVAE's KL) train the parts the prediction does not reach, such as the prior
    pred, aux = model.training_outputs(past, future) if hasattr(model, "training_outputs") else (model(past), {})
    assert pred.shape == future.shape
    ((pred - future).square().mean() + sum(aux.values())).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
