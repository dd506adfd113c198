"""Protocol window rules on sequences of known length, reproduced by hand from the literature's formulas."""

import numpy as np
import pytest
import torch

from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import CMU_SKELETON, H36M_17_FROM_32, H36M_17_SKELETON, H36M_SKELETON
from crisscross.evaluation.protocols import (
    PROTOCOLS,
    ForecastProtocol,
    StochasticProtocol,
    default_protocol_name,
    get_protocol,
    horizons_to_frames,
    list_protocols,
    protocol_windows,
)

LENGTHS = {("walking", 1): 300, ("walking", 2): 250, ("eating", 1): 400, ("eating", 2): 380}


def _h36m_like(lengths=LENGTHS, subject="S5") -> MotionSet:
    keys = [SequenceKey(subject, action, sub) for (action, sub) in lengths]
    sequences = [np.zeros((n, 32, 3), np.float32) for n in lengths.values()]
    return MotionSet.from_sequences(sequences, keys, H36M_SKELETON, 25, action_order=["walking", "eating"])


def _local(motion: MotionSet, starts: torch.Tensor, seq: int) -> list[int]:
    first, n = int(motion.seq_starts[seq]), int(motion.seq_lengths[seq])
    return [s - first for s in starts.tolist() if first <= s < first + n]


def test_required_protocols_exist_with_literature_horizons():
    for name in ("h36m-10-25-256", "h36m-10-25-srnn8", "h36m-10-25-all", "h36m-50-25-256", "h36m-50-25-srnn8",
                 "h36m-50-25-all", "cmu-10-25-8", "cmu-10-25-all", "synthetic-10-25"):
        assert get_protocol(name).horizon_frames == (2, 4, 8, 10, 14, 18, 22, 25)
    with pytest.raises(KeyError, match="h36m-10-25-256"):
        get_protocol("h36m-unknown")


def test_window_counts_per_rule():
    motion = _h36m_like()
    for name, per_action in (("h36m-10-25-256", [256, 256]), ("h36m-10-25-srnn8", [8, 8]),
                             ("h36m-50-25-256", [256, 256]), ("h36m-10-25-all", [200 + 150, 300 + 280])):
        _starts, action_index, names = protocol_windows(motion, PROTOCOLS[name])
        assert names == ["walking", "eating"]
        assert torch.bincount(action_index).tolist() == per_action, name


def test_256_draws_follow_find_indices_order_and_formula():
    motion = _h36m_like()
    starts, _, _ = protocol_windows(motion, PROTOCOLS["h36m-10-25-256"])
    rng = np.random.RandomState(1234567890)
    idx1, idx2 = [], []
    for _ in range(128):  # idx1 then idx2 in every iteration
        idx1.append(rng.randint(16, 300 - 150))
        idx2.append(rng.randint(16, 250 - 150))
    assert _local(motion, starts, 0) == [i + 50 - 10 for i in idx1]
    assert _local(motion, starts, 1) == [i + 50 - 10 for i in idx2]


def test_srnn8_windows_are_the_first_four_draws_of_256():
    motion = _h36m_like()
    s256, _, _ = protocol_windows(motion, PROTOCOLS["h36m-10-25-256"])
    s8, _, _ = protocol_windows(motion, PROTOCOLS["h36m-10-25-srnn8"])
    for seq in range(4):
        assert _local(motion, s8, seq) == _local(motion, s256, seq)[:4]


def test_input_length_does_not_change_the_predicted_frames():
    motion = _h36m_like()
    s10, _, _ = protocol_windows(motion, PROTOCOLS["h36m-10-25-256"])
    s50, _, _ = protocol_windows(motion, PROTOCOLS["h36m-50-25-256"])
    assert torch.equal(s10 + 10, s50 + 50)


def test_all_rule_starts_every_frame_below_t_minus_100():
    motion = _h36m_like()
    starts, _, _ = protocol_windows(motion, PROTOCOLS["h36m-10-25-all"])
    assert _local(motion, starts, 1) == list(range(250 - 100))
    windows = motion.gather(starts, 35)
    assert windows.shape[0] == starts.numel()


def test_missing_subaction_gets_its_own_draws():
    lengths = {("walking", 2): 250}
    motion = _h36m_like(lengths)
    starts, _, _ = protocol_windows(motion, PROTOCOLS["h36m-10-25-256"])
    rng = np.random.RandomState(1234567890)
    assert starts.tolist() == [rng.randint(16, 100) + 40 for _ in range(128)]


def test_cmu_rules():
    keys = [SequenceKey("train", "walking", 1), SequenceKey("train", "walking", 3)]
    motion = MotionSet.from_sequences([np.zeros((200, 38, 3), np.float32), np.zeros((120, 38, 3), np.float32)],
                                      keys, CMU_SKELETON, 25)
    starts, _action_index, _ = protocol_windows(motion, PROTOCOLS["cmu-10-25-8"])
    assert starts.numel() == 16
    rng = np.random.RandomState(1234567890)  # a fresh RNG per file
    assert _local(motion, starts, 0) == [rng.randint(0, 200 - 75) + 40 for _ in range(8)]
    rng = np.random.RandomState(1234567890)
    assert _local(motion, starts, 1) == [rng.randint(0, 120 - 75) + 40 for _ in range(8)]
    every, _, _ = protocol_windows(motion, PROTOCOLS["cmu-10-25-all"])
    assert every.numel() == (200 - 35 + 1) + (120 - 35 + 1)


def test_strided_rule_counts_and_alignment():
    motion = _h36m_like({("walking", 1): 500})
    s10, _, _ = protocol_windows(motion, ForecastProtocol("t10", "x", 10, 25, "strided", stride=5))
    s50, _, _ = protocol_windows(motion, ForecastProtocol("t50", "x", 50, 25, "strided", stride=5))
    assert s10.numel() == s50.numel() == (500 - 25 - 50) // 5 + 1
    assert torch.equal(s10 + 10, s50 + 50) and int(s10[0]) == 40


def test_errors_name_the_problem():
    short = _h36m_like({("walking", 1): 160, ("walking", 2): 300})
    with pytest.raises(ValueError, match="S5/walking_1"):
        protocol_windows(short, PROTOCOLS["h36m-10-25-256"])
    at50 = MotionSet.from_sequences([np.zeros((400, 32, 3), np.float32)], [SequenceKey("S5", "a", 1)],
                                    H36M_SKELETON, 50)
    with pytest.raises(ValueError, match="25 fps"):
        protocol_windows(at50, PROTOCOLS["h36m-10-25-all"])
    with pytest.raises(ValueError, match="horizon"):
        ForecastProtocol("bad", "x", 10, 10, "all")  # 1000 ms is beyond 10 output frames


def test_stochastic_protocols_record_dlow_and_the_deterministic_windows():
    dlow = get_protocol("h36m-stochastic-25-100")
    assert isinstance(dlow, StochasticProtocol) and isinstance(dlow, ForecastProtocol)
    assert (dlow.input_frames, dlow.output_frames, dlow.fps, dlow.samples) == (25, 100, 50.0, 50)
    assert (dlow.window_rule, dlow.stride, dlow.multimodal_threshold_mm) == ("dlow", 25, 500.0)
    assert dlow.skeleton == H36M_17_SKELETON.name and dlow.scored_joints == tuple(range(1, 17))  # root not scored
    assert dlow.train_subjects == ("S1", "S5", "S6", "S7", "S8") and dlow.test_subjects == ("S9", "S11")
    assert dlow.horizon_frames == (4, 8, 16, 20, 28, 36, 44, 50, 75, 100)
    assert "Khrylx/DLow" in dlow.source
    # DLow's dataset_h36m.py keeps the 32 joints minus these 15: the 17-joint layout of the lifting literature.
    removed = {4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31}
    assert H36M_17_FROM_32 == tuple(j for j in range(32) if j not in removed)

    short = get_protocol("h36m-stochastic-10-25")
    deterministic = get_protocol("h36m-10-25-256")
    assert (short.samples, short.skeleton, short.scored_joints) == (50, "h36m", H36M_SKELETON.predicted)
    assert short.horizon_frames == deterministic.horizon_frames and short.test_subjects == ("S5",)
    motion = _h36m_like()
    assert torch.equal(protocol_windows(motion, short)[0], protocol_windows(motion, deterministic)[0])
    assert "h36m-stochastic-25-100" in list_protocols("h36m-npz")


def test_dlow_rule_leaves_out_the_window_ending_on_the_last_frame():
    protocol = get_protocol("h36m-stochastic-25-100")
    lengths = {("walking", 1): 300, ("walking", 2): 275}  # 275 - 125 = 150: start 150 would end on the last frame
    keys = [SequenceKey("S9", a, s) for (a, s) in lengths]
    motion = MotionSet.from_sequences([np.zeros((n, 17, 3), np.float32) for n in lengths.values()], keys,
                                      H36M_17_SKELETON, 50)
    starts, _, names = protocol_windows(motion, protocol)
    assert names == ["walking"]
    assert _local(motion, starts, 0) == [0, 25, 50, 75, 100, 125, 150]
    assert _local(motion, starts, 1) == [0, 25, 50, 75, 100, 125]


def test_no_deterministic_default_is_stochastic_and_bad_stochastic_fields_fail():
    assert default_protocol_name("h36m", 10, 25) == "h36m-10-25-256"
    with pytest.raises(ValueError, match="no protocol"):
        default_protocol_name("h36m-npz", 25, 100)
    with pytest.raises(ValueError, match="samples"):
        StochasticProtocol("bad", "x", 10, 25, "strided", samples=0)
    with pytest.raises(ValueError, match="threshold"):
        StochasticProtocol("bad", "x", 10, 25, "strided", multimodal_threshold_mm=-1.0)
    with pytest.raises(ValueError, match="scored_joints"):
        StochasticProtocol("bad", "x", 10, 25, "strided", scored_joints=(1, 1))


def test_horizons_to_frames_at_25_and_50_hz():
    assert horizons_to_frames((80, 1000), 25.0, 25) == (2, 25)
    assert horizons_to_frames((80, 1000, 2000), 50.0, 100) == (4, 50, 100)
    with pytest.raises(ValueError, match="2000 ms"):
        horizons_to_frames((2000,), 25.0, 25)
    with pytest.raises(ValueError, match="30 ms"):
        horizons_to_frames((30,), 25.0, 25)
