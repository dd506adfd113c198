"""Predicting on one's own data, checked on real recordings. Run with ``-s`` to see the measured figures.

* Human3.6M S11 world motion (rebuilt from the exp-map files, z up, as a motion-capture user has it) goes through the
  body frame: exactly the literature's positions when the pelvis's own up axis is given, and forecasts almost as
  accurate as on the literature's positions with the world's up axis (what ``crisscross predict`` uses).
* HumanEva-I: the causal streaming lifter against the delayed (offline) one, and the two smoothers on noisy 2D.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tabulate import tabulate

from crisscross.data.body_frame import body_frames
from crisscross.data.datasets import load_motion
from crisscross.data.h36m import H36M_ACTIONS, find_h36m_root, h36m_file
from crisscross.data.h36m_world import world_file
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.evaluation.forecasting import make_predict_fn
from crisscross.inference.predictor import Predictor
from crisscross.inference.smoothing import smooth

pytestmark = pytest.mark.realdata

SK = H36M_SKELETON
SPINE = SK.joint_names.index("Spine")  # 0.1 mm above the root along the pelvis's own y axis
HORIZONS_MS = (80, 160, 320, 400, 560, 720, 880, 1000)


@pytest.fixture(scope="module")
def s11(h36m_root, h36m_val):
    """``{action: (world [T, 32, 3] at 25 fps, literature positions [T, 32, 3])}``, one take of each S11 action."""
    root = find_h36m_root(h36m_root)
    out = {}
    for action in H36M_ACTIONS:
        take = 1 if h36m_file(root, "S11", action, 1).is_file() else 2
        world = world_file(h36m_file(root, "S11", action, take)).astype(np.float64)[::2]
        index = next(i for i, k in enumerate(h36m_val.keys) if k.action == action and k.subaction == take)
        literature = h36m_val.sequence(index).numpy().astype(np.float64)
        frames = min(len(world), len(literature))
        out[action] = (world[:frames], literature[:frames])
    return out


def test_the_body_frame_of_world_motion_is_the_literatures_when_the_pelvis_is_observable(s11) -> None:
    for action, (world, literature) in s11.items():
        body = body_frames(world, SK, up=world[:, SPINE] - world[:, 0]).apply(world)
        assert np.abs(body - literature).max() < 1.0, action  # mm, after 50 Hz integration of the root


def test_forecasts_of_world_recordings_with_the_worlds_up_axis(s11) -> None:
    predictor = Predictor.from_checkpoint("pretrained/h36m-stcformer-seed0.pt")
    predict = make_predict_fn(predictor.model, SK, 25)
    predicted = list(SK.predicted)
    steps = [ms // 40 - 1 for ms in HORIZONS_MS]
    errors: dict[str, list[np.ndarray]] = {"literature positions": [], "world, z up": []}
    offsets = []
    for world, literature in s11.values():
        origins = np.arange(9, len(world) - 25, 10)
        past, future = origins[:, None] + np.arange(-9, 1), origins[:, None] + np.arange(1, 26)
        gravity = body_frames(world, SK, up=np.array([0.0, 0.0, 1.0])).apply(world)
        offsets.append(np.linalg.norm(gravity - literature, axis=-1).mean())
        for name, body in zip(errors, (literature, gravity)):
            with torch.no_grad():
                pred = predict(torch.as_tensor(body[past], dtype=torch.float32)).double().numpy()
            # each in its own frame: the literature's pelvis frame, or the z-up body frame of every future frame
            errors[name].append(np.linalg.norm(pred[:, :, predicted] - body[future][:, :, predicted], axis=-1)
                                .mean(axis=(0, 2)))
    rows = [[name, *np.mean(e, axis=0)[steps]] for name, e in errors.items()]
    print("\nh36m-stcformer-seed0 on S11 (validation split), one take per action, a window every 10 frames; "
          f"mean over {len(s11)} actions of MPJPE (22 joints, mm)")
    print(tabulate(rows, headers=["input", *(f"{ms} ms" for ms in HORIZONS_MS)], tablefmt="github", floatfmt=".1f"))
    print(f"z-up body frame vs the literature's: {np.mean(offsets):.1f} mm per joint (mean over actions; "
          f"{min(offsets):.1f} to {max(offsets):.1f})")
    literature, gravity = rows[0][-1], rows[1][-1]
    assert gravity < 1.15 * literature  # the body frame costs little: the pelvis's tilt stays in the input


def test_causal_streaming_and_smoothing_on_humaneva(data_root) -> None:
    predictor = Predictor.from_checkpoint("pretrained/humaneva-videopose3d-small-seed0.pt")
    data = load_motion("humaneva", "test", data_dir=data_root("humaneva"))
    half = predictor.receptive_field // 2
    gen = torch.Generator().manual_seed(1)
    results: dict[str, list[float]] = {}
    for start, length in zip(data.seq_starts.tolist(), data.seq_lengths.tolist()):
        clean = data.keypoints[start:start + length]
        noisy = clean + torch.randn(clean.shape, generator=gen) * 3 / 320  # 3 px of a 640 px wide image
        truth = data.positions[start:start + length].double().numpy() / 1000
        window = torch.arange(length)[:, None] + torch.arange(-half, half + 1)
        delayed = window.clamp(0, length - 1)
        causal = torch.minimum(window.clamp(min=0), torch.arange(length)[:, None])
        runs = {"delayed (offline)": (clean, delayed, None), "causal": (clean, causal, None),
                "delayed, 3 px noise": (noisy, delayed, None),
                "delayed, 3 px noise, one-euro": (noisy, delayed, "one-euro"),
                "delayed, 3 px noise, savgol": (noisy, delayed, "savgol")}
        for name, (kp, index, smoother) in runs.items():
            poses = torch.cat([predictor.lift_normalised(kp[index[b:b + 1024]]) for b in range(0, length, 1024)])
            poses = poses.double().numpy()
            if smoother:
                poses = smooth(poses, smoother, predictor.fps)
                poses = poses - poses[:, :1]
            mpjpe = np.linalg.norm(poses - truth, axis=-1).mean(axis=1)
            mpjve = np.linalg.norm(np.diff(poses, axis=0) - np.diff(truth, axis=0), axis=-1).mean(axis=1)
            results.setdefault(name, [0.0, 0.0, 0, 0])
            results[name][0] += 1000 * mpjpe.sum()
            results[name][1] += 1000 * mpjve.sum()
            results[name][2] += len(mpjpe)
            results[name][3] += len(mpjve)
    table = {name: (r[0] / r[2], r[1] / r[3]) for name, r in results.items()}
    print("\nhumaneva-videopose3d-small-seed0 on HumanEva-I Validate/S1-S3, every frame of every sequence (mm)")
    print(tabulate([[n, *v] for n, v in table.items()], headers=["lifting", "MPJPE", "MPJVE"], tablefmt="github",
                   floatfmt=".2f"))
    assert 0 < table["causal"][0] - table["delayed (offline)"][0] < 8.0
    raw = table["delayed, 3 px noise"]
    assert table["delayed, 3 px noise, savgol"][1] < 0.6 * raw[1]
    assert table["delayed, 3 px noise, one-euro"][1] < 0.8 * raw[1]
    assert table["delayed, 3 px noise, savgol"][0] < raw[0] + 0.5
