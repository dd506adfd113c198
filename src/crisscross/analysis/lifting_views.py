"""Figures of a lifting split seen through its cameras: one recording drawn in every camera's image frame, and
the distribution of the person's height in pixels. They show at a glance whether a projection is right."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crisscross.analysis.plots import new_figure, save_figure
from crisscross.data.lifting import LiftingSet
from crisscross.data.lifting_views import camera_by_id, pixel_keypoints

__all__ = ["plot_camera_views", "plot_height_distribution"]


def plot_camera_views(dataset: LiftingSet, sequences: Sequence[int], path: str | Path, frames: int = 6) -> Path:
    """One panel per sequence (a recording in each camera): ``frames`` evenly spaced poses inside the image frame."""
    fig = new_figure(3.2 * len(sequences), 3.4)
    for panel, index in enumerate(sequences):
        key, camera = dataset.keys[index], camera_by_id(dataset.keys[index].camera)
        px = pixel_keypoints(dataset, index).numpy()
        ax = fig.add_subplot(1, len(sequences), panel + 1)
        ax.add_patch(_frame(camera.res_w, camera.res_h))
        for t in np.linspace(0, len(px) - 1, frames).round().astype(int):
            for joint, parent in enumerate(dataset.skeleton.parents):
                if parent >= 0:
                    ax.plot(px[t, [joint, parent], 0], px[t, [joint, parent], 1], lw=1.2,
                            color=f"C{t * 10 // len(px) % 10}")
        ax.set(xlim=(-50, camera.res_w + 50), ylim=(camera.res_h + 50, -50), aspect="equal",
               title=f"{key.subject} {key.action} {key.take}\ncamera {key.camera}")
        ax.tick_params(labelsize=7)
    return save_figure(fig, path)


def _frame(width: int, height: int):
    from matplotlib.patches import Rectangle  # lazy: matplotlib is optional (extra "plot")

    return Rectangle((0, 0), width, height, fill=False, lw=1.0, color="0.3")


def plot_height_distribution(heights_px: dict[str, np.ndarray], path: str | Path) -> Path:
    """Histograms of the person's height in pixels (vertical extent of the keypoints), one per label."""
    fig = new_figure(6.4, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    for label, values in heights_px.items():
        ax.hist(values, bins=60, range=(0, 800), histtype="step", lw=1.4, density=True,
                label=f"{label} (median {np.median(values):.0f} px)")
    ax.set(xlabel="person height in the image (px)", ylabel="density (per px)")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
