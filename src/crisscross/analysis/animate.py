"""Side-by-side 3D skeleton animation of ground truth and prediction (headless, matplotlib ``Agg``).

The clip is the whole window: the observed frames (drawn grey in both panels), then the true future (left) and the
predicted future (right). Bones join every joint of the full skeleton to its parent. The figure and its line
artists are created once; each frame only updates the lines' data (``set_data_3d``) and the title, and is handed to
the writer, so a 35-frame clip renders in seconds.

Writers: ``.gif`` through matplotlib's ``PillowWriter`` (Pillow is a matplotlib dependency); ``.mp4`` through
``FFMpegWriter`` when an ``ffmpeg`` executable is on the PATH. When the needed writer is unavailable the frames are
written as numbered PNGs in a folder next to the requested file, and the result says so.

Axes: the data's vertical axis (``skeleton.vertical_axis``, ``y`` for H3.6M) is drawn upwards.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["AnimationResult", "animate_forecast", "animate_futures", "available_writers", "closest_future"]

PAST_COLOR = "0.45"
TRUE_COLOR = "tab:blue"
PRED_COLOR = "tab:red"


@dataclass(frozen=True)
class AnimationResult:
    """What :func:`animate_forecast` wrote."""

    path: Path
    frames: int
    writer: str
    fallback: str | None = None


def available_writers() -> dict[str, bool]:
    """Which animation writers work here: ``{"pillow": bool, "ffmpeg": bool}``."""
    try:
        import PIL  # noqa: F401  (lazy: an import probe, Pillow is optional for matplotlib)

        pillow = True
    except ImportError:
        pillow = False
    return {"pillow": pillow, "ffmpeg": shutil.which("ffmpeg") is not None}


def _plot_coords(x: torch.Tensor, vertical_axis: int) -> torch.Tensor:
    """Rotate [..., 3] so the data's vertical axis becomes the plot's z (up), keeping a right-handed frame
    (a proper rotation, so left and right are not mirrored)."""
    if vertical_axis == 0:
        return x[..., [1, 2, 0]]
    if vertical_axis == 1:
        return torch.stack([x[..., 0], -x[..., 2], x[..., 1]], dim=-1)
    return x


def _check_inputs(truth_mm: torch.Tensor, pred_mm: torch.Tensor, parents: Sequence[int], out_path: Path) -> None:
    """Raise ``ValueError`` for mismatched shapes, a parent list of another length or an unsupported file type."""
    if truth_mm.shape != pred_mm.shape or truth_mm.dim() != 3 or truth_mm.shape[-1] != 3:
        raise ValueError(f"truth {tuple(truth_mm.shape)} and prediction {tuple(pred_mm.shape)} must both be [T, J, 3]")
    if len(parents) != truth_mm.shape[1]:
        raise ValueError(f"{len(parents)} parents for {truth_mm.shape[1]} joints")
    if out_path.suffix.lower() not in (".gif", ".mp4"):
        raise ValueError(f"animation file {out_path} must end in .gif or .mp4")


def _build_figure(plt: Any, truth: Any, pred: Any, n_bones: int, dpi: int, figsize: tuple[float, float],
                  panel_titles: tuple[str, str] = ("ground truth", "prediction"),
                  ) -> tuple[Any, list[tuple[Any, list[Any], str]], Any]:
    """The two 3D panels with one line artist per bone, on shared cubic limits: ``(figure, panels, caption)``.

    Each panel is ``(data, lines, future colour)``; ``caption`` is the figure's title text.
    """
    both = torch.cat([torch.from_numpy(truth), torch.from_numpy(pred)]).reshape(-1, 3)
    centre = (both.max(0).values + both.min(0).values) / 2
    half = float((both.max(0).values - both.min(0).values).max()) / 2 * 1.05 + 1e-6
    fig = plt.figure(figsize=figsize, dpi=dpi)
    panels = []
    for i, (name, data) in enumerate(zip(panel_titles, (truth, pred))):
        ax = fig.add_subplot(1, 2, i + 1, projection="3d")
        ax.set_title(name, fontsize=9)
        for axis, c in zip("xyz", centre.tolist()):
            getattr(ax, f"set_{axis}lim")(c - half, c + half)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=15, azim=-60)
        ax.set_xticklabels([])
        ax.set_yticklabels([])
        ax.set_zticklabels([])
        lines = [ax.plot([], [], [], lw=2, color=PAST_COLOR)[0] for _ in range(n_bones)]
        panels.append((data, lines, TRUE_COLOR if i == 0 else PRED_COLOR))
    caption = fig.suptitle("", fontsize=9)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.02, top=0.86, wspace=0.02)
    return fig, panels, caption


def _pick_writer(animation: Any, out_path: Path, fps: float) -> tuple[Any, str, str | None]:
    """``(writer or None, writer name, fallback note)`` for the file type and the writers available here."""
    suffix = out_path.suffix.lower()
    writers = available_writers()
    if suffix == ".gif" and writers["pillow"]:
        return animation.PillowWriter(fps=fps), "pillow", None
    if suffix == ".mp4" and writers["ffmpeg"]:
        return animation.FFMpegWriter(fps=fps), "ffmpeg", None
    needed = "Pillow" if suffix == ".gif" else "ffmpeg"
    return None, "png-frames", f"{needed} is not available: wrote PNG frames to {out_path.with_suffix('')}_frames/"


def animate_forecast(truth_mm: torch.Tensor, pred_mm: torch.Tensor, parents: Sequence[int], input_frames: int,
                     out_path: str | Path, *, fps: float = 25.0, title: str = "", vertical_axis: int = 1,
                     dpi: int = 80, figsize: tuple[float, float] = (8.0, 4.2),
                     panel_titles: tuple[str, str] = ("ground truth", "prediction"),
                     frame_labels: Sequence[str] | None = None) -> AnimationResult:
    """Render ground truth and prediction side by side, frame by frame.

    Args:
        truth_mm: Tensor[T, J, 3] the true window (observed then future frames), any unit (mm by convention).
        pred_mm: Tensor[T, J, 3] the same window with the predicted future (its first ``input_frames`` frames are
            the observed ones).
        parents: parent index per joint (-1 for roots); a bone is drawn per joint with a parent.
        input_frames: observed frames at the start of the clip.
        out_path: ``.gif`` or ``.mp4`` file.
        fps: frame rate of the data and of the clip.
        title: first line of the title.
        vertical_axis: index of the data's up axis.
        dpi: resolution of each frame (the frame is ``figsize * dpi`` pixels).
        figsize: figure size in inches.
        panel_titles: titles of the left (``truth_mm``) and right (``pred_mm``) panels.
        frame_labels: one caption per frame in place of "observed frame k" / "future +t ms".

    Returns:
        Where and how the clip was written.

    Raises:
        ValueError: mismatched shapes or an unsupported file type.
    """
    import matplotlib  # lazy: heavy, and only rendering needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import animation

    out_path = Path(out_path)
    _check_inputs(truth_mm, pred_mm, parents, out_path)
    frames = truth_mm.shape[0]
    truth = _plot_coords(truth_mm.detach().cpu().float(), vertical_axis).numpy()
    pred = _plot_coords(pred_mm.detach().cpu().float(), vertical_axis).numpy()
    bones = [(j, p) for j, p in enumerate(parents) if p >= 0]
    if frame_labels is not None and len(frame_labels) != frames:
        raise ValueError(f"{len(frame_labels)} frame labels for {frames} frames")
    fig, panels, caption = _build_figure(plt, truth, pred, len(bones), dpi, figsize, panel_titles)

    def draw(t: int) -> None:
        observed = t < input_frames
        for data, lines, future_color in panels:
            for line, (j, p) in zip(lines, bones):
                line.set_data_3d([data[t, j, 0], data[t, p, 0]], [data[t, j, 1], data[t, p, 1]],
                                 [data[t, j, 2], data[t, p, 2]])
                line.set_color(PAST_COLOR if observed else future_color)
        when = (frame_labels[t] if frame_labels is not None else f"observed frame {t + 1}/{input_frames}"
                if observed else f"future +{1000.0 * (t - input_frames + 1) / fps:.0f} ms")
        caption.set_text(f"{title}\nframe {t + 1}/{frames}: {when}")

    return _write_frames(plt, animation, fig, draw, frames, out_path, fps, dpi)


def _write_frames(plt: Any, animation: Any, fig: Any, draw: Any, frames: int, out_path: Path, fps: float,
                  dpi: int) -> AnimationResult:
    """Draw each frame with ``draw(t)`` and hand it to the writer (or to numbered PNGs); closes ``fig``."""
    writer, writer_name, fallback = _pick_writer(animation, out_path, fps)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if writer is not None:
            with writer.saving(fig, str(out_path), dpi=dpi):
                for t in range(frames):
                    draw(t)
                    writer.grab_frame()
            return AnimationResult(out_path, frames, writer_name)
        folder = out_path.parent / f"{out_path.stem}_frames"
        folder.mkdir(exist_ok=True)
        for t in range(frames):
            draw(t)
            fig.savefig(folder / f"frame_{t:03d}.png", dpi=dpi)
        return AnimationResult(folder, frames, writer_name, fallback)
    finally:
        plt.close(fig)


def closest_future(truth_mm: torch.Tensor, futures_mm: torch.Tensor, input_frames: int) -> tuple[int, float]:
    """The sampled future nearest the truth: ``(index, its ADE in the inputs' unit)``, as best-of-K ADE picks it.

    Args:
        truth_mm: Tensor[T, J, 3] the true window (observed then future frames).
        futures_mm: Tensor[K, T, J, 3] the same window once per sampled future.
        input_frames: observed frames at the start, left out of the error.

    Returns:
        The index of the future with the lowest mean joint error over the predicted frames, and that error.
    """
    error = (futures_mm[:, input_frames:] - truth_mm[None, input_frames:]).norm(dim=-1).mean(dim=(1, 2))  # [K]
    best = int(error.argmin())
    return best, float(error[best])


def animate_futures(truth_mm: torch.Tensor, futures_mm: torch.Tensor, parents: Sequence[int], input_frames: int,
                    out_path: str | Path, *, fps: float = 25.0, title: str = "", vertical_axis: int = 1,
                    dpi: int = 80, figsize: tuple[float, float] = (8.0, 4.2), truth_known: bool = True,
                    reference_title: str = "ground truth") -> AnimationResult:
    """Render the ground truth beside K sampled futures of one window, overlaid in one panel.

    The right panel draws every future in its own colour, thin and translucent, and the one closest to the truth
    (the one best-of-K ADE scores, :func:`closest_future`) bold red; the observed frames are grey in both panels.
    Without a known future (``truth_known=False``: one's own recording, the left panel e.g. its last pose held,
    titled ``reference_title``) no future is singled out.

    Args:
        truth_mm: Tensor[T, J, 3] the true window (observed then future frames).
        futures_mm: Tensor[K, T, J, 3] the window once per sampled future (first ``input_frames`` frames observed).
        parents: parent index per joint (-1 for roots).
        input_frames: observed frames at the start of the clip.
        out_path: ``.gif`` or ``.mp4`` file.
        fps, title, vertical_axis, dpi, figsize: as :func:`animate_forecast`.
        truth_known: whether ``truth_mm``'s future frames are the truth (then the closest future is bold red).
        reference_title: the left panel's title.

    Returns:
        Where and how the clip was written.

    Raises:
        ValueError: mismatched shapes, no futures or an unsupported file type.
    """
    import matplotlib  # lazy: heavy, and only rendering needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import animation

    out_path = Path(out_path)
    if futures_mm.dim() != 4 or futures_mm.shape[0] < 1:
        raise ValueError(f"futures must be [K, T, J, 3] with K >= 1, got {tuple(futures_mm.shape)}")
    _check_inputs(truth_mm, futures_mm[0], parents, out_path)
    k, frames = futures_mm.shape[:2]
    best, best_ade = closest_future(truth_mm.float(), futures_mm.float(), input_frames) if truth_known else (-1, 0.0)
    truth = _plot_coords(truth_mm.detach().cpu().float(), vertical_axis).numpy()
    futures = _plot_coords(futures_mm.detach().cpu().float(), vertical_axis).numpy()
    bones = [(j, p) for j, p in enumerate(parents) if p >= 0]
    titles = (reference_title, f"{k} sampled futures (bold red: closest, ADE {best_ade:.0f} mm)" if truth_known
              else f"{k} sampled futures")
    fig, panels, caption = _build_figure(plt, truth, futures.reshape(k * frames, -1, 3), len(bones), dpi, figsize,
                                         titles)
    _, truth_lines, _ = panels[0]
    ax = panels[1][1][0].axes
    for line in panels[1][1]:
        line.remove()
    # The closest future is red and drawn last, on top; the others cycle through tab10 without its red and grey
    # (grey marks observed frames).
    palette = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i not in (3, 7)]
    order = [i for i in range(k) if i != best] + ([best] if best >= 0 else [])
    color = {i: PRED_COLOR if i == best else palette[n % len(palette)] for n, i in enumerate(order)}
    future_lines = {i: [ax.plot([], [], [], lw=2.2 if i == best else 0.9, alpha=1.0 if i == best else 0.55,
                                color=color[i])[0] for _ in bones] for i in order}

    def draw(t: int) -> None:
        observed = t < input_frames
        sets = [(truth, truth_lines, TRUE_COLOR)] + [(futures[i], future_lines[i], color[i]) for i in order]
        for data, lines, future_color in sets:
            for line, (j, p) in zip(lines, bones):
                line.set_data_3d([data[t, j, 0], data[t, p, 0]], [data[t, j, 1], data[t, p, 1]],
                                 [data[t, j, 2], data[t, p, 2]])
                line.set_color(PAST_COLOR if observed else future_color)
        when = f"observed frame {t + 1}/{input_frames}" if observed else (
            f"future +{1000.0 * (t - input_frames + 1) / fps:.0f} ms")
        caption.set_text(f"{title}\nframe {t + 1}/{frames}: {when}")

    return _write_frames(plt, animation, fig, draw, frames, out_path, fps, dpi)
