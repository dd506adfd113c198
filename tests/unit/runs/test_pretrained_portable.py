"""No committed checkpoint carries a path of the machine it was made on (data, cache or run folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"


def _strings(value, where: str):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}.{i}")
    elif isinstance(value, str):
        yield where, value


@pytest.mark.parametrize("path", sorted(PRETRAINED.glob("*.pt")), ids=lambda p: p.name)
def test_a_released_checkpoint_holds_no_machine_path(path: Path) -> None:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["config"]["data"]["data_dir"] is None and ckpt["config"]["data"]["cache_dir"] is None
    for where, text in [*_strings(ckpt["config"], "config"), *_strings(ckpt["meta"], "meta")]:
        machine = text.startswith(("/", "~", "..")) or "shared/" in text or "/tmp" in text or "\\" in text
        assert not machine, f"{path.name}: {where} = {text!r}"
