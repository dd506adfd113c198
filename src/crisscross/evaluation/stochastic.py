"""Metrics of stochastic motion forecasting (K sampled futures per past), as DLow defines them, and their evaluator.

Definitions follow DLow (Yuan & Kitani, ECCV 2020), github.com/Khrylx/DLow ``motion_pred/eval.py``
(``compute_diversity``, ``compute_ade``, ``compute_fde``, ``compute_mmade``, ``compute_mmfde``, ``get_multimodal_gt``),
re-implemented batched in torch. Shapes: ``K`` samples, ``B`` windows, ``T`` future frames, ``J`` joints.

* **Frame error**: the Euclidean norm of the whole flattened pose error (one ``J * 3`` vector), not MPJPE's mean over
  joints of the per-joint distances. With per-joint distances ``d_j`` the frame error is ``sqrt(sum d_j^2)`` and
  MPJPE is ``mean d_j``, so ``sqrt(J) * MPJPE <= frame error <= J * MPJPE``, with equality on the left when every
  joint is off by the same distance (16 joints each 10 mm off: MPJPE 10 mm, frame error 40 mm).
* **APD** (DLow's "Diversity"): the mean over the ``K (K - 1) / 2`` pairs of samples of the Euclidean distance
  between the two samples, each flattened over its whole future (``T * J * 3``); 0 when ``K == 1``.
* **ADE / FDE** (best of K): the smallest over the K samples of the frame error averaged over the T frames (ADE) or
  at the last frame (FDE).
* **Multi-modal ground truth**: the futures of every test window whose last observed pose lies strictly closer
  than a threshold to window i's (Euclidean distance of the flattened poses, in the unit of the data; DLow: 0.5
  with metres on the 16 non-root joints of its 17, root-relative, i.e. 500 mm), window i's own future included.
* **MMADE / MMFDE**: the best-of-K ADE (FDE) against each multi-modal future, averaged over those futures.

A test-set figure is the mean over windows, every window weighing the same (DLow's ``AverageMeter``), not the mean over
actions of the deterministic evaluator (``forecasting.py``). Every function computes in float32 (float64 if an input
is float64), even for half-precision inputs; none does I/O or edits its inputs.

These metrics take K samples (and, for MMADE, the whole test set's futures), not one prediction, so they live in
their own registry, :data:`STOCHASTIC_METRICS`, rather than in :data:`crisscross.evaluation.metrics.METRICS`, whose
entries are all ``fn(pred, target)`` with equal shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from crisscross.data.motion import MotionSet
from crisscross.evaluation.metrics import _promote, mpjpe
from crisscross.evaluation.protocols import StochasticProtocol, horizons_to_frames, protocol_windows

__all__ = [
    "STOCHASTIC_METRICS",
    "SampleFn",
    "StochasticMetric",
    "ade_best_of_k",
    "apd",
    "deterministic_sample_fn",
    "evaluate_stochastic",
    "evaluate_stochastic_protocol",
    "fde_best_of_k",
    "first_sample_mpjpe",
    "get_stochastic_metric",
    "mmade",
    "mmfde",
    "multimodal_futures",
    "pose_error",
    "sample_mean_mpjpe",
]

#: ``sample_fn(past: Tensor[B, T_in, J, 3], k) -> Tensor[k, B, T_out, J, 3]``, in the unit of the data.
SampleFn = Callable[[torch.Tensor, int], torch.Tensor]

# Millimetres per unit of the data, for the ``*_mm`` figures.
_MM_PER_UNIT = {"m": 1000.0, "mm": 1.0}
# torch.cdist mode that subtracts coordinates exactly instead of using |a|^2 + |b|^2 - 2 a.b (which loses precision
# for nearby poses, exactly where the multi-modal threshold decides).
_EXACT_DISTANCES = "donot_use_mm_for_euclid_dist"
# Elements one MMADE step materialises at most (distances and gathered futures; 64 MiB in float32).
_MULTIMODAL_CHUNK_ELEMENTS = 1 << 24


def _common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def _check_samples(samples: torch.Tensor) -> None:
    if samples.ndim != 5 or samples.shape[-1] != 3 or samples.shape[0] < 1:
        raise ValueError(f"expected samples [K, B, T, J, 3] with K >= 1, got {tuple(samples.shape)}")


def _check_target(samples: torch.Tensor, target: torch.Tensor) -> None:
    _check_samples(samples)
    if tuple(target.shape) != tuple(samples.shape[1:]):
        raise ValueError(f"samples {tuple(samples.shape)} [K, B, T, J, 3] need a target [B, T, J, 3] of shape "
                         f"{tuple(samples.shape[1:])}, got {tuple(target.shape)}")


def _flat_norm(difference: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each pose flattened: Tensor[..., J, 3] -> Tensor[...]."""
    return torch.linalg.vector_norm(difference.flatten(-2), dim=-1)


def pose_error(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """DLow's frame error: the Euclidean norm of the flattened pose error of every sample and frame.

    Args:
        samples: Tensor[K, B, T, J, 3] sampled futures.
        target: Tensor[B, T, J, 3] true futures.

    Returns:
        Tensor[K, B, T], in the unit of the inputs (not MPJPE: see the module docstring).
    """
    _check_target(samples, target)
    dtype = _common_dtype(samples, target)
    return _flat_norm(samples.to(dtype) - target.to(dtype))


def apd(samples: torch.Tensor) -> torch.Tensor:
    """Average pairwise distance of the K samples (DLow's "Diversity").

    Args:
        samples: Tensor[K, B, T, J, 3].

    Returns:
        Tensor[B]: the mean over the ``K (K - 1) / 2`` pairs of the Euclidean distance between two samples, each
        flattened to one ``T * J * 3`` vector; zeros when ``K == 1``.
    """
    _check_samples(samples)
    k, batch = samples.shape[:2]
    x = _promote(samples)
    if k == 1:
        return x.new_zeros(batch)
    flat = x.flatten(2).transpose(0, 1)  # [B, K, T * J * 3]
    distances = torch.cdist(flat, flat, compute_mode=_EXACT_DISTANCES)  # [B, K, K], zero diagonal, symmetric
    return distances.sum(dim=(-2, -1)) / (k * (k - 1))


def ade_best_of_k(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Best-of-K average displacement error: ``min_k mean_t`` of :func:`pose_error`.

    Args:
        samples: Tensor[K, B, T, J, 3].
        target: Tensor[B, T, J, 3].

    Returns:
        Tensor[B], in the unit of the inputs.
    """
    return pose_error(samples, target).mean(dim=-1).amin(dim=0)


def fde_best_of_k(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Best-of-K final displacement error: ``min_k`` of :func:`pose_error` at the last frame.

    Args:
        samples: Tensor[K, B, T, J, 3].
        target: Tensor[B, T, J, 3].

    Returns:
        Tensor[B], in the unit of the inputs.
    """
    return pose_error(samples, target)[..., -1].amin(dim=0)


def multimodal_futures(start_poses: torch.Tensor, futures: torch.Tensor, threshold: float, *,
                       chunk_size: int = 1024) -> list[torch.Tensor]:
    """The multi-modal ground truth of every window: which futures of ``futures`` it is scored against.

    Window ``j`` belongs to window ``i``'s set when the Euclidean distance between their start poses (each flattened
    to one ``J * 3`` vector) is strictly below ``threshold`` (DLow's ``pd[i] < threshold``); ``i`` always belongs to
    its own set. Distances are computed ``chunk_size`` rows at a time, so memory is ``chunk_size * N`` distances plus
    the indices returned (``N^2`` at worst, when every start pose is within the threshold of every other).

    Args:
        start_poses: Tensor[N, J, 3] the last observed pose of each test window.
        futures: Tensor[N, T, J, 3] the true future of each window (only its shape is used, to check ``N`` and
            ``J``: the indices returned index it).
        threshold: distance in the unit of the poses (DLow: 0.5 with metres, i.e. 500 with millimetres).
        chunk_size: rows of the distance matrix computed at once.

    Returns:
        N LongTensors, the ``i``-th holding the ascending indices into ``futures`` of window ``i``'s set.
    """
    if start_poses.ndim != 3 or start_poses.shape[-1] != 3:
        raise ValueError(f"expected start poses [N, J, 3], got {tuple(start_poses.shape)}")
    if futures.ndim != 4 or futures.shape[0] != start_poses.shape[0] or futures.shape[-2:] != start_poses.shape[-2:]:
        raise ValueError(f"futures {tuple(futures.shape)} do not match start poses {tuple(start_poses.shape)} "
                         "(expected [N, T, J, 3])")
    if not threshold >= 0:
        raise ValueError(f"the multi-modal threshold must be >= 0, got {threshold}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    flat = _promote(start_poses).flatten(1)  # [N, J * 3]
    result: list[torch.Tensor] = []
    for begin in range(0, flat.shape[0], chunk_size):
        rows = flat[begin:begin + chunk_size]
        near = torch.cdist(rows, flat, compute_mode=_EXACT_DISTANCES) < threshold  # [C, N]
        local = torch.arange(rows.shape[0], device=flat.device)
        near[local, local + begin] = True
        columns = near.nonzero()[:, 1]  # row-major: each row's columns, ascending
        result.extend(c.clone() for c in torch.split(columns, near.sum(dim=1).tolist()))
    return result


def _multimodal_errors(samples: torch.Tensor, futures: torch.Tensor,
                       indices: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """MMADE and MMFDE of one batch, Tensor[B] each (see :func:`mmade`)."""
    _check_samples(samples)
    k, batch, frames = samples.shape[:3]
    if len(indices) != batch:
        raise ValueError(f"{len(indices)} index tensors for a batch of {batch} windows")
    if futures.ndim != 4 or tuple(futures.shape[1:]) != tuple(samples.shape[2:]):
        raise ValueError(f"futures {tuple(futures.shape)} must be [N, T, J, 3] with T, J of the samples "
                         f"{tuple(samples.shape)}")
    dtype = _common_dtype(samples, futures)
    x = samples.to(dtype).flatten(-2).transpose(0, 2)  # [T, B, K, J * 3]
    per_future = frames * (k + samples.shape[-2] * 3)  # distances [T, K, M] and gathered futures [M, T, J * 3]
    step = max(1, _MULTIMODAL_CHUNK_ELEMENTS // per_future)
    ade, fde = x.new_empty(batch), x.new_empty(batch)
    for b, index in enumerate(indices):
        if index.numel() == 0:
            raise ValueError(f"window {b} of the batch has no multi-modal future (its own belongs to its set)")
        ade_sum, fde_sum = x.new_zeros(()), x.new_zeros(())
        for begin in range(0, index.numel(), step):
            chosen = futures[index[begin:begin + step].to(futures.device)].to(device=x.device, dtype=dtype)
            # frame errors of every (sample, future) pair, frame by frame: [T, K, M]
            errors = torch.cdist(x[:, b], chosen.flatten(-2).transpose(0, 1), compute_mode=_EXACT_DISTANCES)
            ade_sum = ade_sum + errors.mean(dim=0).amin(dim=0).sum()
            fde_sum = fde_sum + errors[-1].amin(dim=0).sum()
        ade[b], fde[b] = ade_sum / index.numel(), fde_sum / index.numel()
    return ade, fde


def mmade(samples: torch.Tensor, futures: torch.Tensor, indices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Multi-modal ADE of one batch: per window, the best-of-K ADE against each of its multi-modal futures, averaged.

    Args:
        samples: Tensor[K, B, T, J, 3] the batch's samples.
        futures: Tensor[N, T, J, 3] every test window's true future (may live on another device).
        indices: B LongTensors, the batch's entries of :func:`multimodal_futures`.

    Returns:
        Tensor[B], in the unit of the inputs. When each window's set is itself alone, this is :func:`ade_best_of_k`.
    """
    return _multimodal_errors(samples, futures, indices)[0]


def mmfde(samples: torch.Tensor, futures: torch.Tensor, indices: Sequence[torch.Tensor]) -> torch.Tensor:
    """Multi-modal FDE of one batch: as :func:`mmade` with the best-of-K FDE. Returns Tensor[B]."""
    return _multimodal_errors(samples, futures, indices)[1]


def sample_mean_mpjpe(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE (per-joint mean, as the deterministic tables) of the mean of the K samples.

    Args:
        samples: Tensor[K, B, T, J, 3].
        target: Tensor[B, T, J, 3].

    Returns:
        Tensor[B, T], in the unit of the inputs.
    """
    _check_target(samples, target)
    dtype = _common_dtype(samples, target)
    return mpjpe(samples.to(dtype).mean(dim=0), target.to(dtype))


def first_sample_mpjpe(samples: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MPJPE of the first sample alone (one draw, as a deterministic model would be scored).

    Args:
        samples: Tensor[K, B, T, J, 3].
        target: Tensor[B, T, J, 3].

    Returns:
        Tensor[B, T], in the unit of the inputs.
    """
    _check_target(samples, target)
    return mpjpe(samples[0], target)


@dataclass(frozen=True)
class StochasticMetric:
    """A named stochastic metric: ``fn(*inputs) -> Tensor`` with the names of its inputs, its unit and its shapes."""

    name: str
    fn: Callable[..., torch.Tensor]
    inputs: tuple[str, ...]
    unit: str
    description: str


# The stochastic metric registry (see the module docstring for why it is not METRICS).
STOCHASTIC_METRICS: dict[str, StochasticMetric] = {
    m.name: m
    for m in (
        StochasticMetric("pose_error", pose_error, ("samples", "target"), "unit of the inputs",
                         "norm of the flattened pose error per sample and frame: [K, B, T, J, 3], [B, T, J, 3] -> "
                         "[K, B, T]"),
        StochasticMetric("apd", apd, ("samples",), "unit of the inputs",
                         "average pairwise distance of the K flattened futures (DLow Diversity): [K, B, T, J, 3] -> "
                         "[B]"),
        StochasticMetric("ade", ade_best_of_k, ("samples", "target"), "unit of the inputs",
                         "best-of-K mean over frames of the flattened pose error: [K, B, T, J, 3], [B, T, J, 3] -> "
                         "[B]"),
        StochasticMetric("fde", fde_best_of_k, ("samples", "target"), "unit of the inputs",
                         "best-of-K flattened pose error at the last frame: [K, B, T, J, 3], [B, T, J, 3] -> [B]"),
        StochasticMetric("mmade", mmade, ("samples", "futures", "indices"), "unit of the inputs",
                         "best-of-K ADE averaged over the multi-modal futures: [K, B, T, J, 3], [N, T, J, 3], "
                         "B index tensors -> [B]"),
        StochasticMetric("mmfde", mmfde, ("samples", "futures", "indices"), "unit of the inputs",
                         "best-of-K FDE averaged over the multi-modal futures: [K, B, T, J, 3], [N, T, J, 3], "
                         "B index tensors -> [B]"),
        StochasticMetric("sample_mean_mpjpe", sample_mean_mpjpe, ("samples", "target"), "unit of the inputs",
                         "MPJPE of the mean of the K samples: [K, B, T, J, 3], [B, T, J, 3] -> [B, T]"),
        StochasticMetric("first_sample_mpjpe", first_sample_mpjpe, ("samples", "target"), "unit of the inputs",
                         "MPJPE of the first sample: [K, B, T, J, 3], [B, T, J, 3] -> [B, T]"),
    )
}


def get_stochastic_metric(name: str) -> StochasticMetric:
    """The registered stochastic metric ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    if name not in STOCHASTIC_METRICS:
        raise KeyError(f"unknown stochastic metric {name!r}; known: {', '.join(sorted(STOCHASTIC_METRICS))}")
    return STOCHASTIC_METRICS[name]


def deterministic_sample_fn(predict_fn: Callable[[torch.Tensor], torch.Tensor]) -> SampleFn:
    """A deterministic ``predict_fn(past) -> [B, T, J, 3]`` as a ``sample_fn`` returning the prediction K times.

    Its APD is 0 and its best-of-K ADE/FDE are the deterministic model's, which puts a deterministic model in the
    stochastic table on the same footing (``expand``: no copy).
    """

    def sample(past: torch.Tensor, k: int) -> torch.Tensor:
        prediction = predict_fn(past)
        return prediction.unsqueeze(0).expand(k, *prediction.shape)

    return sample


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def _score_batch(drawn: torch.Tensor, target: torch.Tensor, futures: torch.Tensor,
                 groups: Sequence[torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per-window figures (Tensor[B] each) and per-frame curves (Tensor[B, T] each) of one batch of samples."""
    errors = pose_error(drawn, target)  # [K, B, T]
    elapsed = torch.arange(1, errors.shape[-1] + 1, device=errors.device)
    best_ade_curve = (errors.cumsum(dim=-1) / elapsed).amin(dim=0)  # ADE of the first h frames, [B, T]
    best_fde_curve = errors.amin(dim=0)  # [B, T]
    mm_ade, mm_fde = _multimodal_errors(drawn, futures, groups)
    figures = {"apd": apd(drawn), "ade": best_ade_curve[:, -1], "fde": best_fde_curve[:, -1], "mmade": mm_ade,
               "mmfde": mm_fde}
    curves = {"ade": best_ade_curve, "fde": best_fde_curve, "mpjpe_sample_mean": sample_mean_mpjpe(drawn, target),
              "mpjpe_first_sample": first_sample_mpjpe(drawn, target)}
    return figures, curves


def _check_windows(windows: torch.Tensor, input_frames: int, scored_joints: Sequence[int] | None,
                   fps: float | None, horizons_ms: Sequence[int]) -> tuple[list[int], tuple[int, ...]]:
    """The scored joints (all when none named) and the horizon frames, after checking ``windows`` fits them."""
    if windows.ndim != 4 or windows.shape[-1] != 3 or not 0 < input_frames < windows.shape[1]:
        raise ValueError(f"expected windows [N, T_in + T_out, J, 3] with T_in = {input_frames} < T_in + T_out, "
                         f"got {tuple(windows.shape)}")
    if windows.shape[0] == 0:
        raise ValueError("no window to evaluate")
    num_joints = windows.shape[2]
    joints = list(range(num_joints)) if not scored_joints else [int(j) for j in scored_joints]
    if any(not 0 <= j < num_joints for j in joints):
        raise ValueError(f"scored joints {joints} outside the {num_joints} joints of the windows")
    if horizons_ms and fps is None:
        raise ValueError("horizons_ms needs fps")
    frames = horizons_to_frames(horizons_ms, fps, windows.shape[1] - input_frames) if horizons_ms else ()
    return joints, frames


def _figures(curves: dict[str, list[float]], scalars: dict[str, float], horizons_ms: Sequence[int],
             frames: Sequence[int], scale: float | None) -> dict:
    """Headline figures, per-horizon rows and per-frame curves, plus ``*_mm`` copies when the unit is known."""
    out: dict = dict(scalars)
    rows = {f"{name}_by_horizon": {str(ms): curve[f - 1] for ms, f in zip(horizons_ms, frames)}
            for name, curve in curves.items()}
    for name in ("mpjpe_sample_mean", "mpjpe_first_sample"):
        rows[f"{name}_by_horizon"]["avg"] = sum(curves[name]) / len(curves[name])
    out.update(rows)
    if scale is not None:
        out.update({f"{key}_mm": value * scale for key, value in scalars.items()})
        out.update({f"{key}_mm": {h: v * scale for h, v in row.items()} for key, row in rows.items()})
    out["per_frame"] = curves
    return out


def evaluate_stochastic(
    sample_fn: SampleFn,
    windows: torch.Tensor,
    input_frames: int,
    *,
    samples: int,
    threshold: float,
    unit: str = "mm",
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    scored_joints: Sequence[int] | None = None,
    fps: float | None = None,
    horizons_ms: Sequence[int] = (),
    chunk_size: int = 1024,
) -> dict:
    """Score ``sample_fn`` on a test set of windows with DLow's metrics.

    ``sample_fn`` is called on batches of ``batch_size`` pasts under ``torch.no_grad()`` with the global RNGs
    seeded by ``seed`` inside ``torch.random.fork_rng`` (the caller's RNG state is restored afterwards), so the
    figures are the same on every call for a given seed, batch size and device. The multi-modal ground truth is
    computed once over all windows (:func:`multimodal_futures`, ``chunk_size`` rows at a time).

    Args:
        sample_fn: ``Tensor[B, T_in, J, 3] -> Tensor[samples, B, T_out, J, 3]``, in the unit of ``windows``.
        windows: Tensor[N, T_in + T_out, J, 3] test windows (past then future).
        input_frames: ``T_in``, the observed frames given to ``sample_fn``.
        samples: K, the futures drawn per past.
        threshold: multi-modal threshold, in the unit of ``windows`` (DLow: 0.5 m).
        unit: unit of ``windows`` (``"m"`` or ``"mm"`` add ``*_mm`` copies of the figures).
        seed: seed of the sampling.
        batch_size: windows per ``sample_fn`` call.
        device: where pasts are sent and errors computed.
        scored_joints: joints scored and used for the start-pose distances (default all); ``sample_fn`` still sees
            and returns every joint.
        fps: frame rate, needed with ``horizons_ms``.
        horizons_ms: horizons reported individually, in milliseconds after the last observed frame.
        chunk_size: rows of the start-pose distance matrix computed at once.

    Returns:
        A JSON-serialisable dict: ``k``, ``multimodal_threshold``, ``unit``, ``seed``, ``num_windows``,
        ``input_frames``, ``output_frames``, ``fps``, ``horizons_ms``, ``scored_joints``, ``multimodal_futures``
        (mean, min and max set size, fraction of windows alone); the means over windows ``apd``, ``ade``, ``fde``,
        ``mmade``, ``mmfde``; per horizon (``{"80": ..., ...}``) ``ade_by_horizon`` (best-of-K ADE of the first h
        frames, the ADE the window would have were the future h frames long), ``fde_by_horizon`` (best-of-K frame
        error at frame h), ``mpjpe_sample_mean_by_horizon`` and ``mpjpe_first_sample_by_horizon`` (per-joint MPJPE at
        frame h of the mean sample and of the first sample, plus ``avg`` over all frames, comparable with the
        deterministic tables); ``per_frame`` with the four curves over all T_out frames; and, when ``unit`` is ``"m"``
        or ``"mm"``, a ``<key>_mm`` copy of each headline figure and per-horizon row. Figures without ``_mm`` are in
        ``unit``.

    Raises:
        ValueError: no window, a wrongly shaped ``windows`` or ``sample_fn`` output, bad horizons.
    """
    if samples < 1 or batch_size < 1:
        raise ValueError(f"samples and batch_size must be >= 1, got {samples} and {batch_size}")
    joints, frames = _check_windows(windows, input_frames, scored_joints, fps, horizons_ms)
    device = torch.device(device)
    num_windows, num_joints = windows.shape[0], windows.shape[2]
    output_frames = windows.shape[1] - input_frames
    futures = windows[:, input_frames:][:, :, joints].to(device)  # [N, T_out, J_s, 3]
    starts = windows[:, input_frames - 1][:, joints].to(device)  # [N, J_s, 3]
    groups = multimodal_futures(starts, futures, threshold, chunk_size=chunk_size)
    sizes = torch.tensor([g.numel() for g in groups], dtype=torch.float64)

    per_window = {name: torch.zeros(num_windows, dtype=torch.float64) for name in ("apd", "ade", "fde", "mmade",
                                                                                     "mmfde")}
    curve_sums = {name: torch.zeros(output_frames, dtype=torch.float64)
                  for name in ("ade", "fde", "mpjpe_sample_mean", "mpjpe_first_sample")}
    with torch.random.fork_rng(devices=_rng_devices(device)), torch.no_grad():
        torch.manual_seed(seed)
        for begin in range(0, num_windows, batch_size):
            end = min(begin + batch_size, num_windows)
            drawn = sample_fn(windows[begin:end, :input_frames].to(device), samples)
            expected = (samples, end - begin, output_frames, num_joints, 3)
            if tuple(drawn.shape) != expected:
                raise ValueError(f"sample_fn returned {tuple(drawn.shape)}, expected {expected} ([K, B, T_out, J, 3])")
            drawn = _promote(drawn.to(device))
            if len(joints) != num_joints:
                drawn = drawn[:, :, :, joints]
            figures, curves = _score_batch(drawn, futures[begin:end], futures, groups[begin:end])
            for name, values in figures.items():
                per_window[name][begin:end] = values.double().cpu()
            for name, values in curves.items():
                curve_sums[name] += values.double().sum(dim=0).cpu()

    scalars = {name: float(values.mean()) for name, values in per_window.items()}
    curves = {name: [float(v) for v in total / num_windows] for name, total in curve_sums.items()}
    result = {
        "k": samples,
        "multimodal_threshold": float(threshold),
        "unit": unit,
        "seed": seed,
        "num_windows": num_windows,
        "input_frames": input_frames,
        "output_frames": output_frames,
        "fps": fps,
        "horizons_ms": list(horizons_ms),
        "scored_joints": joints,
        "multimodal_futures": {"mean": float(sizes.mean()), "min": int(sizes.min()), "max": int(sizes.max()),
                               "alone": float((sizes == 1).double().mean())},
    }
    result.update(_figures(curves, scalars, horizons_ms, frames, _MM_PER_UNIT.get(unit)))
    return result


def evaluate_stochastic_protocol(
    sample_fn: SampleFn,
    motion: MotionSet,
    protocol: StochasticProtocol,
    *,
    seed: int = 0,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    samples: int | None = None,
    chunk_size: int = 1024,
) -> dict:
    """Score ``sample_fn`` on the windows ``protocol`` defines on ``motion`` (millimetres, see :class:`MotionSet`).

    Args:
        sample_fn: ``Tensor[B, T_in, J, 3] -> Tensor[K, B, T_out, J, 3]`` in millimetres, every joint of
            ``motion.skeleton``.
        motion: the evaluation split at ``protocol.fps`` with the skeleton ``protocol.skeleton``.
        protocol: windows, K, threshold (mm), scored joints and horizons.
        seed: seed of the sampling.
        batch_size: windows per ``sample_fn`` call.
        device: where pasts are sent and errors computed.
        samples: override ``protocol.samples`` (K), e.g. for a quick check; the result records the K used.
        chunk_size: rows of the start-pose distance matrix computed at once.

    Returns:
        The dict of :func:`evaluate_stochastic` (unit ``"mm"``) plus ``protocol``, ``protocol_version``, ``dataset``,
        ``split``, ``skeleton``, ``actions`` and ``num_windows_per_action``.

    Raises:
        ValueError: skeleton or frame-rate mismatch, or no window.
    """
    if motion.skeleton.name != protocol.skeleton:
        raise ValueError(f"protocol {protocol.name!r} needs skeleton {protocol.skeleton!r}, the data has "
                         f"{motion.skeleton.name!r}")
    starts, action_index, action_names = protocol_windows(motion, protocol)
    if starts.numel() == 0:
        raise ValueError(f"protocol {protocol.name!r} yields no window on {motion.summary()}")
    counts = torch.bincount(action_index, minlength=len(action_names))
    result = {
        "protocol": protocol.name,
        "protocol_version": protocol.version,
        "dataset": motion.dataset,
        "split": motion.split,
        "skeleton": motion.skeleton.name,
        "actions": action_names,
        "num_windows_per_action": {a: int(counts[i]) for i, a in enumerate(action_names)},
    }
    result.update(evaluate_stochastic(
        sample_fn, motion.gather(starts, protocol.window_frames), protocol.input_frames,
        samples=samples or protocol.samples, threshold=protocol.multimodal_threshold_mm, unit="mm", seed=seed,
        batch_size=batch_size, device=device, scored_joints=protocol.scored_joints or None, fps=protocol.fps,
        horizons_ms=protocol.horizons_ms, chunk_size=chunk_size))
    return result
