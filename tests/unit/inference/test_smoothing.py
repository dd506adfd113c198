"""Smoothing of lifted poses: the One-Euro filter against its definition, Savitzky-Golay through SciPy."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from crisscross.inference.smoothing import OneEuroFilter, one_euro, savgol_window, savitzky_golay, smooth


def test_one_euro_matches_a_hand_computed_step() -> None:
    f = OneEuroFilter(fps=10.0, min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    assert f(np.array([0.0])) == pytest.approx(0.0)
    # second frame: alpha = 1 / (1 + tau / dt), tau = 1 / (2 pi f_c), dt = 0.1
    alpha = 1.0 / (1.0 + (1.0 / (2 * math.pi)) / 0.1)
    assert f(np.array([1.0]))[0] == pytest.approx(alpha)
    assert f(np.array([1.0]))[0] == pytest.approx(alpha + alpha * (1 - alpha))


def test_one_euro_keeps_constants_and_lags_less_with_beta() -> None:
    constant = np.full((20, 4, 3), 0.7)
    np.testing.assert_allclose(one_euro(constant, 50.0), constant)
    ramp = np.linspace(0.0, 2.0, 50)[:, None]  # 2 m in one second
    slow = one_euro(ramp, 50.0, min_cutoff=1.0, beta=0.0)
    fast = one_euro(ramp, 50.0, min_cutoff=1.0, beta=1.0)
    assert abs(fast[-1, 0] - 2.0) < abs(slow[-1, 0] - 2.0)  # a higher beta follows fast motion more closely


@pytest.mark.parametrize("method", ["one-euro", "savgol"])
def test_the_default_smoothers_reduce_jitter_of_a_pose_in_metres(method: str) -> None:
    if method == "savgol":
        pytest.importorskip("scipy")
    rng = np.random.default_rng(0)
    truth = 0.1 * np.sin(np.linspace(0, 2 * np.pi, 120))[:, None]  # a joint swinging 10 cm at 0.5 Hz, 60 fps
    noisy = truth + rng.normal(0, 0.005, truth.shape)  # 5 mm of jitter
    smoothed = smooth(noisy, method, 60.0)
    jitter = {name: np.abs(np.diff(x, n=2, axis=0)).mean() for name, x in (("noisy", noisy), ("smoothed", smoothed))}
    assert jitter["smoothed"] < 0.7 * jitter["noisy"]  # frame-to-frame acceleration: the jitter
    assert np.abs(smoothed - truth).mean() < np.abs(noisy - truth).mean()


def test_one_euro_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="positive"):
        OneEuroFilter(fps=0.0)
    with pytest.raises(ValueError, match="unknown smoothing 'median'"):
        smooth(np.zeros((3, 1)), "median", 25.0)


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None, reason="SciPy is optional")
def test_savitzky_golay_keeps_a_quadratic() -> None:
    t = np.linspace(-1, 1, 31)[:, None]
    np.testing.assert_allclose(savitzky_golay(t**2, window=9, order=2), t**2, atol=1e-12)


@pytest.mark.skipif(importlib.util.find_spec("scipy") is not None, reason="SciPy is installed")
def test_savitzky_golay_without_scipy_says_how_to_install_it() -> None:
    with pytest.raises(ImportError, match="pip install scipy"):
        savitzky_golay(np.zeros((5, 1)))


def test_the_savgol_window_is_a_time_span() -> None:
    assert [savgol_window(fps) for fps in (60.0, 50.0, 30.0, 25.0, 5.0)] == [21, 19, 11, 9, 3]
