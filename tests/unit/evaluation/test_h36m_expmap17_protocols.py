"""DLow's protocol on the exp-map data (``h36m-expmap17-*``): the same settings, the same windows, a usable loader."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.cli.main import main
from crisscross.data.datasets import DATASETS
from crisscross.data.h36m import H36M_ACTIONS
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import H36M_17_SKELETON, H36M_SKELETON
from crisscross.evaluation.protocols import (
    ForecastProtocol,
    StochasticProtocol,
    default_protocol_name,
    get_protocol,
    list_protocols,
    protocol_windows,
)
from crisscross.tasks.forecasting.sampling import check_stochastic_loader
from crisscross.tasks.forecasting.task import ForecastingTask

EXPMAP = "h36m-expmap17-stochastic-25-100"
TWIN = "h36m-expmap17-25-100"


def _motion(lengths: dict[tuple[str, str, int], int]) -> MotionSet:
    return MotionSet.from_sequences([np.zeros((n, 17, 3), np.float32) for n in lengths.values()],
                                    [SequenceKey(*key) for key in lengths], H36M_17_SKELETON, 50,
                                    action_order=H36M_ACTIONS)


def test_the_exp_map_protocol_is_dlow_s_but_for_its_data():
    dlow, expmap = get_protocol("h36m-stochastic-25-100"), get_protocol(EXPMAP)
    assert isinstance(expmap, StochasticProtocol) and expmap.dataset == "h36m-expmap17"
    differ = {f.name for f in dataclasses.fields(StochasticProtocol)
              if getattr(dlow, f.name) != getattr(expmap, f.name)}
    assert differ == {"name", "dataset", "source", "description"}
    assert "exp-map" in expmap.source and "not DLow" in expmap.source and "Khrylx/DLow" in expmap.source
    assert "not DLow's data" in expmap.description
    assert list_protocols("h36m-expmap17") == [TWIN, EXPMAP]


def test_the_deterministic_twin_has_the_same_windows_on_the_validation_split():
    twin, expmap = get_protocol(TWIN), get_protocol(EXPMAP)
    assert type(twin) is ForecastProtocol and twin.split == "val" and twin.dataset == "h36m-expmap17"
    same = ("input_frames", "output_frames", "window_rule", "fps", "horizons_ms", "stride")
    assert all(getattr(twin, f) == getattr(expmap, f) for f in same)
    motion = _motion({("S9", "walking", 1): 300, ("S11", "eating", 2): 400})
    assert torch.equal(protocol_windows(motion, twin)[0], protocol_windows(motion, expmap)[0])
    # A training run on the set validates on the twin by default, never on a stochastic protocol.
    assert default_protocol_name("h36m-expmap17", 25, 100) == TWIN


def test_dlow_rule_window_count_on_known_lengths():
    # range(0, T - 125, 25): 7 windows for 300 frames, 6 for 275 (start 150 would end on the last frame),
    # 1 for 126, none for 125 and below.
    lengths = {("S9", "walking", 1): 300, ("S9", "walking", 2): 275, ("S11", "eating", 1): 126,
               ("S11", "eating", 2): 125, ("S11", "sitting", 1): 60}
    starts, actions, names = protocol_windows(_motion(lengths), get_protocol(EXPMAP))
    assert len(starts) == 7 + 6 + 1 == sum(len(range(0, n - 125, 25)) for n in lengths.values())
    assert names == ["walking", "eating"] and actions.tolist() == [0] * 13 + [1]
    assert starts[:7].tolist() == [0, 25, 50, 75, 100, 125, 150] and starts[13].item() == 300 + 275
    with pytest.raises(ValueError, match="50 fps"):
        protocol_windows(MotionSet.from_sequences([np.zeros((300, 32, 3), np.float32)],
                                                  [SequenceKey("S9", "walking", 1)], H36M_SKELETON, 25),
                         get_protocol(EXPMAP))


def test_registry_and_protocol_agree_and_the_loader_check_passes():
    expmap = get_protocol(EXPMAP)
    entry = DATASETS[expmap.dataset]
    assert (entry.task, entry.fps, entry.skeleton) == ("forecasting", expmap.fps, expmap.skeleton)
    assert set(expmap.test_subjects) | set(expmap.train_subjects) == {"S1", "S5", "S6", "S7", "S8", "S9", "S11"}
    check_stochastic_loader(expmap)
    check_stochastic_loader(get_protocol("h36m-stochastic-10-25"))
    assert ForecastingTask().resolve_protocol("h36m-expmap17", 25, 100, EXPMAP) is expmap
    # DLow's own protocol still needs h36m-npz as forecasting data: another dataset at 50 Hz on h36m17 is not it.
    with pytest.raises(ValueError, match=r"h36m-stochastic-25-100.*no data loader provides one yet.*lifting task "
                                         rf"only.*{EXPMAP}"):
        check_stochastic_loader(get_protocol("h36m-stochastic-25-100"))


def _write(root: Path, subject: str, action: str, take: int, frames: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 0.2, size=(frames, H36M_SKELETON.num_angle_values))
    values[:, 0:6] = rng.normal(0.0, 0.01, size=(frames, 6))
    values[0, :6] = 0.0
    path = root / subject / f"{action}_{take}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(",".join(f"{v:.6f}" for v in row) for row in values) + "\n")


def test_eval_of_a_weight_free_model_under_the_exp_map_protocol(tmp_path, capsys):
    data = tmp_path / "data"
    _write(data, "S9", "walking", 1, 200, 1)  # 3 windows
    _write(data, "S11", "walking", 2, 160, 2)  # 2 windows
    out = tmp_path / "eval.json"
    assert main(["eval", "--model", "zero-velocity", "--dataset", "h36m-expmap17", "--split", "test", "--protocol",
                 EXPMAP, "--data-dir", str(data), "--cache-dir", str(tmp_path / "cache"), "--samples", "2",
                 "--device", "cpu", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"protocol {EXPMAP} v1: 5 windows, K = 2" in text
    assert "not DLow's data (h36m-npz)" in text and "DLow's setting;" not in text
    result = json.loads(out.read_text())
    assert result["num_windows"] == 5 and result["scored_joints"] == list(range(1, 17)) and result["apd"] == 0.0
    assert (result["fps"], result["input_frames"], result["output_frames"]) == (50.0, 25, 100)
