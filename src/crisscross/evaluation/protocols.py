"""Evaluation protocols as named, frozen records: forecasting (with the exact test-window rules below) and lifting.

Window rules (all on the 25 fps sequences, frame indices 0-based within a sequence; ``n_in``/``n_out`` = input/output
frames, ``seq_len = n_in + n_out``):

``srnn8`` / ``256`` (H3.6M; Martinez ``find_indices_srnn`` and HisRepItself ``find_indices_256``)
    Per subject and action, one ``numpy.random.RandomState(1234567890)``; then 4 (``srnn8``) or 128 (``256``)
    iterations, each drawing ``idx1 = rng.randint(16, T1 - 150)`` for sub-action 1 and then
    ``idx2 = rng.randint(16, T2 - 150)`` for sub-action 2 (T = downsampled length). A draw gives the window
    ``[idx + 50 - n_in, idx + 50 - n_in + seq_len)``, so the predicted frames start at ``idx + 50`` whatever
    ``n_in`` is. Hence 8 / 256 windows per action, and the ``srnn8`` windows are the first 4 draws of ``256``.
    If one of the two sub-actions is absent (the shared archive lacks S11 ``sittingdown_1``), the present one gets
    its own ``RandomState(seed)`` and 4 / 128 draws; the action then has half the windows. Sub-actions other than 1
    and 2 (not in the real data) are treated the same way, one at a time.
``all`` (MSR-GCN ``test_manner="all"``, followed by PGBIG)
    Our reading of MSR-GCN ``datas/data_utils.py::load_data_3d``: every sub-action sequence of length T contributes
    the windows ``[i, i + seq_len)`` for every ``i in range(T - 100)`` (the window starts at ``i``; the first
    predicted frame is ``i + n_in``). MSR-GCN only used ``n_in = 10``; the 50-input variant applies the same rule.
``cmu8`` (LTD ``load_data_cmu_3d``, ``is_test``)
    Per file, a fresh ``RandomState(1234567890)`` and 8 draws ``idx = rng.randint(0, T - 75)``; window
    ``[idx + 50 - n_in, idx + 50 + n_out)``.
``strided``
    Deterministic windows whose predicted part starts at frames ``50, 50 + s, 50 + 2 s, ...`` (``s`` = ``stride``)
    as long as it fits; window start = that frame minus ``n_in``. With ``stride=1`` and ``first_future_frame=n_in``
    this is "every stride-1 window" (MSR-GCN / PGBIG CMU ``all``).
``dlow`` (DLow ``motion_pred/utils/dataset.py::iter_generator``, called with ``step=t_his`` by ``eval.py``)
    Per sequence, the windows ``[i, i + seq_len)`` for ``i`` in ``range(0, T - seq_len, stride)`` (note the strict
    bound: a window ending exactly on the last frame is left out, as in DLow). No randomness.

Stochastic protocols (:class:`StochasticProtocol`) add the number of samples K, the multi-modal threshold, the
skeleton and the scored joints; ``stochastic.py`` scores them (APD, best-of-K ADE/FDE, MMADE/MMFDE).

Horizons are in milliseconds; at 25 fps 80/160/320/400/560/720/880/1000 ms are future frames 2/4/8/10/14/18/22/25
(1-based), as in siMLPe's ``#2 ... #25`` and LTD's ``eval_frame``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from crisscross.data.h36m import H36M_SPLITS
from crisscross.data.motion import MotionSet
from crisscross.data.skeleton import H36M_17_SKELETON, H36M_SKELETON

__all__ = [
    "LITERATURE_HORIZONS_MS",
    "LITERATURE_SEED",
    "PROTOCOLS",
    "STOCHASTIC_HORIZONS_MS",
    "WINDOW_RULES",
    "ForecastProtocol",
    "LiftingProtocol",
    "StochasticProtocol",
    "check_protocol_fits",
    "default_protocol_name",
    "get_protocol",
    "horizons_to_frames",
    "list_protocols",
    "protocol_windows",
]

LITERATURE_SEED = 1234567890
LITERATURE_HORIZONS_MS: tuple[int, ...] = (80, 160, 320, 400, 560, 720, 880, 1000)
WINDOW_RULES: tuple[str, ...] = ("srnn8", "256", "all", "cmu8", "strided", "dlow")
#: The literature's horizons plus 1.5 s and 2 s, for 2 s futures (whole frames at 25 and at 50 Hz).
STOCHASTIC_HORIZONS_MS: tuple[int, ...] = (*LITERATURE_HORIZONS_MS, 1500, 2000)

# Constants of the literature's window formulas (frames at 25 fps).
_SRNN_SOURCE_LEN = 50  # predicted frames start at idx + 50
_SRNN_MIN_IDX = 16
_SRNN_MARGIN = 150
_MSR_ALL_MARGIN = 100
_CMU_TOTAL = 75  # source 50 + target 25
_DRAWS = {"srnn8": 4, "256": 128}


@dataclass(frozen=True)
class ForecastProtocol:
    """A named evaluation protocol; result files record its ``name`` and ``version``.

    Attributes:
        name: unique identifier, ``<dataset>-<input>-<output>-<rule>``.
        dataset: dataset the protocol is defined on (``h36m``, ``cmu``, ``synthetic``).
        input_frames: observed frames given to the model.
        output_frames: predicted frames scored.
        window_rule: one of :data:`WINDOW_RULES` (see the module docstring for the exact rules).
        fps: frame rate the windows are cut at.
        horizons_ms: horizons reported individually, in milliseconds after the last observed frame.
        seed: seed of the window draws (unused by deterministic rules).
        stride: step between windows for the ``strided`` rule.
        first_future_frame: first predicted frame of the first window for the ``strided`` rule.
        split: split the published numbers use (H3.6M ``test`` = S5); any split can be evaluated.
        description: one line for listings.
        version: bumped whenever the windows or averaging of this name change.
    """

    name: str
    dataset: str
    input_frames: int
    output_frames: int
    window_rule: str
    fps: float = 25.0
    horizons_ms: tuple[int, ...] = LITERATURE_HORIZONS_MS
    seed: int = LITERATURE_SEED
    stride: int = 1
    first_future_frame: int = _SRNN_SOURCE_LEN
    split: str = "test"
    description: str = ""
    version: int = 1

    def __post_init__(self) -> None:
        if self.window_rule not in WINDOW_RULES:
            raise ValueError(f"protocol {self.name!r}: unknown window rule {self.window_rule!r}; "
                             f"known rules: {', '.join(WINDOW_RULES)}")
        if self.input_frames < 1 or self.output_frames < 1 or self.stride < 1:
            raise ValueError(f"protocol {self.name!r}: input_frames, output_frames and stride must be positive")
        _ = self.horizon_frames  # computing them validates the horizons

    @property
    def window_frames(self) -> int:
        """Frames per window, ``input_frames + output_frames``."""
        return self.input_frames + self.output_frames

    @property
    def horizon_frames(self) -> tuple[int, ...]:
        """1-based future frame index of each horizon (80 ms -> 2 at 25 fps).

        Raises:
            ValueError: a horizon is not a whole number of frames or lies beyond ``output_frames``.
        """
        try:
            return horizons_to_frames(self.horizons_ms, self.fps, self.output_frames)
        except ValueError as err:
            raise ValueError(f"protocol {self.name!r}: {err}") from None


def horizons_to_frames(horizons_ms: Sequence[int], fps: float, output_frames: int) -> tuple[int, ...]:
    """1-based future frame index of each horizon in milliseconds (80 ms -> 2 at 25 fps, 4 at 50 Hz).

    Raises:
        ValueError: a horizon is not a whole number of frames or lies beyond ``output_frames``.
    """
    frames = []
    for ms in horizons_ms:
        exact = ms * fps / 1000.0
        frame = round(exact)
        if abs(exact - frame) > 1e-6 or not 1 <= frame <= output_frames:
            raise ValueError(f"horizon {ms} ms is not a future frame at {fps:g} fps within {output_frames} output "
                             "frames")
        frames.append(frame)
    return tuple(frames)


def _h36m(input_frames: int, rule: str, description: str) -> ForecastProtocol:
    return ForecastProtocol(f"h36m-{input_frames}-25-{rule}", "h36m", input_frames, 25, rule, description=description)


@dataclass(frozen=True)
class StochasticProtocol(ForecastProtocol):
    """A named stochastic-forecasting protocol: a forecasting protocol plus K, the threshold and the scored joints.

    Windows, lengths and horizons are those of :class:`ForecastProtocol`; ``crisscross.evaluation.stochastic`` scores
    the K futures sampled per past. The data it is evaluated on is a :class:`~crisscross.data.motion.MotionSet`
    (millimetres, root-centred) at ``fps`` whose skeleton is called ``skeleton``; the model sees every joint of the
    observed frames, and the scores (and the multi-modal start-pose distances) use the ``scored_joints`` only.

    Attributes:
        samples: K, the futures sampled per past.
        multimodal_threshold_mm: two windows share their futures as multi-modal ground truth when the Euclidean
            distance between their last observed poses (each flattened over the scored joints, root-centred) is
            below this, in millimetres (DLow: 0.5 m).
        skeleton: name of the skeleton the data must have (:data:`crisscross.data.skeleton.SKELETONS`).
        scored_joints: joints scored, indices into ``skeleton`` (``()``: every joint).
        train_subjects: subjects a model for this protocol is trained on (a record of the source's split).
        test_subjects: subjects of the evaluation split.
        source: where the protocol comes from (repository, file, paper).
    """

    samples: int = 50
    multimodal_threshold_mm: float = 500.0
    skeleton: str = "h36m"
    scored_joints: tuple[int, ...] = ()
    train_subjects: tuple[str, ...] = ()
    test_subjects: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.samples < 1:
            raise ValueError(f"protocol {self.name!r}: samples (K) must be >= 1, got {self.samples}")
        if not self.multimodal_threshold_mm >= 0:
            raise ValueError(f"protocol {self.name!r}: the multi-modal threshold must be >= 0, "
                             f"got {self.multimodal_threshold_mm}")
        if len(set(self.scored_joints)) != len(self.scored_joints) or any(j < 0 for j in self.scored_joints):
            raise ValueError(f"protocol {self.name!r}: scored_joints must be distinct non-negative indices")


# DLow (Yuan & Kitani, ECCV 2020), github.com/Khrylx/DLow at 5cb562a: ``motion_pred/utils/dataset_h36m.py`` (the
# 17 joints kept of the 32 of VideoPose3D's ``data_3d_h36m.npz``, positions in metres at 50 Hz made root-relative by
# ``seq[:, 1:] -= seq[:, :1]``, train S1 S5 S6 S7 S8, test S9 S11), ``motion_pred/cfg/h36m_nsamp50.yml`` (``t_his: 25``,
# ``t_pred: 100``, ``nk: 50``) and ``motion_pred/eval.py`` (windows every ``t_his`` frames, the root joint dropped
# before scoring (``data[..., 1:, :]``), ``--multimodal_threshold`` 0.5 on the last observed pose).
_DLOW_SOURCE = ("DLow (Yuan & Kitani, ECCV 2020), github.com/Khrylx/DLow motion_pred/eval.py, "
                "motion_pred/utils/dataset_h36m.py, motion_pred/cfg/h36m_nsamp50.yml")


#: The forecasting dataset rebuilt from the exp-map files at 50 Hz on the 17 joints (``data/h36m_world17.py``).
_EXPMAP17 = "h36m-expmap17"


def _dlow_settings(dataset: str) -> dict:
    """DLow's windows, lengths, frame rate, K, threshold, scored joints and subjects, on ``dataset``."""
    return dict(dataset=dataset, input_frames=25, output_frames=100, window_rule="dlow", fps=50.0,
                horizons_ms=STOCHASTIC_HORIZONS_MS, stride=25, split="test", samples=50, multimodal_threshold_mm=500.0,
                skeleton=H36M_17_SKELETON.name, scored_joints=tuple(range(1, H36M_17_SKELETON.num_joints)),
                train_subjects=("S1", "S5", "S6", "S7", "S8"), test_subjects=("S9", "S11"))


def _stochastic_protocols() -> tuple[StochasticProtocol, ...]:
    dlow = StochasticProtocol(
        "h36m-stochastic-25-100", **_dlow_settings("h36m-npz"), source=_DLOW_SOURCE,
        description="H3.6M stochastic (DLow), 25 -> 100 frames at 50 Hz, K = 50, 17 joints (root-relative, root "
                    "not scored), a window every 25 frames of S9 S11, multi-modal threshold 0.5 m")
    # DLow's protocol field for field, on the exp-map files rebuilt in the world frame instead of VideoPose3D's
    # data_3d_h36m.npz: one skeleton for every subject and an integrated root, so not DLow's data.
    expmap = StochasticProtocol(
        f"{_EXPMAP17}-stochastic-25-100", **_dlow_settings(_EXPMAP17),
        source="windows, lengths, K, threshold, scored joints and subjects of h36m-stochastic-25-100 (" + _DLOW_SOURCE
               + "); data rebuilt from the Human3.6M exp-map files (crisscross.data.h36m_world17), not DLow's "
               "processing of data_3d_h36m.npz",
        description="DLow's protocol (25 -> 100 frames at 50 Hz, K = 50, 17 joints, root not scored, a window every "
                    "25 frames of S9 S11, threshold 0.5 m) on the exp-map files rebuilt in the world frame: one "
                    "skeleton for every subject, not DLow's data, figures not comparable with its tables")
    # Not a literature protocol: DLow's metrics on the deterministic protocol h36m-10-25-256 (same windows, 25 fps
    # data, the 22 predicted joints of the 32, as mpjpe22_mm). The threshold is DLow's 0.5 m carried over unchanged,
    # not recalibrated for 22 joints, so MMADE / MMFDE are not comparable with DLow's tables.
    short = StochasticProtocol(
        "h36m-stochastic-10-25", "h36m", 10, 25, "256", split="test", samples=50, multimodal_threshold_mm=500.0,
        skeleton=H36M_SKELETON.name, scored_joints=H36M_SKELETON.predicted, train_subjects=H36M_SPLITS["train"],
        test_subjects=H36M_SPLITS["test"],
        source="windows, data and joints of h36m-10-25-256 (HisRepItself find_indices_256, siMLPe test.py); "
               "metrics and threshold of " + _DLOW_SOURCE,
        description="H3.6M stochastic on the h36m-10-25-256 windows (S5, 25 fps, the 22 predicted joints), K = 50, "
                    "multi-modal threshold 500 mm (DLow's, not recalibrated)")
    return dlow, expmap, short


@dataclass(frozen=True)
class LiftingProtocol:
    """A named 2D-to-3D lifting protocol; result files record its ``name`` and ``version``.

    Every frame of every test sequence is a sample (the model sees the ``receptive_field`` frames centred on it, the
    ends of a sequence padded by repeating the first or last frame), or every ``frame_stride``-th frame of each
    sequence from its first; errors are in millimetres on root-relative
    camera-frame poses; the headline figure is the mean over action groups (the action name before its take number),
    with test-time horizontal flip averaging unless switched off.

    Attributes:
        name: unique identifier.
        dataset: the dataset registry name it reads.
        receptive_field: frames the model sees per sample (odd).
        train_subjects: subjects of the training split.
        test_subjects: subjects of the test split.
        actions: the action groups scored (``()``: every action of the split).
        by_subject: also report every subject's figures (HumanEva-I is reported per subject and action).
        fps: frame rate of the data.
        split: split the published numbers use.
        description: one line for listings.
        version: bumped whenever the samples or averaging of this name change.
        variants: other datasets with the same splits the protocol also applies to (other 2D detections).
        frame_stride: score frames ``0, s, 2s, ...`` of each sequence; with ``s > 1`` no two scored frames are
            consecutive, so the velocity error (MPJVE) is not defined and reported as NaN.
    """

    name: str
    dataset: str
    receptive_field: int
    train_subjects: tuple[str, ...]
    test_subjects: tuple[str, ...]
    actions: tuple[str, ...] = ()
    by_subject: bool = False
    fps: float = 50.0
    split: str = "test"
    description: str = ""
    version: int = 1
    variants: tuple[str, ...] = ()
    frame_stride: int = 1

    def __post_init__(self) -> None:
        if self.receptive_field < 1 or self.receptive_field % 2 == 0:
            raise ValueError(f"protocol {self.name!r}: the receptive field must be odd, got {self.receptive_field}")
        if self.frame_stride < 1:
            raise ValueError(f"protocol {self.name!r}: frame_stride must be >= 1, got {self.frame_stride}")

    @property
    def input_frames(self) -> int:
        """Frames a model sees per sample (the receptive field), as for forecasting protocols."""
        return self.receptive_field

    @property
    def output_frames(self) -> int:
        """Frames scored per sample: the centre frame."""
        return 1


_H36M_LIFT_TRAIN, _H36M_LIFT_TEST = ("S1", "S5", "S6", "S7", "S8"), ("S9", "S11")


def _lifting_protocols() -> tuple[LiftingProtocol, ...]:
    npz = tuple(LiftingProtocol(
        f"h36m-lift-{r}", "h36m-npz", r, _H36M_LIFT_TRAIN, _H36M_LIFT_TEST, variants=("h36m-npz-cpn",),
        description=f"Human3.6M lifting (VideoPose3D files), {r} frames, train S1 S5 S6 S7 S8, test S9 S11, "
                    "17 joints, every frame") for r in (27, 81, 243))
    # One frame in 100 (every 2 s at 50 Hz) of every test recording and camera: 4,824 frames, so that a CPU
    # re-scores every checkpoint of the results tables in minutes (the 81-frame criss-cross lifter runs about 60
    # windows/s on two cores); every frame would be 471,408.
    expmap = tuple(LiftingProtocol(
        f"h36m-expmap-lift-{r}", "h36m-expmap", r, _H36M_LIFT_TRAIN[:1] + _H36M_LIFT_TRAIN[2:], _H36M_LIFT_TEST,
        variants=("h36m-expmap-noisy2d",), frame_stride=100, version=2,
        description=f"Human3.6M exp-map motion projected with the real cameras, {r} frames, train S1 S6 S7 S8 "
                    "(S5 absent), test S9 S11 every 100th frame; one fixed skeleton: easier than the benchmark, "
                    "not comparable")
        for r in (27, 81, 243))
    humaneva = tuple(LiftingProtocol(
        f"humaneva-lift-{r}", "humaneva", r, ("Train/S1", "Train/S2", "Train/S3"),
        ("Validate/S1", "Validate/S2", "Validate/S3"), actions=("Walking", "Jog", "Box"), by_subject=True, fps=60.0,
        description=f"HumanEva-I (VideoPose3D), {r} frames, train Train/S1-S3, test Validate/S1-S3, Walk Jog Box, "
                    "per subject") for r in (27, 81))
    return npz + expmap + humaneva


PROTOCOLS: dict[str, ForecastProtocol | LiftingProtocol] = {
    p.name: p
    for p in (
        _h36m(10, "256", "H3.6M, 10 -> 25 frames, 256 windows per action (HisRepItself/siMLPe draws)"),
        _h36m(10, "srnn8", "H3.6M, 10 -> 25 frames, 8 windows per action (SRNN/Martinez draws; LTD papers)"),
        _h36m(10, "all", "H3.6M, 10 -> 25 frames, every start i < T - 100 (MSR-GCN / PGBIG)"),
        _h36m(50, "256", "H3.6M, 50 -> 25 frames, 256 windows per action (HisRepItself/siMLPe)"),
        _h36m(50, "srnn8", "H3.6M, 50 -> 25 frames, 8 windows per action (SRNN draws)"),
        _h36m(50, "all", "H3.6M, 50 -> 25 frames, every start i < T - 100 (MSR-GCN rule)"),
        ForecastProtocol("cmu-10-25-8", "cmu", 10, 25, "cmu8",
                         description="CMU-Mocap, 10 -> 25 frames, 8 windows per file (LTD)"),
        ForecastProtocol("cmu-10-25-all", "cmu", 10, 25, "strided", stride=1, first_future_frame=10,
                         description="CMU-Mocap, 10 -> 25 frames, every stride-1 window (MSR-GCN / PGBIG)"),
        ForecastProtocol("synthetic-10-25", "synthetic", 10, 25, "strided", stride=5,
                         description="embedded synthetic data, 10 -> 25 frames, predicted part every 5 frames from 50"),
        ForecastProtocol("synthetic-50-25", "synthetic", 50, 25, "strided", stride=5,
                         description="embedded synthetic data, 50 -> 25 frames, same future frames as synthetic-10-25"),
        ForecastProtocol("npz-10-25", "npz", 10, 25, "strided", stride=5,
                         description="user recordings, 10 -> 25 frames, predicted part every 5 frames from frame 50"),
        ForecastProtocol("npz-50-25", "npz", 50, 25, "strided", stride=5,
                         description="user recordings, 50 -> 25 frames, same future frames as npz-10-25"),
        # The deterministic twin of h36m-expmap17-stochastic-25-100 for training runs' validation (MPJPE on S11,
        # the val split) and for deterministic tables: the same windows, lengths and horizons.
        ForecastProtocol(f"{_EXPMAP17}-25-100", _EXPMAP17, 25, 100, "dlow", fps=50.0,
                         horizons_ms=STOCHASTIC_HORIZONS_MS, stride=25, split="val",
                         description="H3.6M exp-map files at 50 Hz, 17 joints, 25 -> 100 frames, a window every 25 "
                                     "frames (DLow's rule) of each sequence; MPJPE, for validation"),
        *_lifting_protocols(),
        *_stochastic_protocols(),
    )
}


def list_protocols(dataset: str | None = None) -> list[str]:
    """Protocol names, sorted, optionally only those of one dataset."""
    return sorted(n for n, p in PROTOCOLS.items()
                  if dataset is None or dataset in (p.dataset, *getattr(p, "variants", ())))


def get_protocol(name: str) -> ForecastProtocol | LiftingProtocol:
    """The protocol called ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    if name not in PROTOCOLS:
        raise KeyError(f"unknown protocol {name!r}; known protocols: {', '.join(list_protocols())}")
    return PROTOCOLS[name]


def _random_draw_starts(lengths: list[int], labels: list[str], protocol: ForecastProtocol) -> list[list[int]]:
    """SRNN/256 draws for one or two sequences sharing one RNG; local window starts per sequence."""
    draws = _DRAWS[protocol.window_rule]
    n_in, n_out = protocol.input_frames, protocol.output_frames
    if n_in > _SRNN_SOURCE_LEN + _SRNN_MIN_IDX or _SRNN_SOURCE_LEN + n_out > _SRNN_MARGIN:
        raise ValueError(f"protocol {protocol.name!r}: the SRNN window formula needs input_frames <= 66 "
                         "and output_frames <= 100")
    for length, label in zip(lengths, labels):
        if length - _SRNN_MARGIN <= _SRNN_MIN_IDX:
            raise ValueError(f"protocol {protocol.name!r}: sequence {label} has {length} frames; the "
                             f"{protocol.window_rule} rule needs more than {_SRNN_MARGIN + _SRNN_MIN_IDX}")
    rng = np.random.RandomState(protocol.seed)
    starts: list[list[int]] = [[] for _ in lengths]
    for _ in range(draws):
        for k, length in enumerate(lengths):  # idx1 then idx2 within each iteration, as find_indices_*
            idx = int(rng.randint(_SRNN_MIN_IDX, length - _SRNN_MARGIN))
            starts[k].append(idx + _SRNN_SOURCE_LEN - n_in)
    return starts


def _h36m_random_windows(motion: MotionSet, protocol: ForecastProtocol, action: str) -> list[int]:
    """Global window starts of one action under ``srnn8`` / ``256``, subject by subject."""
    result: list[int] = []
    subjects = list(dict.fromkeys(k.subject for k in motion.keys if k.action == action))
    for subject in subjects:
        by_sub = {k.subaction: i for i, k in enumerate(motion.keys) if k.subject == subject and k.action == action}
        groups = [[by_sub[1], by_sub[2]]] if 1 in by_sub and 2 in by_sub else []
        paired = {s for g in groups for s in (1, 2)}
        groups += [[by_sub[s]] for s in sorted(by_sub) if s not in paired]
        for group in groups:
            lengths = [int(motion.seq_lengths[i]) for i in group]
            local = _random_draw_starts(lengths, [str(motion.keys[i]) for i in group], protocol)
            for seq, starts in zip(group, local):  # sub-action 1's windows first, then 2's (HisRepItself order)
                result.extend(int(motion.seq_starts[seq]) + s for s in starts)
    return result


def _sequence_windows(length: int, label: str, protocol: ForecastProtocol) -> list[int]:
    """Local window starts of one sequence under the per-sequence rules (``all``, ``cmu8``, ``strided``)."""
    n_in, n_out, rule = protocol.input_frames, protocol.output_frames, protocol.window_rule
    if rule == "all":
        if protocol.window_frames > _MSR_ALL_MARGIN + 1:
            raise ValueError(f"protocol {protocol.name!r}: the 'all' rule needs input + output <= 101 frames")
        return list(range(max(length - _MSR_ALL_MARGIN, 0)))
    if rule == "cmu8":
        if n_in > _SRNN_SOURCE_LEN or n_out > _CMU_TOTAL - _SRNN_SOURCE_LEN:
            raise ValueError(f"protocol {protocol.name!r}: the cmu8 rule needs input_frames <= 50, output_frames <= 25")
        if length - _CMU_TOTAL <= 0:
            raise ValueError(f"protocol {protocol.name!r}: sequence {label} has {length} frames; cmu8 needs more "
                             f"than {_CMU_TOTAL}")
        rng = np.random.RandomState(protocol.seed)
        return [int(rng.randint(0, length - _CMU_TOTAL)) + _SRNN_SOURCE_LEN - n_in for _ in range(8)]
    if rule == "strided":
        first = protocol.first_future_frame
        if first < n_in:
            raise ValueError(f"protocol {protocol.name!r}: first_future_frame must be >= input_frames")
        return [f - n_in for f in range(first, length - n_out + 1, protocol.stride)]
    if rule == "dlow":
        return list(range(0, length - protocol.window_frames, protocol.stride))
    raise ValueError(f"protocol {protocol.name!r}: rule {rule!r} is not a per-sequence rule")


def protocol_windows(motion: MotionSet, protocol: ForecastProtocol) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The evaluation windows of ``protocol`` on ``motion``.

    Args:
        motion: the split to evaluate (e.g. H3.6M S5 test or S11 validation), at ``protocol.fps``.
        protocol: the protocol.

    Returns:
        ``(starts, action_index, action_names)``: LongTensor[W] global start frames (window =
        ``protocol.window_frames`` frames from there, see :meth:`MotionSet.gather`), LongTensor[W] index of each
        window's action into ``action_names``, and the actions with at least one window in canonical order.

    Raises:
        ValueError: frame-rate mismatch, or a sequence too short for the rule (the message names it).
    """
    if abs(motion.fps - protocol.fps) > 1e-6:
        raise ValueError(f"protocol {protocol.name!r} needs {protocol.fps:g} fps data, got {motion.fps:g} fps")
    starts: list[int] = []
    action_ids: list[int] = []
    names: list[str] = []
    for action in motion.actions():
        if protocol.window_rule in _DRAWS:
            action_starts = _h36m_random_windows(motion, protocol, action)
        else:
            action_starts = []
            for i, key in enumerate(motion.keys):
                if key.action == action:
                    local = _sequence_windows(int(motion.seq_lengths[i]), str(key), protocol)
                    action_starts.extend(int(motion.seq_starts[i]) + s for s in local)
        if action_starts:
            action_ids.extend([len(names)] * len(action_starts))
            names.append(action)
            starts.extend(action_starts)
    return torch.tensor(starts, dtype=torch.long), torch.tensor(action_ids, dtype=torch.long), names


# The protocol each dataset is evaluated under unless one is named: the literature's most common one.
_PREFERRED_WINDOW_RULES = ("256", "8", "srnn8", "all")


def default_protocol_name(dataset: str, input_frames: int, output_frames: int) -> str:
    """The default protocol for a dataset and window lengths ("256 per action" for H3.6M, 8 per file for CMU)."""
    # A model trained on fewer output frames (siMLPe: 50 -> 10) is rolled out to the protocol's 25 frames.
    target = max(output_frames, 25)
    candidates = [p for p in PROTOCOLS.values()
                  if p.dataset == dataset and (p.input_frames, p.output_frames) == (input_frames, target)
                  and not isinstance(p, StochasticProtocol)]  # a deterministic model never defaults to one
    for rule in _PREFERRED_WINDOW_RULES:
        for p in candidates:
            if p.name.endswith("-" + rule):
                return p.name
    if candidates:
        return candidates[0].name
    raise ValueError(f"no protocol for dataset {dataset!r} with {input_frames} -> {output_frames} frames; "
                     f"known: {', '.join(PROTOCOLS)}")


def check_protocol_fits(protocol, input_frames: int, output_frames: int) -> None:
    """A model fits a protocol with the same input length and at most its output length (rolled out)."""
    if protocol.input_frames != input_frames or protocol.output_frames < output_frames:
        raise ValueError(f"protocol {protocol.name} is {protocol.input_frames} -> {protocol.output_frames} frames but "
                         f"the model is {input_frames} -> {output_frames}; pick a protocol with {input_frames} input "
                         f"frames")
