"""The committed lifting checkpoints describe themselves and load without unpickling code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crisscross.models.registry import get_model_entry
from crisscross.runs.checkpoint import load_model_from_checkpoint

PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"
LIFTERS = sorted(PRETRAINED.glob("humaneva-*.pt"))


def test_the_lifting_checkpoints_are_committed():
    assert len(LIFTERS) >= 8


@pytest.mark.parametrize("path", LIFTERS, ids=lambda p: p.name)
def test_a_lifting_checkpoint_self_describes_and_loads_with_weights_only(path: Path):
    ckpt = torch.load(path, weights_only=True)
    meta = ckpt["meta"]
    assert get_model_entry(ckpt["model_name"]).task == "lifting"
    assert meta["skeleton"] == "humaneva15" and meta["skeleton_spec"]["name"] == "humaneva15"
    assert meta["dataset"] == "humaneva" and meta["cameras"] == ["C1", "C2", "C3"]
    assert meta["subjects"] == ["Train/S1", "Train/S2", "Train/S3"]
    assert meta["receptive_field"] == meta["input_frames"] == 27 and meta["output_frames"] in (1, 27)
    assert "normalised screen coordinates" in meta["normalisation"] and meta["protocol"] == "humaneva-lift-27"
    assert meta["training"]["step"] > 0 and meta["device"]
    # nothing of the machine it was trained on: no data, cache or run folders, the source named by its run
    assert ckpt["config"]["data"]["data_dir"] is None and ckpt["config"]["data"]["cache_dir"] is None
    assert ckpt["config"]["track"]["root"] == "runs" and not meta["exported_from"].startswith("/")
    assert "optimizer" not in ckpt and "train_state" not in ckpt
    model = load_model_from_checkpoint(path, "cpu")[0]
    keypoints = torch.zeros(2, 27, 15, 2)
    with torch.no_grad():
        out = model.eval()(keypoints)
    assert out.shape == (2, meta["output_frames"], 15, 3) and torch.isfinite(out).all()
