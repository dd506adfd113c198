"""Choose the default smoothing of lifted poses on HumanEva-I's training split; report the choice on its test split.

Run (needs the HumanEva-I files, ``--data-dir`` or ``$CRISSCROSS_DATA``)::

    python scripts/tune_smoothing.py --data-dir DATASETS [--noise-px 3]

The committed ``pretrained/humaneva-videopose3d-small-seed0.pt`` lifts every frame of every sequence (centred
windows, flip averaging) from the ground-truth 2D keypoints plus Gaussian noise of ``--noise-px`` pixels (of the
640-pixel-wide image; detectors jitter by a few pixels), then each smoothing of the 3D poses is scored: MPJPE (mm,
root-relative) and MPJVE (mm per frame), averaged over all frames. One-Euro settings are a grid of cut-off (Hz) and
speed coefficient; Savitzky-Golay windows are odd frame counts at 60 fps, order 2. The rule: the lowest MPJVE on the
training split among settings whose MPJPE is within 0.2 mm of no smoothing; the chosen settings are then scored on
the test split (Validate/S1-S3), with and without noise.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable

import numpy as np
import torch
from tabulate import tabulate

from crisscross.data.datasets import load_motion
from crisscross.data.lifting import LiftingSet
from crisscross.inference.lift import LiftPredictor
from crisscross.inference.predictor import Predictor
from crisscross.inference.smoothing import one_euro, savitzky_golay

CHECKPOINT = "pretrained/humaneva-videopose3d-small-seed0.pt"
_HALF_WIDTH_PX = 320.0  # normalised screen coordinates: x / w * 2 - 1, so 1 px is 2 / 640 = 1 / 320


def lift_all(predictor: LiftPredictor, data: LiftingSet, noise_px: float, seed: int) -> list[tuple]:
    """``[(poses [T, J, 3] m, truth [T, J, 3] m)]`` per sequence, from noisy ground-truth 2D keypoints."""
    gen = torch.Generator().manual_seed(seed)
    half, out = predictor.receptive_field // 2, []
    for start, length in zip(data.seq_starts.tolist(), data.seq_lengths.tolist()):
        kp = data.keypoints[start:start + length]
        kp = kp + torch.randn(kp.shape, generator=gen) * noise_px / _HALF_WIDTH_PX
        index = (torch.arange(length)[:, None] + torch.arange(-half, half + 1)).clamp(0, length - 1)
        poses = torch.cat([predictor.lift_normalised(kp[index[b:b + 1024]]) for b in range(0, length, 1024)])
        out.append((poses.double().numpy(), data.positions[start:start + length].double().numpy() / 1000))
    return out


def score(sequences: list[tuple], smoother: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
    """``(MPJPE, MPJVE)`` in mm over every frame of every sequence after ``smoother``."""
    errors, velocity = [], []
    for poses, truth in sequences:
        x = smoother(poses)
        x = x - x[:, :1]
        errors.append(np.linalg.norm(x - truth, axis=-1).mean(axis=1))
        velocity.append(np.linalg.norm(np.diff(x, axis=0) - np.diff(truth, axis=0), axis=-1).mean(axis=1))
    return 1000 * float(np.concatenate(errors).mean()), 1000 * float(np.concatenate(velocity).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--noise-px", type=float, default=3.0)
    args = parser.parse_args()
    predictor = Predictor.from_checkpoint(CHECKPOINT)
    fps = predictor.fps
    smoothers: dict[str, Callable[[np.ndarray], np.ndarray]] = {"none": lambda x: x}
    for cutoff, beta in itertools.product((1.0, 4.0, 8.0, 16.0), (0.5, 8.0, 32.0, 128.0)):
        smoothers[f"one-euro {cutoff:g} Hz, beta {beta:g}"] = (
            lambda c, b: lambda x: one_euro(x, fps, min_cutoff=c, beta=b))(cutoff, beta)
    for window in (5, 9, 15, 21, 31):
        smoothers[f"savgol {window} frames"] = (lambda w: lambda x: savitzky_golay(x, w, 2))(window)
    train = lift_all(predictor, load_motion("humaneva", "train", data_dir=args.data_dir), args.noise_px, seed=0)
    scores = {name: score(train, f) for name, f in smoothers.items()}
    print(f"HumanEva-I train, {CHECKPOINT}, 2D noise {args.noise_px:g} px: MPJPE and MPJVE (mm)")
    print(tabulate([[n, *s] for n, s in scores.items()], headers=["smoothing", "MPJPE", "MPJVE"], tablefmt="github",
                   floatfmt=".2f"))
    limit = scores["none"][0] + 0.2
    chosen = {kind: min((n for n in scores if n.startswith(kind) and scores[n][0] <= limit),
                        key=lambda n: scores[n][1]) for kind in ("one-euro", "savgol")}
    print(f"chosen: {chosen['one-euro']}; {chosen['savgol']}")
    test = load_motion("humaneva", "test", data_dir=args.data_dir)
    rows = []
    for noise in (0.0, args.noise_px):
        sequences = lift_all(predictor, test, noise, seed=1)
        for name in ("none", *chosen.values()):
            rows.append([f"{noise:g} px", name, *score(sequences, smoothers[name])])
    print("HumanEva-I test (Validate/S1-S3), every frame of every sequence")
    print(tabulate(rows, headers=["2D noise", "smoothing", "MPJPE", "MPJVE"], tablefmt="github", floatfmt=".2f"))


if __name__ == "__main__":
    main()
