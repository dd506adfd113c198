"""Atomic checkpoints with weights_only loading; run folders never reuse a path."""

import pytest
import torch

from crisscross.runs.checkpoint import CheckpointError, load_checkpoint, portable_config, save_checkpoint
from crisscross.runs.folders import create_run_dir, read_json, update_status


def _payload():
    return {"model_state": {"w": torch.ones(2)}, "model_name": "x", "model_args": {}, "config": {"seed": 1},
            "meta": {"fps": 25.0}, "rng_cpu": torch.get_rng_state()}


def test_save_load_round_trip(tmp_path):
    path = save_checkpoint(tmp_path / "c" / "last.pt", _payload())
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model_state"]["w"], torch.ones(2))
    assert not list(path.parent.glob("*.tmp"))


def test_failed_write_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", _payload())

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_checkpoint(path, {**_payload(), "model_name": "y"})
    assert load_checkpoint(path)["model_name"] == "x"
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="lacks model_state"):
        load_checkpoint(tmp_path / "other.pt")


def test_run_dirs_are_new_each_time(tmp_path):
    dirs = {create_run_dir(tmp_path, "exp") for _ in range(20)}
    assert len(dirs) == 20
    d = next(iter(dirs))
    update_status(d, "running")
    update_status(d, "completed", step=3)
    status = read_json(d / "status.json")
    assert status["status"] == "completed" and status["step"] == 3 and "ended_at" in status


@pytest.mark.parametrize(("init_from", "kept"), [
    ("pretrained/h36m-stcformer-seed0.pt", "pretrained/h36m-stcformer-seed0.pt"),  # relative: stays
    ("/home/me/runs/h36m-x/20260101-000000-abcdef/checkpoints/best.pt",
     "h36m-x/20260101-000000-abcdef/checkpoints/best.pt"),
    ("/home/me/runs/h36m-x/20260101-000000-abcdef/", "h36m-x/20260101-000000-abcdef"),
    ("/tmp/stage2.pt", "stage2.pt"),
    ("../other/weights.pt", "weights.pt"),
])
def test_a_released_config_names_its_starting_weights_without_the_machines_folders(init_from, kept):
    config = {"data": {"data_dir": "/data/h36m", "cache_dir": "/cache"}, "track": {"root": "/home/me/runs"},
              "train": {"init_from": init_from, "epochs": 2}}
    out = portable_config(config)
    assert out["train"] == {"init_from": kept, "epochs": 2}
    assert out["data"] == {"data_dir": None, "cache_dir": None} and out["track"] == {"root": "runs"}
    assert config["train"]["init_from"] == init_from  # the run's own config is left as it was
