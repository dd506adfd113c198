"""Cameras as named data, and the pure geometry that moves points between world, camera and image.

Conventions (those of VideoPose3D, whose published constants are encoded here):

* **Units.** 3D points are in millimetres, in and out; image points are in pixels (``u`` right, ``v`` down, origin
  at the top-left corner). The HumanEva and Human3.6M files of the lifting literature store metres: multiply by
  1000 before calling these functions.
* **World frame.** z is up (the camera centres sit 1.4-1.6 m above the floor); x and y span the floor.
* **Camera frame.** The camera looks along +z; x points right and y down in the image, so a point is in front of
  the camera when its z is positive.
* **Extrinsics.** :attr:`Camera.orientation` is a unit quaternion ``(w, x, y, z)`` that rotates camera-frame
  directions into the world frame (camera-to-world). :attr:`Camera.translation_mm` is the camera centre in world
  millimetres. So ``world = R @ cam + t`` and ``cam = R.T @ (world - t)`` with ``R = quaternion_to_matrix(q)``.
* **Intrinsics.** ``focal`` ``(fx, fy)`` and ``center`` ``(cx, cy)`` in pixels, radial ``(k1, k2, k3)`` and
  tangential ``(p1, p2)`` coefficients in the distortion model of :func:`project`. HumanEva-I's intrinsics are not
  published with the extrinsics; :func:`fit_pinhole` recovers pinhole intrinsics from 3D-2D correspondences (for
  HumanEva, its 3D and 2D ground truth).

Rigs (:data:`CAMERA_RIGS`, :func:`get_cameras`): ``"h36m"`` has 4 cameras per subject S1 S5 S6 S7 S8 S9 S11 (the
intrinsics are shared, the extrinsics differ slightly per subject; S2 S3 S4 have none); ``"humaneva"`` has colour
cameras C1 C2 C3 (640 x 480) per subject S1 S2 S3, without intrinsics.

Every function takes any leading batch shape (written ``[..., 3]``), preserves the input's dtype and device
(float64 works throughout) and never modifies its inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from crisscross.data.errors import DataError

__all__ = [
    "CAMERA_RIGS",
    "Camera",
    "camera_to_world",
    "fit_pinhole",
    "get_cameras",
    "image_coordinates",
    "normalize_screen",
    "project",
    "quaternion_to_matrix",
    "world_to_camera",
]

_UNIT_QUATERNION_TOLERANCE = 1e-3


def _float_tuple(value, length: int, name: str, camera_id: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in value)
    if len(values) != length:
        raise ValueError(f"camera {camera_id!r}: {name} needs {length} values, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"camera {camera_id!r}: {name} has a non-finite value: {values}")
    return values


@dataclass(frozen=True)
class Camera:
    """One calibrated camera: extrinsics always, intrinsics (``focal``, ``center``) only where they are known.

    ``orientation`` is the camera-to-world rotation as a unit quaternion ``(w, x, y, z)``; ``translation_mm`` is the
    camera centre in world millimetres; ``focal`` and ``center`` are in pixels; ``radial`` ``(k1, k2, k3)`` and
    ``tangential`` ``(p1, p2)`` follow :func:`project`. Values are stored as tuples of floats.
    """

    id: str
    res_w: int
    res_h: int
    orientation: tuple[float, float, float, float]
    translation_mm: tuple[float, float, float]
    focal: tuple[float, float] | None = None
    center: tuple[float, float] | None = None
    radial: tuple[float, float, float] = (0.0, 0.0, 0.0)
    tangential: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        cid = self.id
        if int(self.res_w) != self.res_w or int(self.res_h) != self.res_h or self.res_w <= 0 or self.res_h <= 0:
            raise ValueError(f"camera {cid!r}: resolution must be positive integers, got {self.res_w} x {self.res_h}")
        if (self.focal is None) != (self.center is None):
            raise ValueError(f"camera {cid!r}: give both focal and center, or neither")
        fields = {
            "orientation": _float_tuple(self.orientation, 4, "orientation", cid),
            "translation_mm": _float_tuple(self.translation_mm, 3, "translation_mm", cid),
            "radial": _float_tuple(self.radial, 3, "radial", cid),
            "tangential": _float_tuple(self.tangential, 2, "tangential", cid),
        }
        if self.focal is not None:
            fields["focal"] = _float_tuple(self.focal, 2, "focal", cid)
            fields["center"] = _float_tuple(self.center, 2, "center", cid)
            if min(fields["focal"]) <= 0:
                raise ValueError(f"camera {cid!r}: focal lengths must be positive, got {fields['focal']}")
        norm = math.sqrt(sum(v * v for v in fields["orientation"]))
        if abs(norm - 1.0) > _UNIT_QUATERNION_TOLERANCE:
            raise ValueError(
                f"camera {cid!r}: orientation must be a unit quaternion (w, x, y, z) within "
                f"{_UNIT_QUATERNION_TOLERANCE:g}, its norm is {norm:.6f}"
            )
        object.__setattr__(self, "res_w", int(self.res_w))
        object.__setattr__(self, "res_h", int(self.res_h))
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    @property
    def has_intrinsics(self) -> bool:
        """Whether ``focal`` and ``center`` are known (so :func:`project` can be used)."""
        return self.focal is not None and self.center is not None


# --------------------------------------------------------------------------------------------------------------
# Published constants. Source: VideoPose3D (facebookresearch/VideoPose3D), common/h36m_dataset.py (Human3.6M) and
# common/humaneva_dataset.py (HumanEva-I). Quaternions are (w, x, y, z), camera-to-world; translations are the
# camera centres in world millimetres.
# --------------------------------------------------------------------------------------------------------------

# Human3.6M intrinsics, in the published camera order: id -> (res_w, res_h, focal, center, radial, tangential).
# Source: VideoPose3D, common/h36m_dataset.py.
_H36M_INTRINSICS: dict[str, tuple] = {
    "54138969": (
        1000, 1002,
        (1145.0494384765625, 1143.7811279296875),
        (512.54150390625, 515.4514770507812),
        (-0.20709891617298126, 0.24777518212795258, -0.0030751503072679043),
        (-0.0009756988729350269, -0.00142447161488235),
    ),
    "55011271": (
        1000, 1000,
        (1149.6756591796875, 1147.5916748046875),
        (508.8486328125, 508.0649108886719),
        (-0.1942136287689209, 0.2404085397720337, 0.006819975562393665),
        (-0.0016190266469493508, -0.0027408944442868233),
    ),
    "58860488": (
        1000, 1000,
        (1149.1407470703125, 1148.7989501953125),
        (519.8158569335938, 501.40264892578125),
        (-0.2083381861448288, 0.25548800826072693, -0.0024604974314570427),
        (0.0014843869721516967, -0.0007599993259645998),
    ),
    "60457274": (
        1000, 1002,
        (1145.5113525390625, 1144.77392578125),
        (514.9682006835938, 501.88201904296875),
        (-0.198384091258049, 0.21832367777824402, -0.008947807364165783),
        (-0.0005872055771760643, -0.0018133620033040643),
    ),
}

# Human3.6M extrinsics per subject, cameras in the order of _H36M_INTRINSICS: (orientation, translation_mm).
# Source: VideoPose3D, common/h36m_dataset.py.
_H36M_EXTRINSICS: dict[str, tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]] = {
    "S1": (
        ((0.1407056450843811, -0.1500701755285263, -0.755240797996521, 0.6223280429840088),
         (1841.1070556640625, 4955.28466796875, 1563.4454345703125)),
        ((0.6157187819480896, -0.764836311340332, -0.14833825826644897, 0.11794740706682205),
         (1761.278564453125, -5078.0068359375, 1606.2650146484375)),
        ((0.14651472866535187, -0.14647851884365082, 0.7653023600578308, -0.6094175577163696),
         (-1846.7777099609375, 5215.04638671875, 1491.972412109375)),
        ((0.5834008455276489, -0.7853162288665771, 0.14548823237419128, -0.14749594032764435),
         (-1794.7896728515625, -3722.698974609375, 1574.8927001953125)),
    ),
    "S5": (
        ((0.1467377245426178, -0.162370964884758, -0.7551892995834351, 0.6178938746452332),
         (2097.3916015625, 4880.94482421875, 1605.732421875)),
        ((0.6159758567810059, -0.7626792192459106, -0.15728192031383514, 0.1189815029501915),
         (2031.7008056640625, -5167.93310546875, 1612.923095703125)),
        ((0.14291371405124664, -0.12907841801643372, 0.7678384780883789, -0.6110143065452576),
         (-1620.5948486328125, 5171.65869140625, 1496.43701171875)),
        ((0.5920479893684387, -0.7814217805862427, 0.1274748593568802, -0.15036417543888092),
         (-1637.1737060546875, -3867.3173828125, 1547.033203125)),
    ),
    "S6": (
        ((0.1337897777557373, -0.15692396461963654, -0.7571090459823608, 0.6198879480361938),
         (1935.4517822265625, 4950.24560546875, 1618.0838623046875)),
        ((0.6147197484970093, -0.7628812789916992, -0.16174767911434174, 0.11819244921207428),
         (1969.803955078125, -5128.73876953125, 1632.77880859375)),
        ((0.1529948115348816, -0.13529130816459656, 0.7646096348762512, -0.6112781167030334),
         (-1769.596435546875, 5185.361328125, 1476.993408203125)),
        ((0.5916101336479187, -0.7804774045944214, 0.12832270562648773, -0.1561593860387802),
         (-1721.668701171875, -3884.13134765625, 1540.4879150390625)),
    ),
    "S7": (
        ((0.1435241848230362, -0.1631336808204651, -0.7548328638076782, 0.6188824772834778),
         (1974.512939453125, 4926.3544921875, 1597.8326416015625)),
        ((0.6141672730445862, -0.7638262510299683, -0.1596645563840866, 0.1177929937839508),
         (1937.0584716796875, -5119.7900390625, 1631.5665283203125)),
        ((0.14550060033798218, -0.12874816358089447, 0.7660516500473022, -0.6127139329910278),
         (-1741.8111572265625, 5208.24951171875, 1464.8245849609375)),
        ((0.5912848114967346, -0.7821764349937439, 0.12445473670959473, -0.15196487307548523),
         (-1734.7105712890625, -3832.42138671875, 1548.5830078125)),
    ),
    "S8": (
        ((0.14110587537288666, -0.15589867532253265, -0.7561917304992676, 0.619644045829773),
         (2150.65185546875, 4896.1611328125, 1611.9046630859375)),
        ((0.6169601678848267, -0.7647668123245239, -0.14846350252628326, 0.11158157885074615),
         (2219.965576171875, -5148.453125, 1613.0440673828125)),
        ((0.1471444070339203, -0.13377119600772858, 0.7670128345489502, -0.6100369691848755),
         (-1571.2215576171875, 5137.0185546875, 1498.1761474609375)),
        ((0.5927824378013611, -0.7825870513916016, 0.12147816270589828, -0.14631995558738708),
         (-1476.913330078125, -3896.7412109375, 1547.97216796875)),
    ),
    "S9": (
        ((0.15540587902069092, -0.15548215806484222, -0.7532095313072205, 0.6199594736099243),
         (2044.45849609375, 4935.1171875, 1481.2275390625)),
        ((0.618784487247467, -0.7634735107421875, -0.14132238924503326, 0.11933968216180801),
         (1990.959716796875, -5123.810546875, 1568.8048095703125)),
        ((0.13357827067375183, -0.1367100477218628, 0.7689454555511475, -0.6100738644599915),
         (-1670.9921875, 5211.98583984375, 1528.387939453125)),
        ((0.5879399180412292, -0.7823407053947449, 0.1427614390850067, -0.14794869720935822),
         (-1696.04345703125, -3827.099853515625, 1591.4127197265625)),
    ),
    "S11": (
        ((0.15232472121715546, -0.15442320704460144, -0.7547563314437866, 0.6191070079803467),
         (2098.440185546875, 4926.5546875, 1500.278564453125)),
        ((0.6189449429512024, -0.7600917220115662, -0.15300633013248444, 0.1255258321762085),
         (2083.182373046875, -4912.1728515625, 1561.07861328125)),
        ((0.14943228662014008, -0.15650227665901184, 0.7681233882904053, -0.6026304364204407),
         (-1609.8153076171875, 5177.3359375, 1537.896728515625)),
        ((0.5894251465797424, -0.7818877100944519, 0.13991211354732513, -0.14715361595153809),
         (-1590.738037109375, -3854.1689453125, 1578.017578125)),
    ),
}

# HumanEva-I colour cameras: 640 x 480 pixels, extrinsics only (no published intrinsics).
# Source: VideoPose3D, common/humaneva_dataset.py.
_HUMANEVA_RESOLUTION = (640, 480)
_HUMANEVA_CAMERA_IDS = ("C1", "C2", "C3")
_HUMANEVA_EXTRINSICS: dict[str, tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]] = {
    "S1": (
        ((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.227, 663.2477, 1528.397)),
        ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
        ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.67377, 3916.3174, 1433.6602)),
    ),
    "S2": (
        ((0.4214752, -0.4961493, -0.5838273, 0.4851187), (4112.9121, 626.4929, 1545.2988)),
        ((0.6501393, -0.7476588, -0.0954617, 0.0959808), (923.5740, -3877.9243, 1504.5518)),
        ((0.0699353, -0.0712403, 0.7421637, -0.662742), (-781.4915, 3838.8853, 1444.9929)),
    ),
    "S3": (
        ((0.424207, -0.4983646, -0.5802981, 0.4847012), (4062.2271, 663.2477, 1528.3970)),
        ((0.6503354, -0.7481602, -0.0919284, 0.0941766), (844.8131, -3805.2092, 1504.9929)),
        ((0.0664734, -0.0690535, 0.7416416, -0.6639132), (-797.6738, 3916.3174, 1433.6602)),
    ),
}


def _h36m_rig() -> dict[str, tuple[Camera, ...]]:
    rig = {}
    for subject, extrinsics in _H36M_EXTRINSICS.items():
        cameras = []
        for (camera_id, (res_w, res_h, focal, center, radial, tangential)), (orientation, translation) in zip(
            _H36M_INTRINSICS.items(), extrinsics
        ):
            cameras.append(Camera(camera_id, res_w, res_h, orientation, translation, focal, center, radial, tangential))
        rig[subject] = tuple(cameras)
    return rig


def _humaneva_rig() -> dict[str, tuple[Camera, ...]]:
    res_w, res_h = _HUMANEVA_RESOLUTION
    return {
        subject: tuple(
            Camera(camera_id, res_w, res_h, orientation, translation)
            for camera_id, (orientation, translation) in zip(_HUMANEVA_CAMERA_IDS, extrinsics)
        )
        for subject, extrinsics in _HUMANEVA_EXTRINSICS.items()
    }


#: ``{rig: {subject: cameras}}``; cameras are in the published order (Human3.6M: 54138969 55011271 58860488
#: 60457274; HumanEva-I: C1 C2 C3).
CAMERA_RIGS: dict[str, dict[str, tuple[Camera, ...]]] = {"h36m": _h36m_rig(), "humaneva": _humaneva_rig()}


def get_cameras(rig: str, subject: str) -> tuple[Camera, ...]:
    """The cameras of ``subject`` in ``rig``, in the published order.

    A split prefix is ignored (``"Train/S1"`` and ``"Validate/S1"`` are both ``"S1"``, as HumanEva's files name
    them). An unknown rig or subject raises :class:`~crisscross.data.errors.DataError` listing the known ones.
    """
    if rig not in CAMERA_RIGS:
        raise DataError(f"unknown camera rig {rig!r}; rigs: {', '.join(CAMERA_RIGS)}")
    subjects = CAMERA_RIGS[rig]
    name = subject.rsplit("/", 1)[-1]
    if name not in subjects:
        raise DataError(f"camera rig {rig!r} has no subject {subject!r}; subjects: {', '.join(subjects)}")
    return subjects[name]


# --------------------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------------------


def _check_points(x: Tensor, size: int, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] != size:
        raise ValueError(f"{name} must have shape [..., {size}], got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Rotation matrices ``Tensor[..., 3, 3]`` of quaternions ``q: Tensor[..., 4]`` ordered ``(w, x, y, z)``.

    ``q`` is normalised first (so the result is orthonormal with determinant +1 for any non-zero ``q``); the
    matrix rotates column vectors the way the quaternion does: ``R @ v == q * v * conj(q)``.
    """
    _check_points(q, 4, "q")
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*q.shape[:-1], 3, 3)


def _extrinsics(camera: Camera, like: Tensor) -> tuple[Tensor, Tensor]:
    """The camera-to-world rotation ``[3, 3]`` and the camera centre ``[3]`` in ``like``'s dtype and device."""
    q = torch.tensor(camera.orientation, dtype=torch.float64, device=like.device)
    rotation = quaternion_to_matrix(q).to(like.dtype)
    centre = torch.tensor(camera.translation_mm, dtype=like.dtype, device=like.device)
    return rotation, centre


def world_to_camera(x_world_mm: Tensor, camera: Camera) -> Tensor:
    """World points ``Tensor[..., 3]`` (mm) in ``camera``'s frame ``Tensor[..., 3]`` (mm): ``R.T @ (x - t)``."""
    _check_points(x_world_mm, 3, "x_world_mm")
    rotation, centre = _extrinsics(camera, x_world_mm)
    return (x_world_mm - centre) @ rotation  # row vectors: (R.T @ v).T == v.T @ R


def camera_to_world(x_cam_mm: Tensor, camera: Camera) -> Tensor:
    """Camera-frame points ``Tensor[..., 3]`` (mm) in the world frame ``Tensor[..., 3]`` (mm): ``R @ x + t``."""
    _check_points(x_cam_mm, 3, "x_cam_mm")
    rotation, centre = _extrinsics(camera, x_cam_mm)
    return x_cam_mm @ rotation.T + centre


def project(x_cam: Tensor, camera: Camera) -> Tensor:
    """Pixels ``Tensor[..., 2]`` of camera-frame points ``x_cam: Tensor[..., 3]`` (any length unit), with distortion.

    VideoPose3D's model (``common/camera.py``, ``project_to_2d``): ``xx = clamp(x_cam[..., :2] / z, -1, 1)``,
    ``r2 = |xx|^2``, ``radial = 1 + k1 r2 + k2 r2^2 + k3 r2^3``, ``tan = p1 xx_x + p2 xx_y``,
    ``xxx = xx * (radial + tan) + (p1, p2) * r2``, ``pixels = focal * xxx + center``. Points must be in front of the
    camera (``z > 0``); others give meaningless pixels. Raises ``ValueError`` when the camera has no intrinsics.
    """
    _check_points(x_cam, 3, "x_cam")
    if not camera.has_intrinsics:
        raise ValueError(
            f"camera {camera.id!r} has no intrinsics (focal, center); fit them with fit_pinhole and "
            "dataclasses.replace"
        )

    def const(values: tuple[float, ...]) -> Tensor:
        return torch.tensor(values, dtype=x_cam.dtype, device=x_cam.device)

    k1, k2, k3 = camera.radial
    p = const(camera.tangential)
    xx = torch.clamp(x_cam[..., :2] / x_cam[..., 2:], -1.0, 1.0)
    r2 = (xx * xx).sum(-1, keepdim=True)
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    tangential = (xx * p).sum(-1, keepdim=True)
    distorted = xx * (radial + tangential) + p * r2
    return distorted * const(camera.focal) + const(camera.center)


def _screen_offset(px: Tensor, w: int, h: int) -> Tensor:
    if w <= 0 or h <= 0:
        raise ValueError(f"image size must be positive, got {w} x {h}")
    return torch.tensor((1.0, h / w), dtype=px.dtype, device=px.device)


def normalize_screen(px: Tensor, w: int, h: int) -> Tensor:
    """Pixels ``Tensor[..., 2]`` of a ``w`` x ``h`` image mapped so x spans [-1, 1] and the aspect is kept.

    ``px / w * 2 - (1, h / w)``: the image centre goes to 0, y spans ``[-h / w, h / w]``.
    """
    _check_points(px, 2, "px")
    return px / w * 2 - _screen_offset(px, w, h)


def image_coordinates(norm: Tensor, w: int, h: int) -> Tensor:
    """The inverse of :func:`normalize_screen`: ``Tensor[..., 2]`` normalised coordinates back to pixels."""
    _check_points(norm, 2, "norm")
    return (norm + _screen_offset(norm, w, h)) * w / 2


def fit_pinhole(x_cam: Tensor, pixels: Tensor) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Least-squares pinhole intrinsics (no distortion) from correspondences.

    ``x_cam: Tensor[N, 3]`` camera-frame points (in front of the camera) and ``pixels: Tensor[N, 2]`` their image
    points (leading dimensions other than ``N`` are flattened). Fits ``u = fx * x / z + cx`` and
    ``v = fy * y / z + cy`` independently in float64. Returns ``((fx, fy), (cx, cy), rms_px)``, where ``rms_px`` is
    the root mean square of the 2D reprojection error in pixels.
    """
    _check_points(x_cam, 3, "x_cam")
    _check_points(pixels, 2, "pixels")
    if x_cam.shape[:-1] != pixels.shape[:-1]:
        raise ValueError(f"x_cam {tuple(x_cam.shape)} and pixels {tuple(pixels.shape)} must have the same points")
    points = x_cam.detach().reshape(-1, 3).to(torch.float64)
    image = pixels.detach().reshape(-1, 2).to(torch.float64)
    if points.shape[0] < 2:
        raise ValueError(f"fit_pinhole needs at least 2 correspondences, got {points.shape[0]}")
    if not (bool(torch.isfinite(points).all()) and bool(torch.isfinite(image).all())):
        raise ValueError("fit_pinhole: x_cam and pixels must be finite")
    if bool((points[:, 2] <= 0).any()):
        raise ValueError("fit_pinhole: every point must be in front of the camera (z > 0)")
    ratios = points[:, :2] / points[:, 2:]
    ratio_mean = ratios.mean(0)
    image_mean = image.mean(0)
    centred = ratios - ratio_mean
    variance = (centred * centred).sum(0)
    if bool((variance <= 1e-12 * points.shape[0]).any()):
        raise ValueError("fit_pinhole: the points must spread in both image directions (x / z and y / z vary)")
    focal = (centred * (image - image_mean)).sum(0) / variance
    center = image_mean - focal * ratio_mean
    residual = ratios * focal + center - image
    rms = float((residual * residual).sum(-1).mean().sqrt())
    fx, fy = (float(v) for v in focal)
    cx, cy = (float(v) for v in center)
    return (fx, fy), (cx, cy), rms
