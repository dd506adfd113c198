"""The embedded default dataset: procedural, deterministic human motion on the Human3.6M skeleton.

Nothing is downloaded. Each sequence is built like the real data: joint rotations (exp-maps) at 50 Hz are turned into
positions by the same :func:`~crisscross.data.kinematics.forward_kinematics` and Martinez bone offsets, then every
second frame is kept (25 fps). Six actions (walking, running, waving, squatting, jumping_jacks, boxing) each couple
their joints through one shared phase ``phi(t)`` (gait cycle, wave, squat...), with a few harmonics per joint angle.
The motion is learnable but not trivial to extrapolate:

* every subject has its own speed, amplitude and posture; every sequence varies them again;
* within a sequence the cycle frequency and amplitude drift, slowly (sinusoids of 0.03-0.15 Hz) and stochastically
  (smooth random processes with a 1 s time constant), so the future phase is uncertain;
* trunk, head, arms and legs wander aperiodically (smooth random processes, 1-2 s time constants), so zero-velocity
  error keeps growing over the whole 1 s horizon although the actions are periodic;
* a small temporally smoothed noise is added to every moving joint angle.

Measured on the ``test`` split with ``synthetic-10-25`` (mpjpe32, mm, 80/160/320/400/560/720/880/1000 ms):
zero-velocity 28.8 / 56.3 / 105.8 / 127.2 / 161.3 / 184.5 / 197.3 / 199.7; a ridge regression on the last 10 frames
fitted on ``train`` 6.0 / 13.2 / 31.1 / 40.9 / 57.9 / 70.4 / 80.4 / 86.8 (see ``tests/unit/data/test_synthetic.py``).

Splits use disjoint "subjects" (seeds): ``train`` P1-P4, ``val`` P5, ``test`` P6, two sequences per subject and
action (train 48 sequences, ~24k frames; val and test 12 sequences of 500 frames). Generating all three splits takes
under a second of CPU time.

Joint rotations are authored as angles about axes of the *body* frame in the base posture (arms hanging) and converted
once into each joint's parent frame, so "hip flexion about x" means the same thing for every joint
(``y`` up, ``x`` to the subject's left, ``z`` forward; see ``skeleton.py``).

:data:`SYNTHETIC_DATASET` is the ``synthetic`` registry entry (no data folder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crisscross.data.cache import ArrayCache
from crisscross.data.errors import DataError
from crisscross.data.kinematics import expmap_to_rotmat, forward_kinematics, rotmat_to_expmap, single_threaded_torch
from crisscross.data.motion import MotionSet, SequenceKey
from crisscross.data.registry import DataDirReport, DatasetEntry
from crisscross.data.skeleton import H36M_SKELETON

__all__ = [
    "COMMON_WANDER",
    "SYNTHETIC_ACTIONS",
    "SYNTHETIC_DATASET",
    "SYNTHETIC_FPS",
    "SYNTHETIC_SOURCE_FPS",
    "SYNTHETIC_SPLITS",
    "ActionSpec",
    "Oscillation",
    "Wander",
    "generate_sequence",
    "load_synthetic",
]

SYNTHETIC_SOURCE_FPS = 50
SYNTHETIC_FPS = 25
_DEFAULT_SEED = 20240611
_PI = math.pi

# Split -> (subjects, sequences per subject and action, frames per sequence at 25 fps as (min, max)).
SYNTHETIC_SPLITS: dict[str, tuple[tuple[str, ...], int, tuple[int, int]]] = {
    "train": (("P1", "P2", "P3", "P4"), 2, (400, 600)),
    "val": (("P5",), 2, (500, 500)),
    "test": (("P6",), 2, (500, 500)),
}


@dataclass(frozen=True)
class Oscillation:
    """One joint angle driven by the action phase.

    ``angle(t) = base + amplitude(t) * sum(amp_k * sin(k * phi(t) + phase_k))`` radians, about ``axis`` of the body
    frame (converted to the joint's parent frame at the base posture).
    """

    joint: int
    axis: tuple[float, float, float]
    base: float
    terms: tuple[tuple[int, float, float], ...]


@dataclass(frozen=True)
class ActionSpec:
    """A procedural action: its cycle frequency and the joint angles its phase drives."""

    name: str
    cycle_hz: float
    oscillations: tuple[Oscillation, ...]
    wander: tuple[Wander, ...] = ()


@dataclass(frozen=True)
class Wander:
    """Aperiodic posture drift of one joint angle about a body axis: a smooth random process (radians)."""

    joint: int
    axis: tuple[float, float, float]
    std: float
    tau_s: float


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
# H3.6M joints whose rotation moves a segment: the rotation of joint j turns the bones of j's children.
_R_HIP, _R_KNEE, _R_ANKLE, _L_HIP, _L_KNEE, _L_ANKLE = 1, 2, 3, 6, 7, 8
_SPINE, _THORAX, _NECK = 11, 12, 13
_L_CLAVICLE, _L_SHOULDER, _L_ELBOW, _R_CLAVICLE, _R_SHOULDER, _R_ELBOW = 16, 17, 18, 24, 25, 26

# Base posture: clavicles turned sideways, upper arms hanging down (rest pose arms point up in this skeleton).
_BASE_EXPMAPS = {
    _L_CLAVICLE: (0.0, 0.0, _PI / 2),
    _L_SHOULDER: (0.0, 0.0, _PI / 2),
    _R_CLAVICLE: (0.0, 0.0, -_PI / 2),
    _R_SHOULDER: (0.0, 0.0, -_PI / 2),
}


def _osc(joint: int, axis: tuple[float, float, float], base: float, *terms: tuple[int, float, float]) -> Oscillation:
    return Oscillation(joint, axis, base, tuple(terms))


def _gait(name: str, cycle_hz: float, hip: float, knee_base: float, knee: float, arm: float, elbow: float,
          lean: float) -> ActionSpec:
    """Walking-like gait: legs in anti-phase, each arm in phase with the opposite leg."""
    return ActionSpec(name, cycle_hz, (
        _osc(_R_HIP, _X, 0.1, (1, hip, 0.0)),
        _osc(_L_HIP, _X, 0.1, (1, hip, _PI)),
        _osc(_R_KNEE, _X, knee_base, (1, knee, 1.2), (2, 0.25 * knee, 0.3)),
        _osc(_L_KNEE, _X, knee_base, (1, knee, 1.2 + _PI), (2, 0.25 * knee, 0.3)),
        _osc(_R_ANKLE, _X, 0.05, (1, 0.2, -0.8)),
        _osc(_L_ANKLE, _X, 0.05, (1, 0.2, -0.8 + _PI)),
        _osc(_SPINE, _X, lean, (2, 0.03, 0.5)),
        _osc(_SPINE, _Y, 0.0, (1, 0.08, 0.0)),
        _osc(_THORAX, _Z, 0.0, (2, 0.03, 0.0)),
        _osc(_NECK, _X, 0.05, (2, 0.04, 1.0)),
        _osc(_R_SHOULDER, _X, 0.0, (1, arm, _PI)),
        _osc(_L_SHOULDER, _X, 0.0, (1, arm, 0.0)),
        _osc(_R_SHOULDER, _Z, 0.12),
        _osc(_L_SHOULDER, _Z, -0.12),
        _osc(_R_ELBOW, _X, elbow, (1, 0.3 * elbow, _PI + 0.4)),
        _osc(_L_ELBOW, _X, elbow, (1, 0.3 * elbow, 0.4)),
    ))


#: Aperiodic posture drift shared by every action (trunk, head and arms wander slowly and unpredictably).
COMMON_WANDER: tuple[Wander, ...] = (
    Wander(_SPINE, _Y, 0.15, 2.0),
    Wander(_SPINE, _X, 0.07, 2.0),
    Wander(_SPINE, _Z, 0.05, 2.0),
    Wander(_NECK, _Y, 0.2, 1.0),
    Wander(_NECK, _X, 0.1, 1.0),
    Wander(_R_SHOULDER, _X, 0.15, 1.5),
    Wander(_L_SHOULDER, _X, 0.15, 1.5),
    Wander(_R_SHOULDER, _Z, 0.08, 1.5),
    Wander(_L_SHOULDER, _Z, 0.08, 1.5),
    Wander(_R_ELBOW, _X, 0.15, 1.0),
    Wander(_L_ELBOW, _X, 0.15, 1.0),
    Wander(_R_HIP, _X, 0.06, 1.5),
    Wander(_L_HIP, _X, 0.06, 1.5),
    Wander(_R_KNEE, _X, 0.06, 1.5),
    Wander(_L_KNEE, _X, 0.06, 1.5),
)

#: The procedural actions, by name.
SYNTHETIC_ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        _gait("walking", 0.5, hip=0.38, knee_base=-0.4, knee=0.38, arm=0.3, elbow=0.35, lean=-0.03),
        _gait("running", 0.62, hip=0.55, knee_base=-0.95, knee=0.55, arm=0.45, elbow=1.45, lean=-0.15),
        ActionSpec("waving", 0.5, (
            _osc(_R_SHOULDER, _Z, 2.45, (1, 0.1, 0.0)),
            _osc(_R_SHOULDER, _X, 0.25, (2, 0.04, 0.0)),
            _osc(_R_ELBOW, _Z, 0.2, (1, 0.45, 0.6), (2, 0.08, 0.0)),
            _osc(_L_SHOULDER, _Z, -0.1),
            _osc(_L_ELBOW, _X, 0.2),
            _osc(_SPINE, _Z, 0.0, (1, 0.04, 0.0)),
            _osc(_R_HIP, _Z, 0.04, (1, 0.03, 0.0)),
            _osc(_L_HIP, _Z, -0.04, (1, 0.03, 0.0)),
            _osc(_R_KNEE, _X, -0.08, (1, 0.04, 0.0)),
            _osc(_L_KNEE, _X, -0.08, (1, 0.04, _PI)),
        ), wander=(Wander(_R_SHOULDER, _Z, 0.15, 1.5), Wander(_THORAX, _Y, 0.08, 1.5))),
        ActionSpec("squatting", 0.3, (
            _osc(_R_HIP, _X, 0.8, (1, 0.8, -_PI / 2)),
            _osc(_L_HIP, _X, 0.8, (1, 0.8, -_PI / 2)),
            _osc(_R_KNEE, _X, -0.95, (1, 0.95, _PI / 2)),
            _osc(_L_KNEE, _X, -0.95, (1, 0.95, _PI / 2)),
            _osc(_R_ANKLE, _X, 0.25, (1, 0.25, -_PI / 2)),
            _osc(_L_ANKLE, _X, 0.25, (1, 0.25, -_PI / 2)),
            _osc(_SPINE, _X, -0.25, (1, 0.25, _PI / 2)),
            _osc(_NECK, _X, 0.15, (1, 0.15, -_PI / 2)),
            _osc(_R_SHOULDER, _X, 0.55, (1, 0.55, -_PI / 2)),
            _osc(_L_SHOULDER, _X, 0.55, (1, 0.55, -_PI / 2)),
            _osc(_R_ELBOW, _X, 0.2, (1, 0.15, -_PI / 2)),
            _osc(_L_ELBOW, _X, 0.2, (1, 0.15, -_PI / 2)),
        )),
        ActionSpec("jumping_jacks", 0.45, (
            _osc(_R_SHOULDER, _Z, 1.2, (1, 1.2, -_PI / 2)),
            _osc(_L_SHOULDER, _Z, -1.2, (1, -1.2, -_PI / 2)),
            _osc(_R_ELBOW, _Z, 0.15, (1, 0.15, -_PI / 2)),
            _osc(_L_ELBOW, _Z, -0.15, (1, -0.15, -_PI / 2)),
            _osc(_R_HIP, _Z, 0.18, (1, 0.18, -_PI / 2)),
            _osc(_L_HIP, _Z, -0.18, (1, -0.18, -_PI / 2)),
            _osc(_R_KNEE, _X, -0.2, (2, 0.12, _PI / 2)),
            _osc(_L_KNEE, _X, -0.2, (2, 0.12, _PI / 2)),
            _osc(_R_HIP, _X, 0.1, (2, 0.06, -_PI / 2)),
            _osc(_L_HIP, _X, 0.1, (2, 0.06, -_PI / 2)),
        )),
        ActionSpec("boxing", 0.5, (
            _osc(_R_SHOULDER, _X, 1.1, (1, 0.3, 0.0)),
            _osc(_L_SHOULDER, _X, 1.1, (1, 0.3, _PI)),
            _osc(_R_SHOULDER, _Z, 0.35, (1, -0.12, 0.0)),
            _osc(_L_SHOULDER, _Z, -0.35, (1, 0.12, _PI)),
            _osc(_R_ELBOW, _X, 1.3, (1, -0.75, 0.0), (2, 0.15, _PI / 2)),
            _osc(_L_ELBOW, _X, 1.3, (1, -0.75, _PI), (2, 0.15, _PI / 2)),
            _osc(_SPINE, _Y, 0.0, (1, -0.18, 0.0)),
            _osc(_SPINE, _X, -0.1, (2, 0.03, 0.0)),
            _osc(_NECK, _X, 0.15),
            _osc(_R_HIP, _X, 0.2, (1, 0.05, 0.0)),
            _osc(_L_HIP, _X, 0.35, (1, 0.05, _PI)),
            _osc(_R_KNEE, _X, -0.35, (1, 0.06, 0.5)),
            _osc(_L_KNEE, _X, -0.5, (1, 0.06, 0.5 + _PI)),
        )),
    )
}


@dataclass(frozen=True)
class _Style:
    """Random factors of one subject or one sequence."""

    speed: float
    amplitude: float
    base_jitter: np.ndarray  # one offset (rad) per oscillation


def _draw_style(rng: np.random.Generator, num_oscillations: int, spread: float) -> _Style:
    return _Style(
        speed=float(rng.uniform(1 - spread, 1 + spread)),
        amplitude=float(rng.uniform(1 - spread, 1 + spread)),
        base_jitter=rng.normal(0.0, 0.5 * spread, size=num_oscillations),
    )


def _slow_drift(rng: np.random.Generator, time_s: np.ndarray, hz_range: tuple[float, float]) -> np.ndarray:
    """Unit-variance sum of three slow sinusoids with random frequencies and phases: [T]."""
    freqs = rng.uniform(*hz_range, size=3)
    phases = rng.uniform(0, 2 * _PI, size=3)
    return np.sin(2 * _PI * freqs[:, None] * time_s[None, :] + phases[:, None]).sum(0) * math.sqrt(2.0 / 3.0)


def _first_order_lowpass(inputs: np.ndarray, decay: np.ndarray, state: np.ndarray, block: int = 128) -> np.ndarray:
    """``x[t] = decay * x[t-1] + inputs[t]`` from ``x[-1] = state``, vectorised over blocks of frames: [T, K].

    Within a block, ``x[i] = a^(i+1) * (state + cumsum_j(inputs[j] / a^(j+1)))``; blocks are short enough that
    ``a^-block`` stays small (at most e^2.6 for the 1 s time constants used here).
    """
    powers = decay[None, :] ** np.arange(1, block + 1)[:, None]  # [block, K]
    out = np.empty_like(inputs)
    for begin in range(0, inputs.shape[0], block):
        chunk = inputs[begin:begin + block]
        scale = powers[: len(chunk)]
        out[begin:begin + block] = scale * (state + np.cumsum(chunk / scale, axis=0))
        state = out[begin + len(chunk) - 1]
    return out


def _smooth_random_process(
    rng: np.random.Generator, num_frames: int, fps: float, tau_s: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """K independent smooth stationary random processes sampled at ``fps``: [T, K].

    White noise through two cascaded first-order low-pass filters with time constant ``tau_s`` (a critically damped
    second-order process): unlike a plain Ornstein-Uhlenbeck process its paths are smooth, so the next few frames
    are predictable while the state one second ahead is not. The initial state is drawn from the stationary
    distribution, so no burn-in is needed.

    Args:
        tau_s: Array[K] time constants in seconds.
        std: Array[K] stationary standard deviations.
    """
    a = np.exp(-1.0 / (fps * tau_s))
    a2 = a * a
    # Stationary moments of (first, second) for unit innovations: Var(second) = (1 + a^2) / (1 - a^2)^3.
    var_first = 1.0 / (1 - a2)
    cov = var_first / (1 - a2)
    var_second = (1 + a2) / (1 - a2) ** 3
    gain = std / np.sqrt(var_second)
    first0 = rng.normal(size=len(a)) * np.sqrt(var_first)
    second0 = cov / var_first * first0 + rng.normal(size=len(a)) * np.sqrt(var_second - cov * cov / var_first)
    # Start one step "before" frame 0 so that frame 0 itself is a stationary draw filtered once more.
    innovations = rng.normal(size=(num_frames, len(a)))
    first = _first_order_lowpass(innovations, a, first0)
    second = _first_order_lowpass(first, a, second0)
    return second * gain


def _smoothed_noise(rng: np.random.Generator, shape: tuple[int, ...], std: float, taps: int = 9) -> np.ndarray:
    """Gaussian noise low-passed along axis 0 by a moving average, rescaled to ``std``: shape."""
    raw = rng.normal(0.0, 1.0, size=(shape[0] + taps - 1, *shape[1:]))
    kernel_sum = np.cumsum(raw, axis=0)
    window = kernel_sum[taps - 1:] - np.concatenate([np.zeros((1, *shape[1:])), kernel_sum[:-taps]], axis=0)
    return window / math.sqrt(taps) * std


def _base_frames() -> tuple[torch.Tensor, torch.Tensor]:
    """Base local rotations [J, 3, 3] and each joint's parent global rotation at the base posture [J, 3, 3]."""
    skeleton = H36M_SKELETON
    base = torch.zeros(skeleton.num_joints, 3, dtype=torch.float64)
    for joint, expmap in _BASE_EXPMAPS.items():
        base[joint] = torch.tensor(expmap, dtype=torch.float64)
    local = expmap_to_rotmat(base)
    global_rot = [local[0]]
    for joint in range(1, skeleton.num_joints):
        global_rot.append(local[joint] @ global_rot[skeleton.parents[joint]])
    parent_global = torch.stack([
        global_rot[p] if p >= 0 else torch.eye(3, dtype=torch.float64) for p in skeleton.parents
    ])
    return local, parent_global


def generate_sequence(
    action: str,
    num_frames: int,
    rng: np.random.Generator,
    subject_style: _Style | None = None,
    noise_std_rad: float = 0.005,
) -> torch.Tensor:
    """One procedural sequence at 25 fps (generated at 50 Hz, every 2nd frame kept).

    Args:
        action: key of :data:`SYNTHETIC_ACTIONS`.
        num_frames: frames to return at 25 fps.
        rng: source of every random choice (subject style if not given, sequence style, drift, noise).
        subject_style: the subject's speed / amplitude / posture factors; drawn from ``rng`` when ``None``.
        noise_std_rad: standard deviation of the smoothed per-angle noise.

    Returns:
        Tensor[num_frames, 32, 3] float32 positions in millimetres (H3.6M skeleton, root at the origin).
    """
    spec = SYNTHETIC_ACTIONS[action]
    skeleton = H36M_SKELETON
    count = len(spec.oscillations)
    subject = subject_style or _draw_style(rng, count, 0.12)
    sequence = _draw_style(rng, count, 0.06)
    frames_50 = 2 * num_frames
    time_s = np.arange(frames_50) / SYNTHETIC_SOURCE_FPS

    wander = COMMON_WANDER + spec.wander
    # One batch of smooth random processes: frequency drift, amplitude drift, one per wandering joint angle.
    tau_s = np.array([1.0, 1.0] + [w.tau_s for w in wander])
    std = np.array([0.07, 0.06] + [w.std for w in wander])
    ou = _smooth_random_process(rng, frames_50, SYNTHETIC_SOURCE_FPS, tau_s, std)
    freq_scale = 1 + 0.08 * _slow_drift(rng, time_s, (0.03, 0.15)) + ou[:, 0]
    amp_scale = 1 + 0.08 * _slow_drift(rng, time_s, (0.03, 0.15)) + ou[:, 1]
    freq_hz = spec.cycle_hz * subject.speed * sequence.speed * np.clip(freq_scale, 0.5, 1.5)
    phase = rng.uniform(0, 2 * _PI) + 2 * _PI * np.cumsum(freq_hz) / SYNTHETIC_SOURCE_FPS
    amplitude = subject.amplitude * sequence.amplitude * np.clip(amp_scale, 0.5, 1.5)

    base_local, parent_global = _base_frames()

    def parent_axis(joint: int, axis: tuple[float, float, float]) -> np.ndarray:
        # Body-frame axis -> parent frame at the base posture (column convention: a_parent = R_parent @ a_body).
        return (parent_global[joint] @ torch.tensor(axis, dtype=torch.float64)).numpy()

    axis_angle = np.zeros((frames_50, skeleton.num_joints, 3))
    for index, osc in enumerate(spec.oscillations):
        angle = np.full(frames_50, osc.base + subject.base_jitter[index] + sequence.base_jitter[index])
        for harmonic, amp, offset in osc.terms:
            angle = angle + amplitude * amp * np.sin(harmonic * phase + offset)
        axis_angle[:, osc.joint] += angle[:, None] * parent_axis(osc.joint, osc.axis)[None, :]
    for index, drift in enumerate(wander):
        axis_angle[:, drift.joint] += ou[:, 2 + index, None] * parent_axis(drift.joint, drift.axis)[None, :]
    moving = sorted({osc.joint for osc in spec.oscillations} | {w.joint for w in wander})
    axis_angle[:, moving] += _smoothed_noise(rng, (frames_50, len(moving), 3), noise_std_rad)

    # Only joints that move or have a base rotation need the matrix round trip; the others keep exp-map zero.
    rotated = sorted(set(moving) | set(_BASE_EXPMAPS))
    local = base_local[rotated][None] @ expmap_to_rotmat(torch.from_numpy(axis_angle[:, rotated]))  # [T, R, 3, 3]
    expmaps = torch.zeros(frames_50, skeleton.num_joints, 3, dtype=torch.float64)
    expmaps[:, rotated] = rotmat_to_expmap(local)
    angles = torch.cat([torch.zeros(frames_50, 3, dtype=torch.float64), expmaps.reshape(frames_50, -1)], dim=1)
    positions = forward_kinematics(angles, skeleton)
    return positions[::2].to(torch.float32)


def _sequence_rng(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *parts]))


def load_synthetic(split: str = "train", actions: list[str] | None = None, seed: int = _DEFAULT_SEED) -> MotionSet:
    """Generate a split of the embedded synthetic dataset (deterministic for a given ``seed``).

    Args:
        split: ``"train"``, ``"val"`` or ``"test"`` (disjoint subjects).
        actions: subset of :data:`SYNTHETIC_ACTIONS` (default all six, in their canonical order).
        seed: base seed; each (subject, action, sequence) draws from its own derived stream, so a subset of
            actions yields exactly the same sequences as the full set.

    Returns:
        A :class:`MotionSet` at 25 fps on the H3.6M skeleton.

    Raises:
        ValueError: unknown split or action.
    """
    if split not in SYNTHETIC_SPLITS:
        raise ValueError(f"unknown synthetic split {split!r}; known splits: {', '.join(SYNTHETIC_SPLITS)}")
    all_actions = list(SYNTHETIC_ACTIONS)
    chosen = all_actions if actions is None else list(actions)
    unknown = [a for a in chosen if a not in SYNTHETIC_ACTIONS]
    if unknown:
        raise ValueError(f"unknown synthetic action(s) {unknown}; known actions: {', '.join(all_actions)}")
    subjects, per_subject, (min_len, max_len) = SYNTHETIC_SPLITS[split]
    sequences, keys = [], []
    with single_threaded_torch():
        _generate_split(chosen, subjects, per_subject, (min_len, max_len), seed, sequences, keys)
        return MotionSet.from_sequences(sequences, keys, H36M_SKELETON, SYNTHETIC_FPS, dataset="synthetic",
                                        split=split, action_order=all_actions)


def _generate_split(chosen: list[str], subjects: tuple[str, ...], per_subject: int, length_range: tuple[int, int],
                    seed: int, sequences: list[torch.Tensor], keys: list[SequenceKey]) -> None:
    """Append every sequence of the chosen actions and subjects to ``sequences`` and ``keys``."""
    all_actions = list(SYNTHETIC_ACTIONS)
    min_len, max_len = length_range
    for action in chosen:
        action_id = all_actions.index(action)
        count = len(SYNTHETIC_ACTIONS[action].oscillations)
        for subject in subjects:
            subject_id = int(subject[1:])
            subject_style = _draw_style(_sequence_rng(seed, subject_id, action_id), count, 0.12)
            for subaction in range(1, per_subject + 1):
                rng = _sequence_rng(seed, subject_id, action_id, subaction)
                num_frames = int(rng.integers(min_len, max_len + 1))
                sequences.append(generate_sequence(action, num_frames, rng, subject_style))
                keys.append(SequenceKey(subject, action, subaction))


def _load_entry(split: str, folder: Path | None, cache: ArrayCache, actions: Sequence[str] | None) -> MotionSet:
    """:data:`~crisscross.data.registry.LoadFn` of the registry entry (no folder, no cache; errors as DataError)."""
    try:
        return load_synthetic(split, actions=list(actions) if actions is not None else None)
    except ValueError as err:
        raise DataError(str(err)) from None


def _check_entry(report: DataDirReport, cache: ArrayCache) -> None:
    """:data:`~crisscross.data.registry.CheckFn` of the registry entry: every split is generated."""
    report.splits = {s: "available (generated)" for s in SYNTHETIC_SPLITS}


SYNTHETIC_DATASET = DatasetEntry(
    name="synthetic",
    description="embedded procedural motion on the H3.6M skeleton (6 actions, no download)",
    needs_data_dir=False,
    splits=tuple(SYNTHETIC_SPLITS),
    fps=SYNTHETIC_FPS,
    skeleton="h36m",
    load=_load_entry,
    check=_check_entry,
)
