"""Commands write under runs/ (or --out), never beside a loose checkpoint file, and leave nothing on failure."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from crisscross.cli.main import main

PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"


@pytest.mark.parametrize("command", ["attention", "animate"])
def test_a_loose_checkpoint_writes_under_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str) -> None:
    pytest.importorskip("matplotlib")
    released = tmp_path / "downloads" / "h36m-stcformer-seed0.pt"
    released.parent.mkdir()
    shutil.copy(PRETRAINED / "h36m-stcformer-seed0.pt", released)
    monkeypatch.chdir(tmp_path)
    options = ["--samples", "0"] if command == "attention" else ["--sample", "0", "--no-errors"]
    assert main([command, str(released), "--dataset", "synthetic", "--split", "val", *options]) == 0
    assert sorted(p.name for p in released.parent.iterdir()) == [released.name]  # nothing beside the file
    kind = "attention" if command == "attention" else "animations"
    assert (tmp_path / "runs" / kind / "stcformer").exists()


def test_a_model_without_attention_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    assert main(["attention", "--model", "simlpe", "--samples", "0"]) == 2
    assert not (tmp_path / "runs").exists()
