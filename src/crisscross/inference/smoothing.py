"""Temporal smoothing of lifted poses: the One-Euro filter (causal) and Savitzky-Golay (offline, SciPy).

Lifters see each frame's window separately, so their outputs jitter from frame to frame where 2D detections do.

* One-Euro (Casiez, Roussel and Vogel, CHI 2012): an exponential low-pass filter whose cut-off frequency rises with
  the signal's speed, ``f_c = min_cutoff + beta * |dx/dt|``, so slow motion is smoothed hard and fast motion lags
  little. Causal, one frame at a time: it also serves streaming. The filter is a few lines and no maintained
  package offers it for arrays, so it is written here.
* Savitzky-Golay: a least-squares polynomial fitted in a sliding window (``scipy.signal.savgol_filter``); it keeps
  peaks better than a moving average but needs the whole sequence. SciPy is optional (``pip install scipy``).

Shapes: ``[T, ...]`` with time first; every other coordinate is filtered independently.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["ONE_EURO_BETA", "ONE_EURO_MIN_CUTOFF_HZ", "SAVGOL_ORDER", "SAVGOL_WINDOW_S", "SMOOTHERS", "OneEuroFilter",
           "one_euro", "savgol_window", "savitzky_golay", "smooth"]

SMOOTHERS = ("one-euro", "savgol")


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The smoothing factor of a first-order low-pass filter with cut-off ``cutoff`` Hz sampled every ``dt`` s."""
    tau = 1.0 / (2 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """The One-Euro filter over arrays of any shape, fed one frame at a time.

    Args:
        fps: the frame rate the frames arrive at.
        min_cutoff: cut-off frequency (Hz) at rest; lower smooths more.
        beta: how fast the cut-off rises with speed (per unit of the signal per second); higher lags less.
        d_cutoff: cut-off frequency (Hz) of the filter on the speed estimate.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0) -> None:
        if fps <= 0 or min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("One-Euro filter: fps, min_cutoff and d_cutoff must be positive and beta non-negative")
        self.dt, self.min_cutoff, self.beta, self.d_cutoff = 1.0 / fps, min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The filtered value of the next frame ``x`` (the first frame passes unchanged)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            return x.copy()
        speed = (x - self._x) / self.dt
        a_d = _alpha(self.d_cutoff, self.dt)
        self._dx = a_d * speed + (1 - a_d) * self._dx
        a = _alpha(self.min_cutoff + self.beta * np.abs(self._dx), self.dt)
        self._x = a * x + (1 - a) * self._x
        return self._x.copy()


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 0.0,
             d_cutoff: float = 1.0) -> np.ndarray:
    """Array[T, ...] filtered frame by frame by one :class:`OneEuroFilter`."""
    f = OneEuroFilter(fps, min_cutoff, beta, d_cutoff)
    return np.stack([f(frame) for frame in np.asarray(x)]) if len(x) else np.asarray(x, dtype=np.float64)


def savitzky_golay(x: np.ndarray, window: int = 21, order: int = 2) -> np.ndarray:
    """Array[T, ...] smoothed along time by ``scipy.signal.savgol_filter`` (window shortened to fit short inputs).

    Raises:
        ImportError: SciPy is not installed (the message says how to install it).
    """
    try:
        from scipy.signal import savgol_filter  # optional: only this smoother needs SciPy
    except ImportError:
        raise ImportError("Savitzky-Golay smoothing needs SciPy: pip install scipy (or use --smooth one-euro)") \
            from None
    x = np.asarray(x, dtype=np.float64)
    window = min(window, x.shape[0] if x.shape[0] % 2 else x.shape[0] - 1)
    if window <= order:
        return x.copy()
    return savgol_filter(x, window, order, axis=0, mode="interp")


#: Defaults chosen on HumanEva-I's training split (scripts/tune_smoothing.py, lifted poses in metres, 2D input with
#: 3 px of noise): One-Euro's cut-off and speed coefficient, Savitzky-Golay's window in seconds and its order.
ONE_EURO_MIN_CUTOFF_HZ, ONE_EURO_BETA = 4.0, 32.0
SAVGOL_WINDOW_S, SAVGOL_ORDER = 0.35, 2


def savgol_window(fps: float) -> int:
    """:data:`SAVGOL_WINDOW_S` seconds at ``fps`` in frames, rounded, made odd (one more) and at least 3."""
    return max(3, int(SAVGOL_WINDOW_S * fps + 0.5) | 1)


def smooth(x: np.ndarray, method: str, fps: float) -> np.ndarray:
    """``x`` (Array[T, ...], poses in metres) smoothed by ``method`` (one of :data:`SMOOTHERS`) with the defaults."""
    if method == "one-euro":
        return one_euro(x, fps, min_cutoff=ONE_EURO_MIN_CUTOFF_HZ, beta=ONE_EURO_BETA)
    if method == "savgol":
        return savitzky_golay(x, savgol_window(fps), SAVGOL_ORDER)
    raise ValueError(f"unknown smoothing {method!r}; choose one of {', '.join(SMOOTHERS)}")
