"""DLow's stochastic-forecasting metrics on hand-computed cases, their invariances, and the batch evaluator."""

import json
import math

import numpy as np
import pytest
import torch

from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.evaluation.metrics import METRICS, mpjpe
from crisscross.evaluation.protocols import StochasticProtocol
from crisscross.evaluation.stochastic import (
    STOCHASTIC_METRICS,
    ade_best_of_k,
    apd,
    deterministic_sample_fn,
    evaluate_stochastic,
    evaluate_stochastic_protocol,
    fde_best_of_k,
    first_sample_mpjpe,
    get_stochastic_metric,
    mmade,
    mmfde,
    multimodal_futures,
    pose_error,
    sample_mean_mpjpe,
)

X = torch.tensor([1.0, 0.0, 0.0])


def _random(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- APD -----------------------------------------------------------------------------------------------------------

def test_apd_of_samples_offset_by_known_distances():
    base = _random(1, 2, 2, 3)  # [B, T, J, 3]; every one of the T * J = 4 points moves by the offset
    two = torch.stack([base, base + X])  # distance sqrt(4 * 1^2) = 2
    assert apd(two).tolist() == pytest.approx([2.0])
    three = torch.stack([base, base + X, base + 2 * X])  # pairs 2, 4, 2
    assert apd(three).tolist() == pytest.approx([8.0 / 3.0])
    assert apd(base[None]).tolist() == [0.0]  # K = 1


def test_apd_is_per_window():
    a = torch.zeros(1, 1, 3)
    samples = torch.stack([torch.stack([a, a]), torch.stack([a + X, a + 3 * X])])  # [K=2, B=2, 1, 1, 3]
    assert apd(samples).tolist() == pytest.approx([1.0, 3.0])


def test_apd_invariant_to_sample_order_and_common_translation():
    samples = _random(5, 3, 4, 6, 3)
    reference = apd(samples)
    torch.testing.assert_close(apd(samples[torch.tensor([3, 0, 4, 1, 2])]), reference)
    torch.testing.assert_close(apd(samples + torch.tensor([5.0, -2.0, 7.0])), reference, atol=1e-4, rtol=1e-5)


# --- ADE / FDE -----------------------------------------------------------------------------------------------------

def test_ade_and_fde_take_the_best_sample_each():
    target = torch.zeros(1, 2, 1, 3)  # B = 1, T = 2, J = 1
    first = torch.tensor([[[3.0, 4.0, 0.0]], [[0.0, 0.0, 0.0]]])[None]  # errors 5, 0: ADE 2.5, FDE 0
    second = torch.tensor([[[1.0, 0.0, 0.0]], [[1.0, 0.0, 0.0]]])[None]  # errors 1, 1: ADE 1, FDE 1
    samples = torch.stack([first, second])
    assert pose_error(samples, target)[:, 0].tolist() == [[5.0, 0.0], [1.0, 1.0]]
    assert ade_best_of_k(samples, target).tolist() == [1.0]  # the second sample
    assert fde_best_of_k(samples, target).tolist() == [0.0]  # the first sample


def test_frame_error_is_the_flattened_norm_not_mpjpe():
    target = torch.zeros(1, 1, 2, 3)
    pred = torch.tensor([[[[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]]])  # joint errors 3 and 4
    assert ade_best_of_k(pred[None], target).tolist() == [5.0]  # sqrt(3^2 + 4^2)
    assert mpjpe(pred, target).tolist() == [[3.5]]  # (3 + 4) / 2
    equal = torch.ones(1, 1, 2, 3) * X  # both joints 1 off: sqrt(2) J-norm against MPJPE 1
    assert fde_best_of_k(equal[None], target).item() == pytest.approx(math.sqrt(2))
    assert mpjpe(equal, target).item() == pytest.approx(1.0)


def test_best_of_k_invariant_to_permuting_samples():
    samples, target = _random(6, 4, 5, 3, 3, seed=1), _random(4, 5, 3, 3, seed=2)
    order = torch.tensor([5, 2, 0, 1, 4, 3])
    torch.testing.assert_close(ade_best_of_k(samples[order], target), ade_best_of_k(samples, target))
    torch.testing.assert_close(fde_best_of_k(samples[order], target), fde_best_of_k(samples, target))


def test_sample_mean_and_first_sample_mpjpe():
    target = _random(2, 3, 4, 3)
    samples = torch.stack([target + X, target - X])  # mean = target; first sample 1 off on every joint
    torch.testing.assert_close(sample_mean_mpjpe(samples, target), torch.zeros(2, 3))
    torch.testing.assert_close(first_sample_mpjpe(samples, target), torch.ones(2, 3))


# --- multi-modal ground truth --------------------------------------------------------------------------------------

def _line_poses(xs):
    return torch.tensor([[[x, 0.0, 0.0]] for x in xs])  # [N, J=1, 3]


def test_multimodal_futures_on_four_start_poses():
    starts = _line_poses([0.0, 0.25, 0.75, 2.0])
    futures = torch.zeros(4, 3, 1, 3)
    groups = [g.tolist() for g in multimodal_futures(starts, futures, 0.5)]
    assert groups == [[0, 1], [0, 1], [2], [3]]  # 0.25 -> 0.75 is exactly 0.5: not strictly below
    groups = [g.tolist() for g in multimodal_futures(starts, futures, 0.75)]
    assert groups == [[0, 1], [0, 1, 2], [1, 2], [3]]
    assert [g.tolist() for g in multimodal_futures(starts, futures, 0.0)] == [[0], [1], [2], [3]]  # always itself
    for chunk in (1, 3):
        assert [g.tolist() for g in multimodal_futures(starts, futures, 0.75, chunk_size=chunk)] == groups


def test_multimodal_distance_uses_the_flattened_pose():
    starts = torch.zeros(2, 2, 3)
    starts[1] += X * 0.3  # both joints 0.3 off: distance 0.3 * sqrt(2) = 0.424
    futures = torch.zeros(2, 1, 2, 3)
    assert [g.tolist() for g in multimodal_futures(starts, futures, 0.43)] == [[0, 1], [0, 1]]
    assert [g.tolist() for g in multimodal_futures(starts, futures, 0.42)] == [[0], [1]]


def test_mmade_hand_case_and_equals_ade_when_alone():
    futures = torch.stack([torch.zeros(1, 1, 3), 2 * X.view(1, 1, 3)])  # [N=2, T=1, J=1, 3] at x = 0 and 2
    samples = (0.5 * X).view(1, 1, 1, 1, 3)  # K = 1, window 0, at x = 0.5: 0.5 from its future, 1.5 from the other
    together = [torch.tensor([0, 1])]
    assert mmade(samples, futures, together).tolist() == [1.0]
    assert mmfde(samples, futures, together).tolist() == [1.0]
    samples, futures = _random(4, 3, 5, 2, 3, seed=3), _random(3, 5, 2, 3, seed=4)
    alone = [torch.tensor([i]) for i in range(3)]
    torch.testing.assert_close(mmade(samples, futures, alone), ade_best_of_k(samples, futures))
    torch.testing.assert_close(mmfde(samples, futures, alone), fde_best_of_k(samples, futures))


# --- shapes, dtypes, registry --------------------------------------------------------------------------------------

def test_shapes_and_dtype_promotion():
    samples, target = _random(3, 2, 4, 5, 3), _random(2, 4, 5, 3)
    assert pose_error(samples, target).shape == (3, 2, 4)
    assert apd(samples).shape == ade_best_of_k(samples, target).shape == fde_best_of_k(samples, target).shape == (2,)
    assert sample_mean_mpjpe(samples, target).shape == (2, 4)
    assert apd(samples.half()).dtype == torch.float32
    assert ade_best_of_k(samples.half(), target.half()).dtype == torch.float32
    assert ade_best_of_k(samples, target.double()).dtype == torch.float64
    assert apd(samples.double()).dtype == torch.float64
    torch.testing.assert_close(ade_best_of_k(samples.double(), target.double()).float(),
                               ade_best_of_k(samples, target))
    with pytest.raises(ValueError, match="target"):
        ade_best_of_k(samples, target[:, :3])
    with pytest.raises(ValueError, match=r"\[K, B, T, J, 3\]"):
        apd(target)


def test_stochastic_registry():
    assert set(STOCHASTIC_METRICS) == {"pose_error", "apd", "ade", "fde", "mmade", "mmfde", "sample_mean_mpjpe",
                                       "first_sample_mpjpe"}
    assert not set(STOCHASTIC_METRICS) & set(METRICS)
    assert all(m.name == n and m.unit and m.description and m.inputs[0] == "samples"
               for n, m in STOCHASTIC_METRICS.items())
    assert get_stochastic_metric("ade").fn is ade_best_of_k
    with pytest.raises(KeyError, match="apd"):
        get_stochastic_metric("nope")


# --- batch evaluation ----------------------------------------------------------------------------------------------

T_IN, T_OUT, D = 2, 4, 10.0
Z = torch.tensor([0.0, 0.0, 1.0])


def _static_windows() -> torch.Tensor:
    """Four static windows [N=4, T_in + T_out, J=2, 3] (mm); the start poses of 0 and 1 are 30 * sqrt(2) apart."""
    base = torch.tensor([[0.0, 0.0, 0.0], [0.0, 100.0, 0.0]])
    shifts = [0.0, 30.0, 1000.0, 2000.0]
    return torch.stack([(base + s * Z).expand(T_IN + T_OUT, 2, 3) for s in shifts])


def _truth_plus_offsets(windows: torch.Tensor, noise: float = 0.0):
    """sample_fn: sample k is the true future moved by (k + 1) * D along x (plus Gaussian noise)."""

    def sample(past: torch.Tensor, k: int) -> torch.Tensor:
        match = (past[:, None] == windows[None, :, :T_IN]).flatten(2).all(-1).float().argmax(1)
        future = windows[match, T_IN:]
        offsets = (torch.arange(1, k + 1, dtype=torch.float32) * D)[:, None, None, None, None] * X
        return future[None] + offsets + noise * torch.randn(k, *future.shape)

    return sample


def test_evaluate_stochastic_figures():
    windows = _static_windows()
    result = evaluate_stochastic(_truth_plus_offsets(windows), windows, T_IN, samples=3, threshold=50.0, unit="mm",
                                 seed=0, batch_size=3, fps=25.0, horizons_ms=(80, 160))
    best = D * math.sqrt(2)  # sample 0: both joints D off
    assert result["ade"] == pytest.approx(best) and result["fde"] == pytest.approx(best)
    assert result["apd"] == pytest.approx(math.sqrt(T_OUT * 2) * D * 4 / 3)  # pairs D, 2D, D apart on 8 points
    # windows 0 and 1 share futures: against the other future the best sample is off by (D, 0, 30) on each joint.
    cross = math.sqrt(2 * (D ** 2 + 30.0 ** 2))
    assert result["mmade"] == pytest.approx((2 * (best + cross) / 2 + 2 * best) / 4)
    assert result["mmfde"] == pytest.approx(result["mmade"])
    assert result["ade_by_horizon"] == pytest.approx({"80": best, "160": best})
    assert result["fde_by_horizon_mm"] == pytest.approx({"80": best, "160": best})
    assert result["mpjpe_sample_mean_by_horizon"] == pytest.approx({"80": 2 * D, "160": 2 * D, "avg": 2 * D})
    assert result["mpjpe_first_sample_by_horizon"] == pytest.approx({"80": D, "160": D, "avg": D})
    assert result["per_frame"]["ade"] == pytest.approx([best] * T_OUT)
    assert result["multimodal_futures"] == {"mean": 1.5, "min": 1, "max": 2, "alone": 0.5}
    assert (result["k"], result["num_windows"], result["output_frames"], result["seed"]) == (3, 4, T_OUT, 0)
    assert result["ade_mm"] == result["ade"] and result["multimodal_threshold"] == 50.0
    assert json.loads(json.dumps(result)) == result


def test_evaluate_stochastic_units_joints_and_batches():
    windows = _static_windows()
    sample_fn = _truth_plus_offsets(windows)
    in_metres = evaluate_stochastic(sample_fn, windows, T_IN, samples=2, threshold=0.0, unit="m")
    assert in_metres["ade_mm"] == pytest.approx(1000 * in_metres["ade"])
    assert in_metres["mmade"] == pytest.approx(in_metres["ade"])  # threshold 0: every window alone
    one_joint = evaluate_stochastic(sample_fn, windows, T_IN, samples=2, threshold=0.0, scored_joints=[1])
    assert one_joint["ade"] == pytest.approx(D) and one_joint["scored_joints"] == [1]
    other = evaluate_stochastic(sample_fn, windows, T_IN, samples=2, threshold=0.0, unit="m", batch_size=1)
    assert other["apd"] == pytest.approx(in_metres["apd"]) and other["mmfde"] == pytest.approx(in_metres["mmfde"])
    unknown = evaluate_stochastic(sample_fn, windows, T_IN, samples=2, threshold=0.0, unit="normalised")
    assert "ade_mm" not in unknown
    with pytest.raises(ValueError, match="sample_fn returned"):
        evaluate_stochastic(lambda past, k: torch.zeros(k, past.shape[0], 1, 2, 3), windows, T_IN, samples=2,
                            threshold=1.0)
    with pytest.raises(ValueError, match="horizon"):
        evaluate_stochastic(sample_fn, windows, T_IN, samples=2, threshold=1.0, fps=25.0, horizons_ms=(1000,))


def test_evaluate_stochastic_is_deterministic_given_a_seed_and_leaves_the_rng_alone():
    windows = _static_windows()
    sample_fn = _truth_plus_offsets(windows, noise=5.0)
    before = torch.get_rng_state()
    first = evaluate_stochastic(sample_fn, windows, T_IN, samples=4, threshold=50.0, seed=7)
    assert torch.equal(torch.get_rng_state(), before)
    again = evaluate_stochastic(sample_fn, windows, T_IN, samples=4, threshold=50.0, seed=7)
    other = evaluate_stochastic(sample_fn, windows, T_IN, samples=4, threshold=50.0, seed=8)
    assert first == again
    assert first["apd"] != other["apd"]
    assert first["ade"] != pytest.approx(D * math.sqrt(2))  # the noise is really there


def test_deterministic_sample_fn_scores_zero_diversity():
    windows = _static_windows()
    exact = deterministic_sample_fn(lambda past: past[:, -1:].expand(-1, T_OUT, -1, -1))  # static: exact
    result = evaluate_stochastic(exact, windows, T_IN, samples=5, threshold=50.0)
    assert (result["apd"], result["ade"], result["fde"]) == (0.0, 0.0, 0.0)
    # windows 0 and 1: against one future exact, against the other 30 * sqrt(2) off; 2 and 3 alone and exact
    assert result["mmade"] == pytest.approx((2 * (0.0 + math.sqrt(2) * 30.0) / 2) / 4)


def test_evaluate_stochastic_protocol_on_a_motion_set():
    frames = 20
    rng = np.random.RandomState(0)
    sequences = [rng.randn(frames, 32, 3).astype(np.float32) * 100 for _ in range(2)]
    keys = [SequenceKey("S5", "walking", 1), SequenceKey("S5", "eating", 1)]
    motion = MotionSet.from_sequences(sequences, keys, H36M_SKELETON, 25, dataset="h36m", split="test")
    protocol = StochasticProtocol("toy-stochastic", "h36m", 2, 4, "dlow", stride=3, horizons_ms=(80, 160),
                                  samples=2, multimodal_threshold_mm=0.0, skeleton="h36m",
                                  scored_joints=H36M_SKELETON.predicted)

    def sample_fn(past, k):  # the last observed pose, held, K times
        return past[:, -1:].expand(-1, 4, -1, -1)[None].expand(k, -1, -1, -1, -1)

    result = evaluate_stochastic_protocol(sample_fn, motion, protocol)
    assert result["num_windows"] == 2 * len(range(0, frames - 6, 3)) == 10
    assert result["num_windows_per_action"] == {"walking": 5, "eating": 5}
    assert (result["protocol"], result["k"], result["unit"], result["skeleton"]) == ("toy-stochastic", 2, "mm", "h36m")
    assert result["scored_joints"] == list(H36M_SKELETON.predicted) and result["apd"] == 0.0
    starts = torch.tensor([0, 3, 6, 9, 12, 20, 23, 26, 29, 32])
    windows = motion.gather(starts, 6)[:, :, list(H36M_SKELETON.predicted)]
    held = windows[:, 1:2].expand(-1, 4, -1, -1)
    expected = torch.linalg.vector_norm((held - windows[:, 2:]).flatten(-2), dim=-1).mean()
    assert result["ade"] == pytest.approx(float(expected), rel=1e-5)
    with pytest.raises(ValueError, match="skeleton"):
        evaluate_stochastic_protocol(sample_fn, motion, StochasticProtocol("x", "h36m", 2, 4, "dlow",
                                                                           horizons_ms=(), skeleton="h36m17"))


def test_mmade_is_the_mean_of_best_of_k_ade_over_each_set():
    samples, futures = _random(5, 3, 6, 4, 3, seed=5), _random(7, 6, 4, 3, seed=6)
    groups = [torch.tensor([0, 2, 6]), torch.tensor([1]), torch.tensor([3, 4, 5, 6])]
    expected_ade = [torch.stack([ade_best_of_k(samples[:, b:b + 1], futures[j:j + 1])[0] for j in g]).mean()
                    for b, g in enumerate(groups)]
    expected_fde = [torch.stack([fde_best_of_k(samples[:, b:b + 1], futures[j:j + 1])[0] for j in g]).mean()
                    for b, g in enumerate(groups)]
    torch.testing.assert_close(mmade(samples, futures, groups), torch.stack(expected_ade))
    torch.testing.assert_close(mmfde(samples, futures, groups), torch.stack(expected_fde))


def test_per_horizon_errors_follow_a_drift_that_grows_with_time():
    windows = _static_windows()

    def drifting(past, k):  # frame t (1-based) of the future is t * D off along x on every joint
        held = past[:, -1:].expand(-1, T_OUT, -1, -1)
        drift = torch.arange(1, T_OUT + 1, dtype=torch.float32)[:, None, None] * D * X
        return (held + drift)[None].expand(k, -1, -1, -1, -1)

    result = evaluate_stochastic(drifting, windows, T_IN, samples=1, threshold=0.0, fps=25.0, horizons_ms=(80, 160))
    unit = D * math.sqrt(2)  # two joints
    assert result["fde_by_horizon"] == pytest.approx({"80": 2 * unit, "160": 4 * unit})
    assert result["ade_by_horizon"] == pytest.approx({"80": 1.5 * unit, "160": 2.5 * unit})  # mean of 1..h
    assert result["ade"] == pytest.approx(2.5 * unit) and result["apd"] == 0.0
    assert result["mpjpe_first_sample_by_horizon"] == pytest.approx({"80": 2 * D, "160": 4 * D, "avg": 2.5 * D})
