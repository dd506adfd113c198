"""Peers' released weights, imported and evaluated by crisscross, reproduce their authors' own figures.

The released files are not part of the repository: they are found in ``$CRISSCROSS_PEERS`` or in a ``peers``
folder beside the datasets (``../shared/peers``), and the tests skip without them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crisscross.data.h36m import H36M_ACTIONS
from crisscross.runs.peers import PEER_FORMATS, import_peer
from crisscross.tasks.sources import evaluate_source

pytestmark = pytest.mark.realdata

REPO_ROOT = Path(__file__).resolve().parents[2]
#: siMLPe's released Human3.6M weights measured with siMLPe's own evaluation code: S11, the 14 actions with both
#: takes in the shared data (all but sittingdown), 256 windows each, 32-joint MPJPE (mm) at 80 ... 1000 ms.
SIMLPE_OWN_FIGURES = {"80": 8.3, "160": 17.9, "320": 37.2, "400": 46.0, "560": 61.4, "720": 73.7, "880": 84.0,
                      "1000": 91.7}


def released_file(peer: str) -> Path:
    """The peer's released file, or skip."""
    root = Path(os.environ.get("CRISSCROSS_PEERS", REPO_ROOT.parent / "shared" / "peers"))
    path = root / peer / PEER_FORMATS[peer].released_file
    if not path.is_file():
        pytest.skip(f"{path} not found (set CRISSCROSS_PEERS or provide ../shared/peers)")
    return path


def test_imported_simlpe_reproduces_its_authors_figures(tmp_path: Path, h36m_root: Path, cache_dir: Path) -> None:
    checkpoint = import_peer("simlpe", released_file("simlpe"), tmp_path / "simlpe-released.pt")
    actions = tuple(a for a in H36M_ACTIONS if a != "sittingdown")
    result = evaluate_source(checkpoint, split="val", protocol="h36m-50-25-256", data_dir=str(h36m_root),
                             cache_dir=str(cache_dir), actions=actions, device="cpu")
    assert result["num_windows"] == 14 * 256
    measured = result["mpjpe32_mm"]["mean"]
    for horizon, figure in SIMLPE_OWN_FIGURES.items():
        assert measured[horizon] == pytest.approx(figure, abs=0.05 + 1e-9), (horizon, measured[horizon], figure)
