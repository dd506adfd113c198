"""How a lifting split looks through its cameras: joints inside the image, the person's height in pixels, depth.

These figures check a projection (a wrong rotation or axis swap puts people outside the image, upside down or at
implausible sizes) and describe a dataset beside the literature's (Human3.6M's people are about 250 to 460 px
tall at 2.5 to 7.4 m).
"""

from __future__ import annotations

import torch

from crisscross.data.cameras import CAMERA_RIGS, Camera, image_coordinates
from crisscross.data.errors import DataError
from crisscross.data.lifting import LiftingSet

__all__ = ["camera_by_id", "pixel_keypoints", "view_statistics"]


def camera_by_id(camera_id: str) -> Camera:
    """The camera (of any rig and subject: intrinsics and resolution are per camera) with this id."""
    for rig in CAMERA_RIGS.values():
        for cameras in rig.values():
            for camera in cameras:
                if camera.id == camera_id:
                    return camera
    raise DataError(f"no camera {camera_id!r} in the camera rigs ({', '.join(CAMERA_RIGS)})")


def pixel_keypoints(dataset: LiftingSet, sequence: int) -> torch.Tensor:
    """Tensor[T, J, 2]: the keypoints of one sequence in pixels of its camera."""
    camera = camera_by_id(dataset.keys[sequence].camera)
    start, length = int(dataset.seq_starts[sequence]), int(dataset.seq_lengths[sequence])
    return image_coordinates(dataset.keypoints[start:start + length].double(), camera.res_w, camera.res_h)


def view_statistics(dataset: LiftingSet) -> dict[str, dict[str, float]]:
    """Per subject and over all: share of joints inside the image, person height in pixels, root depth (m).

    Returns:
        ``{subject or "all": {"inside": share in [0, 1], "height_px_median", "height_px_min", "height_px_max",
        "depth_m_min", "depth_m_max", "frames"}}``; the height is the vertical extent of a frame's keypoints.
    """
    per_subject: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
    for i, key in enumerate(dataset.keys):
        camera = camera_by_id(key.camera)
        px = pixel_keypoints(dataset, i)
        inside = (px[..., 0] >= 0) & (px[..., 0] < camera.res_w) & (px[..., 1] >= 0) & (px[..., 1] < camera.res_h)
        height = px[..., 1].amax(-1) - px[..., 1].amin(-1)
        start, length = int(dataset.seq_starts[i]), int(dataset.seq_lengths[i])
        depth = dataset.root[start:start + length, 2].double() / 1000 if dataset.root is not None else height * 0
        per_subject.setdefault(key.subject, []).append((inside.flatten(), height, depth))
    per_subject["all"] = [item for items in list(per_subject.values()) for item in items]
    stats = {}
    for subject, items in per_subject.items():
        inside, height, depth = (torch.cat([item[k] for item in items]) for k in range(3))
        stats[subject] = {"inside": float(inside.double().mean()), "height_px_median": float(height.median()),
                          "height_px_min": float(height.min()), "height_px_max": float(height.max()),
                          "depth_m_min": float(depth.min()), "depth_m_max": float(depth.max()),
                          "frames": int(height.numel())}
    return stats
