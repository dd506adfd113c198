"""The embedded synthetic dataset: deterministic, realistic bones, learnable but not trivial."""

import itertools

import torch

from crisscross.data import load_motion
from crisscross.data.synthetic import SYNTHETIC_ACTIONS, load_synthetic
from crisscross.evaluation import evaluate_forecaster, get_protocol, zero_velocity_predict_fn
from crisscross.evaluation.metrics import bone_lengths


def test_deterministic_and_splits_differ():
    a = load_synthetic("val")
    b = load_synthetic("val")
    assert torch.equal(a.positions, b.positions) and a.keys == b.keys
    test = load_synthetic("test")
    assert {k.subject for k in a.keys}.isdisjoint({k.subject for k in test.keys})
    assert not torch.equal(a.positions[:100], test.positions[:100])


def test_action_subset_reproduces_the_same_sequences():
    full = load_synthetic("val")
    only = load_synthetic("val", actions=["squatting"])
    torch.testing.assert_close(only.positions, full.subset(actions=["squatting"]).positions)


def test_shapes_and_sizes():
    # Generation speed (< 2 s for all splits on one idle core) is measured by benchmarks/bench_data_loading.py.
    train = load_motion("synthetic", "train")
    assert train.fps == 25 and train.positions.shape[1:] == (32, 3)
    assert train.actions() == list(SYNTHETIC_ACTIONS) and len(train.actions()) == 6
    assert 20_000 <= train.num_frames <= 30_000 and train.num_sequences == 48
    assert torch.isfinite(train.positions).all()


def test_bone_lengths_are_constant_and_body_is_root_centred():
    motion = load_synthetic("val")
    lengths = bone_lengths(motion.positions, motion.skeleton.parents)
    assert float((lengths - lengths[:1]).abs().max()) < 1e-3
    assert float(motion.positions[:, 0].abs().max()) == 0.0
    head_above_feet = motion.positions[:, 15, 1] - motion.positions[:, [5, 10], 1].min(dim=1).values
    assert float(head_above_feet.min()) > 800  # y is up


def test_zero_velocity_error_grows_with_horizon_and_is_clearly_beatable():
    train, test = load_synthetic("train"), load_synthetic("test")
    protocol = get_protocol("synthetic-10-25")
    zero = evaluate_forecaster(zero_velocity_predict_fn(25), test, protocol)["mpjpe32_mm"]["mean"]
    values = [zero[str(ms)] for ms in protocol.horizons_ms]
    assert all(a < b for a, b in itertools.pairwise(values)), values
    assert 15 < values[0] < 60 and 100 < values[-1] < 300

    # A ridge regression from the last 10 frames beats zero-velocity clearly at every horizon, but stays far from 0.
    predicted = list(train.skeleton.predicted)
    starts = train.train_windows(35, stride=2)
    w = train.gather(starts, 35)[:, :, predicted].reshape(len(starts), 35, -1).double()
    last = w[:, 9:10]
    x = torch.cat([(w[:, :10] - last).reshape(len(starts), -1), torch.ones(len(starts), 1, dtype=torch.double)], 1)
    y = (w[:, 10:] - last).reshape(len(starts), -1)
    coef = torch.linalg.solve(x.T @ x + 100 * torch.eye(x.shape[1], dtype=torch.double), x.T @ y)

    def ridge(past):
        p = past[:, :, predicted].double().reshape(past.shape[0], 10, -1)
        feats = torch.cat([(p - p[:, -1:]).reshape(past.shape[0], -1), torch.ones(past.shape[0], 1).double()], 1)
        out = past[:, -1:].expand(-1, 25, -1, -1).clone()
        pred = ((feats @ coef).reshape(-1, 25, p.shape[-1]) + p[:, -1:]).reshape(-1, 25, len(predicted), 3)
        out[:, :, predicted] = pred.float()
        return out

    learned = evaluate_forecaster(ridge, test, protocol)["mpjpe32_mm"]["mean"]
    for ms in protocol.horizons_ms:
        assert learned[str(ms)] < 0.75 * zero[str(ms)], (ms, learned[str(ms)], zero[str(ms)])
        assert learned[str(ms)] > 2.0  # not trivially predictable
