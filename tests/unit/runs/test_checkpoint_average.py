"""Exporting several checkpoints as their uniform average (a model soup), checked against hand-computed values."""

import json

import pytest
import torch

from crisscross.runs.checkpoint import CheckpointError, export_checkpoint, load_checkpoint, save_checkpoint

META = {"predicted_joints": ["a", "b"], "input_frames": 10, "output_frames": 25, "fps": 25.0}


def _ckpt(path, w, *, ema=None, steps=0, name="stcformer", args=None, meta=None, extra_state=None):
    state = {"w": torch.tensor(w), "count": torch.tensor(steps), **(extra_state or {})}
    payload = {"model_state": state, "model_name": name, "model_args": args or {"dim": 4},
               "config": {"seed": steps}, "meta": dict(META, **(meta or {})), "train_state": {"step": steps}}
    if ema is not None:
        payload["ema_state"] = {"w": torch.tensor(ema), "count": torch.tensor(steps)}
    return save_checkpoint(path, payload)


def test_average_of_three_by_hand(tmp_path):
    a = _ckpt(tmp_path / "a.pt", [1.0, 2.0], steps=7)
    b = _ckpt(tmp_path / "b.pt", [100.0, 100.0], ema=[3.0, 5.0], steps=8)  # its EMA weights are what counts
    c = _ckpt(tmp_path / "c.pt", [-1.0, 11.0], steps=9)
    out = load_checkpoint(export_checkpoint([a, b, c], tmp_path / "soup.pt"))
    assert torch.allclose(out["model_state"]["w"], torch.tensor([1.0, 6.0]))  # (1+3-1)/3, (2+5+11)/3
    assert out["model_state"]["count"].item() == 7  # integer buffers: the first checkpoint's
    assert out["config"] == {"seed": 7} and out["meta"]["exported_from"] == "a.pt"
    assert [s["checkpoint"] for s in out["meta"]["averaged_from"]] == ["a.pt", "b.pt", "c.pt"]
    assert [s["weights"] for s in out["meta"]["averaged_from"]] == ["model", "ema", "model"]
    assert [s["training"]["step"] for s in out["meta"]["averaged_from"]] == [7, 8, 9]


def test_average_of_copies_is_the_original_and_single_export_has_no_soup_record(tmp_path):
    a = _ckpt(tmp_path / "a.pt", [0.1, 0.2, 0.3])
    single = load_checkpoint(export_checkpoint(a, tmp_path / "one.pt"))
    soup = load_checkpoint(export_checkpoint([a, a, a], tmp_path / "three.pt"))
    assert torch.allclose(single["model_state"]["w"], soup["model_state"]["w"], atol=1e-7)
    assert "averaged_from" not in single["meta"] and len(soup["meta"]["averaged_from"]) == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"name": "simlpe"}, r"b\.pt \(simlpe\) with .*a\.pt \(stcformer\)"),
    ({"args": {"dim": 8}}, r"b\.pt with .*a\.pt: they differ in dim"),
    ({"meta": {"output_frames": 50}}, "differ in output_frames"),
    ({"extra_state": {"v": torch.zeros(1)}}, "parameter names or shapes differ"),
])
def test_mismatched_checkpoints_are_refused_and_nothing_is_written(tmp_path, kwargs, message):
    a = _ckpt(tmp_path / "a.pt", [1.0, 2.0])
    b = _ckpt(tmp_path / "b.pt", [1.0, 2.0], **kwargs)
    with pytest.raises(CheckpointError, match=message):
        export_checkpoint([a, b], tmp_path / "soup.pt")
    assert not (tmp_path / "soup.pt").exists()


def test_shapes_must_match(tmp_path):
    a = _ckpt(tmp_path / "a.pt", [1.0, 2.0])
    b = _ckpt(tmp_path / "b.pt", [1.0, 2.0, 3.0])
    with pytest.raises(CheckpointError, match="shapes differ"):
        export_checkpoint([a, b], tmp_path / "soup.pt")


def test_an_export_names_its_source_by_run_and_leaves_the_machines_folders_out(tmp_path):
    ckpt_dir = tmp_path / "home" / "runs" / "lift" / "20260101-000000-abcdef" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    src = _ckpt(ckpt_dir / "last.pt", [1.0, 2.0], steps=3)
    payload = load_checkpoint(src)
    payload["config"] = {"data": {"dataset": "humaneva", "data_dir": str(tmp_path / "data"), "cache_dir": "/c"},
                         "track": {"root": str(tmp_path / "runs"), "name": "lift"}}
    src.unlink()
    save_checkpoint(src, payload)
    out = load_checkpoint(export_checkpoint(src, tmp_path / "released.pt"))
    assert out["meta"]["exported_from"] == "lift/20260101-000000-abcdef/checkpoints/last.pt"
    assert out["config"]["data"] == {"dataset": "humaneva", "data_dir": None, "cache_dir": None}
    assert out["config"]["track"] == {"root": "runs", "name": "lift"}
    assert str(tmp_path) not in repr(out)


def test_an_export_from_a_run_folder_names_the_device_it_trained_on(tmp_path):
    run = tmp_path / "runs" / "lift" / "20260101-000000-abcdef"
    (run / "checkpoints").mkdir(parents=True)
    (run / "env.json").write_text(json.dumps({"device": "cuda", "device_name": "NVIDIA H200"}))
    src = _ckpt(run / "checkpoints" / "last.pt", [1.0, 2.0], steps=3)
    assert load_checkpoint(export_checkpoint(src, tmp_path / "a.pt"))["meta"]["device"] == "NVIDIA H200"
    (run / "env.json").unlink()
    assert "device" not in load_checkpoint(export_checkpoint(src, tmp_path / "b.pt"))["meta"]
