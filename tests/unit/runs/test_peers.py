"""Peers' released weights into crisscross checkpoints: the key map, the refusals, and siMLPe's own forward pass."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from crisscross.cli.main import main
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.runs.checkpoint import CheckpointError, load_model_from_checkpoint
from crisscross.runs.peers import PEER_FORMATS, import_peer

BLOCKS, FRAMES, CHANNELS = 48, 50, 66


def simlpe_reference(state: dict, past: torch.Tensor) -> torch.Tensor:
    """siMLPe's test-time step written from its paper and test.py: DCT, fc_in over channels, 48 blocks of
    x + LN_C(Linear_T(x)), fc_out, inverse DCT, the first 10 frames plus the last observed pose."""
    n = FRAMES
    k, i = torch.arange(n)[:, None].double(), torch.arange(n)[None].double()
    dct = torch.cos(math.pi * (i + 0.5) * k / n) * torch.where(k == 0, math.sqrt(1 / n), math.sqrt(2 / n))
    x = past.reshape(past.shape[0], n, CHANNELS).double()
    h = (dct @ x) @ state["motion_fc_in.weight"].double().T + state["motion_fc_in.bias"].double()
    h = h.transpose(1, 2)  # [B, C, T]
    for b in range(BLOCKS):
        y = h @ state[f"motion_transformer.transformer.{b}.fc0.fc.weight"].double().T
        y = y + state[f"motion_transformer.transformer.{b}.fc0.fc.bias"].double()
        mean = y.mean(dim=1, keepdim=True)
        std = ((y - mean) ** 2).mean(dim=1, keepdim=True).add(1e-5).sqrt()
        y = (y - mean) / std * state[f"motion_transformer.transformer.{b}.norm0.alpha"].double()
        h = h + y + state[f"motion_transformer.transformer.{b}.norm0.beta"].double()
    h = h.transpose(1, 2) @ state["motion_fc_out.weight"].double().T + state["motion_fc_out.bias"].double()
    out = (torch.linalg.inv(dct) @ h)[:, :10] + x[:, -1:]
    return out.reshape(past.shape[0], 10, 22, 3)


def test_the_imported_model_computes_simlpes_step(tmp_path: Path, released_simlpe) -> None:
    state = released_simlpe()
    torch.save(state, tmp_path / "h36m_model_40000.pth")
    out = import_peer("simlpe", tmp_path / "h36m_model_40000.pth", tmp_path / "simlpe.pt")
    model, ckpt = load_model_from_checkpoint(out)
    assert ckpt["model_name"] == "simlpe-48" and ckpt["meta"]["protocol"] == "h36m-50-25-256"
    assert (ckpt["meta"]["input_frames"], ckpt["meta"]["output_frames"]) == (50, 10)
    assert ckpt["meta"]["imported_from"]["peer"] == "simlpe" and ckpt["config"]["data"]["data_dir"] is None
    past = torch.randn(3, 50, 22, 3, generator=torch.Generator().manual_seed(1)) * 0.3
    with torch.no_grad():
        torch.testing.assert_close(model(past).double(), simlpe_reference(state, past), atol=1e-5, rtol=1e-5)


def test_the_evaluation_rolls_it_out_to_25_frames_as_simlpe_does(tmp_path: Path, released_simlpe) -> None:
    state = released_simlpe(2)
    torch.save(state, tmp_path / "w.pth")
    model, _ = load_model_from_checkpoint(import_peer("simlpe", tmp_path / "w.pth", tmp_path / "s.pt"))
    full = torch.randn(2, 50, 32, 3, generator=torch.Generator().manual_seed(3)) * 300  # mm, 32 joints
    predicted = list(H36M_SKELETON.predicted)
    pred = make_predict_fn(model, H36M_SKELETON, 25)(full)[:, :, predicted] / 1000
    window, steps = full[:, :, predicted] / 1000, []
    for _ in range(3):  # siMLPe's test.py: 3 steps of 10, the window keeps its last 50 frames
        step = simlpe_reference(state, window).float()
        steps.append(step)
        window = torch.cat([window, step], dim=1)[:, -50:]
    torch.testing.assert_close(pred, torch.cat(steps, dim=1)[:, :25], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.update({"motion_fc_extra.weight": torch.zeros(3)}), r"1 key\(s\) a simlpe checkpoint does not have"),
    (lambda s: s.pop("motion_fc_out.bias"), r"missing 1 weight\(s\) of simlpe-48: fc_out.bias"),
    (lambda s: s.update({"motion_fc_in.weight": torch.zeros(66, 60)}), r"motion_fc_in.weight has shape \[66, 60\]"),
])
def test_what_does_not_fit_is_named_in_one_line(tmp_path: Path, change, message: str, released_simlpe) -> None:
    state = released_simlpe()
    change(state)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=message) as err:
        import_peer("simlpe", tmp_path / "bad.pth", tmp_path / "out.pt")
    assert "bad.pth" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.pt").exists()


def test_the_command_converts_and_refuses_in_one_line(tmp_path: Path, capsys, released_simlpe) -> None:
    torch.save(released_simlpe(), tmp_path / "h36m_model_40000.pth")
    out = tmp_path / "simlpe.pt"
    assert main(["import", "simlpe", str(tmp_path / "h36m_model_40000.pth"), "-o", str(out)]) == 0
    assert "simlpe-48 (137,580 parameters)" in capsys.readouterr().out
    assert main(["import", "simlpe", str(tmp_path / "h36m_model_40000.pth"), "-o", str(out)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("not weights")
    assert main(["import", "simlpe", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "x.pt")]) == 2
    err = capsys.readouterr().err
    assert "cannot be read as a PyTorch state dict" in err and err.count("\n") == 1
    assert list(PEER_FORMATS) == ["simlpe"]
