"""Evaluation windows for analysis, error averaging like evaluate.py, and the error plots."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest
import torch

from crisscross.analysis.errors import (
    action_mean_errors,
    full_skeleton_prediction,
    load_windows,
    plot_per_horizon,
    plot_per_joint,
    window_errors,
    write_error_plots,
)
from crisscross.evaluation.forecasting import evaluate_forecaster, zero_velocity_predict_fn
from crisscross.models import create_model


@pytest.fixture(scope="module")
def windows():
    return load_windows("synthetic", "val", 10, 25, [0, 5])


def test_windows_are_the_protocols(windows) -> None:
    assert windows.windows_mm.shape == (2, 35, 32, 3)
    assert windows.past_m.shape == (2, 10, 22, 3)
    expected = windows.motion.gather(windows.starts[[5]], 35)[0]
    torch.testing.assert_close(windows.windows_mm[1], expected.float())
    assert windows.sample_action(0) in windows.action_names and len(windows.joint_names) == 22


def test_out_of_range_sample_is_a_one_line_error(windows) -> None:
    n = windows.starts.numel()
    with pytest.raises(ValueError, match=f"sample {n} is out of range.*{n} evaluation windows"):
        load_windows("synthetic", "val", 10, 25, [n])
    with pytest.raises(ValueError, match="protocol"):
        load_windows("synthetic", "val", 10, 25, [0], protocol="synthetic-50-25")


def test_action_mean_is_unweighted_over_actions() -> None:
    errors = torch.tensor([[1.0], [3.0], [10.0]])  # actions 0, 0, 1
    assert action_mean_errors(errors, torch.tensor([0, 0, 1])).item() == pytest.approx((2.0 + 10.0) / 2)


def test_errors_match_the_evaluator(windows) -> None:
    predict = zero_velocity_predict_fn(25)
    errors = window_errors(predict, windows.motion, windows.starts, 10, 25)
    assert errors.shape == (windows.starts.numel(), 25, 32)
    mean = action_mean_errors(errors, windows.action_index)
    reference = evaluate_forecaster(predict, windows.motion, windows.protocol)
    assert mean.mean().item() == pytest.approx(reference["mpjpe32_mm"]["mean"]["avg"], rel=1e-4)
    predicted = list(windows.skeleton.predicted)
    assert mean[:, predicted].mean().item() == pytest.approx(reference["mpjpe22_mm"]["mean"]["avg"], rel=1e-4)


def test_perfect_prediction_scores_zero(windows) -> None:
    truth = windows.windows_mm
    perfect = full_skeleton_prediction(lambda past: truth[:, 10:].clone(), truth, 10, windows.skeleton)
    torch.testing.assert_close(perfect, truth[:, 10:])


def test_plots_are_images(tmp_path, windows) -> None:
    fig = plot_per_joint(torch.arange(22.0), windows.joint_names, "t")
    fig.savefig(tmp_path / "j.png")
    fig = plot_per_horizon(torch.linspace(10, 100, 25), 25.0)
    fig.savefig(tmp_path / "h.png")
    assert mpimg.imread(tmp_path / "j.png").shape[:2] == (400, 1000)
    assert mpimg.imread(tmp_path / "h.png").shape[:2] == (400, 600)
    with pytest.raises(ValueError, match="joint names"):
        plot_per_joint(torch.arange(3.0), ["a"])


def test_write_error_plots(tmp_path, windows) -> None:
    model = create_model("zero-velocity", num_joints=22, input_frames=10, output_frames=25)
    joint_png, horizon_png = write_error_plots(model, windows, tmp_path / "zv", title="zero-velocity")
    for path, shape in ((joint_png, (400, 1000)), (horizon_png, (400, 600))):
        image = mpimg.imread(path)
        assert image.shape[:2] == shape and image[..., :3].std() > 0.05
