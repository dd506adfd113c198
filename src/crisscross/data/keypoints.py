"""2D keypoints from common pose detectors, and joint maps to the layouts crisscross lifters use.

:func:`read_keypoints` reads one detector output into a :class:`Keypoints2D` (pixels, x right, y down, one person
per frame); :func:`map_keypoints` turns it into the ``h36m17`` or ``humaneva15`` joints a lifter takes, filling
low-confidence points over time. ``docs/keypoints.md`` describes the same with examples.

Formats, detected from the file (a folder is OpenPose output):

* ``mmpose``: a JSON list of ``{"frame_id", "instances": [{"keypoints": [[x, y]] * K, "keypoint_scores": [K],
  "bbox", "bbox_score"}]}`` (``MMPoseInferencer(..., pred_out_dir=...)`` on a video), the same list under
  ``{"meta_info": {...}, "instance_info": [...]}`` (``demo/topdown_demo_with_mmdet.py --save-predictions``), or a
  plain list of instances (one image). ``meta_info.dataset_name == "h36m"`` means the Human3.6M 17-joint order.
* ``coco-results``: a JSON list of COCO keypoint results ``{"image_id", "category_id": 1, "keypoints": [x, y, c] * K,
  "score"}`` (AlphaPose ``alphapose-results.json``, Detectron2 ``coco_instances_results.json``). Detections are
  grouped by ``image_id``; its number (an int, or the last number in a name such as ``"12.jpg"``) is the frame
  number. Only frames with a detection are listed, so a frame without anyone is a gap in ``frame_ids``.
* ``openpose``: a folder of per-frame ``*_keypoints.json`` (sorted by name; the frame number is the number before
  ``_keypoints.json``, 12 digits in video output) or one such file: ``{"people": [{"pose_keypoints_2d":
  [x, y, c] * 25, ...}]}``. A point with ``c == 0`` is missing. Only BODY_25 is read (COCO-18 output is refused).
* ``mediapipe``: a JSON list of frames, or ``{"frames": [...], "image_width", "image_height", "fps"}``; a frame is a
  list of 33 landmarks ``{"x", "y", "z", "visibility"[, "presence"]}``, ``{"pose_landmarks": [[33], ...]}`` (the
  Tasks API's ``PoseLandmarkerResult``, one list per person) or ``{"landmark": [33]}`` (the legacy
  ``results.pose_landmarks``); an empty frame has nobody. ``x``/``y`` are normalised by the image width/height, so
  the image size (from the file or the caller) is required. The score is ``visibility``.
* ``npz``: a ``.npz`` with ``keypoints`` (or its only array) of shape ``[T, K, 2]`` or ``[T, K, 3]`` (third channel
  = score, as YOLO pose's ``results.keypoints.data`` stacked over frames), optional ``scores [T, K]`` (wins over
  the third channel), ``image_size`` (w, h) or ``width``/``height``, ``fps``, ``layout``; or a ``.npy`` holding the
  array alone. Frames are numbered 0..T-1; a frame whose scores are all 0 has nobody. Pickled arrays are refused.

The layout follows from the number of keypoints K when neither the caller nor the file names it: 17 ``coco17``,
25 ``body25``, 33 ``mediapipe33``, 15 ``humaneva15``; 26 (Halpe, AlphaPose / RTMPose body8-halpe26) and 133
(COCO-WholeBody) start with the 17 COCO joints, so they read as ``coco17`` with their first 17 joints.

Choices every reader makes:

* One person per frame: the instance with the highest mean keypoint score (over the layout's joints); ties go to
  the first listed. There is no tracking across frames.
* A frame without a person keeps its place with points 0 and scores 0; :func:`map_keypoints` fills it.
* Scores are clipped to [0, 1] (heatmap and SimCC decoders can report slightly more than 1); a format without
  scores gets 1.0. Non-finite coordinates or scores are refused, naming the frame and joint.

Joint maps (:data:`JOINT_MAPS`): every target joint is an affine combination (weights summing to 1) of source
joints, so translating the 2D input translates the output and a left/right mirror commutes with the map:

==========================  ===============  =====================================================================
h36m17                      humaneva15       from the source (COCO-17 / MediaPipe-33 names; BODY_25 the same joints)
==========================  ===============  =====================================================================
Hips                        Pelvis           0.5 left_hip + 0.5 right_hip
RightHip ... RightAnkle     RightHip ...     right_hip, right_knee, right_ankle (same-named joint)
LeftHip ... LeftAnkle       LeftHip ...      left_hip, left_knee, left_ankle
Spine                       (none)           0.5 Hips + 0.5 Thorax = 0.25 of each hip and each shoulder
Thorax                      Thorax           0.5 left_shoulder + 0.5 right_shoulder
Neck (Neck/Nose)            (none)           nose
Head (head top)             Head             1.95 nose - 0.475 left_shoulder - 0.475 right_shoulder
Left/Right Shoulder, ...    same             the same-named shoulder, elbow, wrist
==========================  ===============  =====================================================================

Why: the Human3.6M pelvis lies between the hip joints, and BODY_25's own ``MidHip`` (and ``Neck``, its estimate of
the shoulder midpoint) is ignored so that every detector gives the same pelvis and thorax from the same joints.
Human3.6M's Spine sits about halfway up the trunk (233 mm of the 491 mm from the pelvis to the thorax in the
Martinez offsets). VideoPose3D's joint 9 ("Neck/Nose") is at the nose. No detector here gives the head top, so it
is extrapolated along Thorax -> nose: ``Head = nose + 0.95 (nose - Thorax)``, because Human3.6M's Neck/Nose ->
HeadTop bone is 0.95 of its Thorax -> Neck/Nose bone (115.0 mm / 121.1 mm, joints 14 -> 15 and 13 -> 14 of the
32-joint skeleton); it assumes the head continues the trunk-to-nose direction, an approximation for a bent head.
HumanEva's head marker is near the top of the head, so its ``Head`` uses the same rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crisscross.data.errors import NUMPY_FILE_ERRORS, DataError, one_line_error
from crisscross.data.skeleton import H36M_17_SKELETON, HUMANEVA_15_SKELETON

__all__ = [
    "JOINT_MAPS",
    "KEYPOINT_LAYOUTS",
    "KeypointError",
    "Keypoints2D",
    "map_keypoints",
    "read_keypoints",
]


class KeypointError(DataError):
    """A keypoint file or argument is unusable; the one-line message names the file and what was expected."""


_COCO_17: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
)
_MEDIAPIPE_33: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
_BODY_25: tuple[str, ...] = (
    "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip", "RKnee",
    "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe", "LHeel", "RBigToe",
    "RSmallToe", "RHeel",
)

#: Joint names of every layout, in the order of the keypoint arrays.
KEYPOINT_LAYOUTS: dict[str, tuple[str, ...]] = {
    "coco17": _COCO_17,
    "mediapipe33": _MEDIAPIPE_33,
    "body25": _BODY_25,
    "h36m17": H36M_17_SKELETON.joint_names,
    "humaneva15": HUMANEVA_15_SKELETON.joint_names,
}

# Layout guessed from the keypoint count K when neither the caller nor the file names one.
_LAYOUT_BY_COUNT = {17: "coco17", 25: "body25", 33: "mediapipe33", 15: "humaneva15"}
# Detector layouts whose first joints are a known layout: Halpe-26 and COCO-WholeBody-133 start with COCO-17.
_PREFIXED_COUNTS = {26: "coco17", 133: "coco17"}

# Head top = nose + _HEAD_TOP_EXTENSION * (nose - thorax): Human3.6M's Neck/Nose -> HeadTop bone over its
# Thorax -> Neck/Nose bone (115.0 mm / 121.1 mm in the Martinez offsets), rounded.
_HEAD_TOP_EXTENSION = 0.95

# The source joint playing each role in the recipes below; COCO-17 and MediaPipe-33 use the role names themselves.
_ROLES = ("nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
          "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")
_SOURCE_ROLES: dict[str, dict[str, str]] = {
    "coco17": {role: role for role in _ROLES},
    "mediapipe33": {role: role for role in _ROLES},
    "body25": {"nose": "Nose", "left_shoulder": "LShoulder", "right_shoulder": "RShoulder", "left_elbow": "LElbow",
               "right_elbow": "RElbow", "left_wrist": "LWrist", "right_wrist": "RWrist", "left_hip": "LHip",
               "right_hip": "RHip", "left_knee": "LKnee", "right_knee": "RKnee", "left_ankle": "LAnkle",
               "right_ankle": "RAnkle"},
}

_Recipe = tuple[tuple[str, float], ...]
_PELVIS: _Recipe = (("left_hip", 0.5), ("right_hip", 0.5))
_THORAX: _Recipe = (("left_shoulder", 0.5), ("right_shoulder", 0.5))
# Midpoint of pelvis and thorax.
_SPINE: _Recipe = (("left_hip", 0.25), ("right_hip", 0.25), ("left_shoulder", 0.25), ("right_shoulder", 0.25))
# nose + 0.95 (nose - thorax): weights 1 + 0.95 on the nose and -0.95 / 2 on each shoulder.
_HEAD_TOP: _Recipe = (("nose", 1.0 + _HEAD_TOP_EXTENSION), ("left_shoulder", -_HEAD_TOP_EXTENSION / 2),
                      ("right_shoulder", -_HEAD_TOP_EXTENSION / 2))
_LIMBS: dict[str, _Recipe] = {
    f"{side.capitalize()}{part}": ((f"{side}_{role}", 1.0),)
    for side in ("left", "right")
    for part, role in (("Hip", "hip"), ("Knee", "knee"), ("Ankle", "ankle"), ("Shoulder", "shoulder"),
                       ("Elbow", "elbow"), ("Wrist", "wrist"))
}
_TARGET_RECIPES: dict[str, dict[str, _Recipe]] = {
    "h36m17": {**_LIMBS, "Hips": _PELVIS, "Spine": _SPINE, "Thorax": _THORAX, "Neck": (("nose", 1.0),),
               "Head": _HEAD_TOP},
    "humaneva15": {**_LIMBS, "Pelvis": _PELVIS, "Thorax": _THORAX, "Head": _HEAD_TOP},
}


def _joint_map(source: str, target: str) -> tuple[tuple[tuple[str, float], ...], ...]:
    roles, recipes = _SOURCE_ROLES[source], _TARGET_RECIPES[target]
    return tuple(tuple((roles[role], weight) for role, weight in recipes[joint]) for joint in KEYPOINT_LAYOUTS[target])


#: For each (source layout, target layout) and each target joint in order, the (source joint, weight) pairs whose
#: weighted sum gives it; the weights of a joint sum to 1 (affine maps). See the module docstring for the table.
JOINT_MAPS: dict[tuple[str, str], tuple[tuple[tuple[str, float], ...], ...]] = {
    (source, target): _joint_map(source, target) for source in _SOURCE_ROLES for target in _TARGET_RECIPES
}


@dataclass(frozen=True)
class Keypoints2D:
    """One person's 2D keypoints over the frames of one detector output.

    Attributes:
        path: the file (or OpenPose folder) read.
        layout: a key of :data:`KEYPOINT_LAYOUTS`.
        points: Array[T, K, 2] float64 pixels, x right, y down; 0 where nobody was found.
        scores: Array[T, K] float64 confidence in [0, 1]: 1.0 where the format has none, 0 in a frame without a
            person.
        frame_ids: Array[T] int64, the source's frame numbers, strictly increasing.
        image_size: (width, height) in pixels when the file or the caller gives it.
        fps: frame rate when the file or the caller gives it.
        source_format: ``"mmpose"``, ``"coco-results"``, ``"openpose"``, ``"mediapipe"`` or ``"npz"``.
    """

    path: Path
    layout: str
    points: np.ndarray
    scores: np.ndarray
    frame_ids: np.ndarray
    image_size: tuple[int, int] | None
    fps: float | None
    source_format: str


# ---------------------------------------------------------------------------------------------------------------------
# Parsing: every reader produces frames of candidate people, then one assembly step picks people and builds arrays.


@dataclass
class _Frame:
    """One source frame: its number, the file it came from (for messages) and its people as ([K, 2], [K]) arrays."""

    frame_id: int
    path: Path
    people: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass
class _Parsed:
    """What a reader found before the layout, person choice and caller overrides are applied."""

    source_format: str
    frames: list[_Frame]
    layout_hint: str | None = None
    image_size: Any = None
    fps: Any = None
    normalized: bool = False  # MediaPipe: x / width, y / height


def _fail(path: Path, message: str) -> KeypointError:
    return KeypointError(f"{path}: {message}")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` on one line, cut to ``limit`` characters: file contents quoted in messages may be huge or
    hold line breaks (keys of a JSON object, the repr of an array)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


# Frame numbers are stored as int64.
_MAX_FRAME = 2**63 - 1


def _float_array(path: Path, value: Any, where: str, what: str) -> np.ndarray:
    """``value`` as a float64 array, or a KeypointError saying ``where`` should hold ``what``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond the float range
        raise _fail(path, f"{where}: expected {what}") from None
    return array


def _frame_number(path: Path, value: Any, where: str) -> int:
    """An int frame number, or the last number in a name such as ``"12.jpg"``."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        numbers = re.findall(r"\d+", Path(value).stem) or re.findall(r"\d+", value)
        if numbers and len(numbers[-1]) <= 19:  # int() refuses over 4300 digits; int64 holds 19
            number = int(numbers[-1])
    if number is None or abs(number) > _MAX_FRAME:
        raise _fail(path, f"{where}: expected a frame number or an image name with a number, got {_short(value)}")
    return number


def _load_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise _fail(path, f"cannot read ({one_line_error(err)})") from None
    if not text.strip():
        raise _fail(path, "empty file (expected JSON keypoints from MMPose, AlphaPose/Detectron2, OpenPose or "
                          "MediaPipe)")
    try:
        return json.loads(text)
    except ValueError as err:
        raise _fail(path, f"not valid JSON ({one_line_error(err)})") from None
    except RecursionError:  # the decoder recurses once per nesting level
        raise _fail(path, "not valid keypoint JSON (nested too deeply)") from None


def _mmpose_instance(path: Path, instance: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(instance, dict) or "keypoints" not in instance or "keypoint_scores" not in instance:
        raise _fail(path, f"{where}: expected an instance with 'keypoints' and 'keypoint_scores'")
    points = _float_array(path, instance["keypoints"], where, "'keypoints' as K [x, y] pairs")
    scores = _float_array(path, instance["keypoint_scores"], where, "'keypoint_scores' as K numbers")
    if points.ndim != 2 or points.shape[1] != 2:
        raise _fail(path, f"{where}: expected 'keypoints' as K [x, y] pairs, got shape {points.shape}")
    if scores.shape != (points.shape[0],):
        raise _fail(path, f"{where}: expected {points.shape[0]} 'keypoint_scores', got shape {scores.shape}")
    return points, scores


def _parse_mmpose(path: Path, data: Any) -> _Parsed:
    hint = None
    if isinstance(data, dict):  # topdown_demo_with_mmdet.py --save-predictions
        meta = data.get("meta_info") or {}
        if isinstance(meta, dict) and str(meta.get("dataset_name", "")).lower() == "h36m":
            hint = "h36m17"
        data = data["instance_info"]
    if not isinstance(data, list):
        raise _fail(path, "'instance_info' must be a list of frames {'frame_id', 'instances'}")
    if data and isinstance(data[0], dict) and "keypoints" in data[0]:  # one image: a plain list of instances
        data = [{"frame_id": 0, "instances": data}]
    frames = []
    for entry, item in enumerate(data):
        if not isinstance(item, dict) or "instances" not in item:
            raise _fail(path, f"frame entry {entry}: expected an object with 'frame_id' and 'instances'")
        frame_id = _frame_number(path, item.get("frame_id", entry), f"frame entry {entry}, 'frame_id'")
        instances = item["instances"] or []
        if not isinstance(instances, list):
            raise _fail(path, f"frame {frame_id}: 'instances' must be a list")
        people = [_mmpose_instance(path, inst, f"frame {frame_id}, instance {n}") for n, inst in enumerate(instances)]
        frames.append(_Frame(frame_id, path, people))
    return _Parsed("mmpose", frames, layout_hint=hint)


def _flat_triplets(path: Path, value: Any, where: str, field_name: str) -> tuple[np.ndarray, np.ndarray]:
    """``[x, y, c] * K`` flat -> (points [K, 2], scores [K])."""
    flat = _float_array(path, value, where, f"'{field_name}' as [x, y, c] * K numbers")
    if flat.ndim != 1 or flat.size % 3:
        raise _fail(path, f"{where}: expected '{field_name}' as [x, y, c] * K numbers, got {flat.size} values")
    triplets = flat.reshape(-1, 3)
    return triplets[:, :2], triplets[:, 2]


def _parse_coco_results(path: Path, data: list) -> _Parsed:
    frames: dict[int, _Frame] = {}
    for entry, detection in enumerate(data):
        where = f"detection {entry}"
        if not isinstance(detection, dict) or "image_id" not in detection or "keypoints" not in detection:
            raise _fail(path, f"{where}: expected an object with 'image_id' and 'keypoints'")
        if detection.get("category_id", 1) != 1:  # 1 is COCO's person; other categories carry no body keypoints
            continue
        frame_id = _frame_number(path, detection["image_id"], f"{where}, 'image_id'")
        frame = frames.setdefault(frame_id, _Frame(frame_id, path))
        frame.people.append(_flat_triplets(path, detection["keypoints"], f"{where} (frame {frame_id})", "keypoints"))
    return _Parsed("coco-results", list(frames.values()))


_OPENPOSE_NUMBER = re.compile(r"(\d+)_keypoints\.json$")


def _openpose_frame(path: Path, data: Any, frame_id: int) -> _Frame:
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise _fail(path, "expected an OpenPose object with a 'people' list")
    frame = _Frame(frame_id, path)
    for n, person in enumerate(data["people"]):
        if not isinstance(person, dict):
            raise _fail(path, f"person {n}: expected an object with 'pose_keypoints_2d'")
        values = person.get("pose_keypoints_2d") or []
        if not isinstance(values, list):
            raise _fail(path, f"person {n}: expected 'pose_keypoints_2d' as [x, y, c] * 25 numbers, got "
                              f"{_short(values)}")
        if len(values) == 0:  # a person found only by the face or hand detector
            continue
        points, scores = _flat_triplets(path, values, f"person {n}", "pose_keypoints_2d")
        if len(points) == 18:
            raise _fail(path, "18 pose keypoints per person is OpenPose's COCO-18 model, which is not supported; "
                              "rerun OpenPose with --model_pose BODY_25 (its default)")
        frame.people.append((points, scores))
    return frame


def _openpose_number(path: Path, position: int) -> int:
    match = _OPENPOSE_NUMBER.search(path.name)
    return int(match.group(1)) if match else position


def _parse_openpose_folder(folder: Path) -> _Parsed:
    files = sorted(p for p in folder.iterdir() if p.name.endswith("_keypoints.json") and p.is_file())
    if not files:
        raise _fail(folder, "no OpenPose *_keypoints.json files in this folder (expected the --write_json output)")
    # Frame numbers come from the names; a folder where some names carry none is numbered by sorted position.
    numbered = all(_OPENPOSE_NUMBER.search(p.name) for p in files)
    frames = [_openpose_frame(p, _load_json(p), _openpose_number(p, i) if numbered else i)
              for i, p in enumerate(files)]
    return _Parsed("openpose", frames, layout_hint="body25")


def _landmarks(path: Path, value: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(value, list) or not all(isinstance(lm, dict) and "x" in lm and "y" in lm for lm in value):
        raise _fail(path, f"{where}: expected a list of landmarks {{'x', 'y', 'z', 'visibility'}}")
    points = _float_array(path, [[lm["x"], lm["y"]] for lm in value], where, "numeric landmark 'x' and 'y'")
    scores = _float_array(path, [lm.get("visibility", 1.0) for lm in value], where, "numeric 'visibility'")
    if points.shape != (len(value), 2) or scores.shape != (len(value),):  # e.g. an 'x' that is a list
        raise _fail(path, f"{where}: expected one number per landmark 'x', 'y' and 'visibility'")
    return points, scores


def _mediapipe_people(path: Path, item: Any, where: str) -> list[tuple[np.ndarray, np.ndarray]]:
    if item is None or item == [] or item == {}:
        return []
    if isinstance(item, list):  # one person's landmarks
        return [_landmarks(path, item, where)]
    if isinstance(item, dict) and "landmark" in item:  # legacy results.pose_landmarks
        return [_landmarks(path, item["landmark"], where)] if item["landmark"] else []
    if isinstance(item, dict) and "pose_landmarks" in item:  # Tasks API PoseLandmarkerResult: one list per person
        people = item["pose_landmarks"]
        if isinstance(people, dict):  # a serialised legacy landmark list under the Tasks key
            return _mediapipe_people(path, people, where)
        if not people:
            return []
        if not isinstance(people, list):
            raise _fail(path, f"{where}: 'pose_landmarks' must be a list of per-person landmark lists")
        if isinstance(people[0], dict):  # a single person written without the outer list
            return [_landmarks(path, people, where)]
        return [_landmarks(path, person, f"{where}, person {n}") for n, person in enumerate(people) if person]
    raise _fail(path, f"{where}: expected a list of 33 landmarks, {{'pose_landmarks': [...]}} or {{'landmark': [...]}}")


def _parse_mediapipe(path: Path, data: Any) -> _Parsed:
    image_size = fps = None
    if isinstance(data, dict):
        width, height = data.get("image_width"), data.get("image_height")
        image_size = (width, height) if width is not None and height is not None else None
        fps = data.get("fps")
        data = data["frames"]
    if not isinstance(data, list):
        raise _fail(path, "'frames' must be a list of frames")
    frames = []
    for entry, item in enumerate(data):
        frame_id = entry
        if isinstance(item, dict) and "frame_id" in item:
            frame_id = _frame_number(path, item["frame_id"], f"frame entry {entry}, 'frame_id'")
        frames.append(_Frame(frame_id, path, _mediapipe_people(path, item, f"frame {frame_id}")))
    return _Parsed("mediapipe", frames, layout_hint="mediapipe33", image_size=image_size, fps=fps, normalized=True)


def _parse_json(path: Path) -> _Parsed:
    data = _load_json(path)
    if isinstance(data, dict):
        if "instance_info" in data:
            return _parse_mmpose(path, data)
        if "people" in data:
            return _Parsed("openpose", [_openpose_frame(path, data, _openpose_number(path, 0))], layout_hint="body25")
        if "frames" in data:
            return _parse_mediapipe(path, data)
        raise _fail(path, f"unknown keypoint JSON (top-level keys: {_short(list(data), 120) if data else 'none'}); "
                          "expected MMPose, COCO results, OpenPose or MediaPipe output")
    if not isinstance(data, list):
        raise _fail(path, "unknown keypoint JSON; expected a list of frames or detections")
    if not data:
        raise _fail(path, "no frames (the JSON list is empty)")
    first = next((item for item in data if item), None)
    if first is None or isinstance(first, list):
        return _parse_mediapipe(path, data)
    if isinstance(first, dict):
        if "instances" in first or ("keypoints" in first and "keypoint_scores" in first):
            return _parse_mmpose(path, data)
        if "image_id" in first:
            return _parse_coco_results(path, data)
        if "pose_landmarks" in first or "landmark" in first:
            return _parse_mediapipe(path, data)
    raise _fail(path, "unknown keypoint JSON list; expected MMPose frames, COCO results, or MediaPipe frames")


def _parse_arrays(path: Path) -> _Parsed:
    meta: dict[str, Any] = {}
    scores = None
    try:
        loaded = np.load(path, allow_pickle=False)
        if path.suffix.lower() == ".npy":
            if not isinstance(loaded, np.ndarray):
                loaded.close()
                raise _fail(path, "an npz archive, not a .npy array (name it .npz)")
            array = loaded
        elif not isinstance(loaded, np.lib.npyio.NpzFile):
            raise _fail(path, "not an npz archive (a single .npy array? name it .npy)")
        else:
            with loaded as stored:
                names = list(stored.files)
                if "keypoints" in names:
                    array = stored["keypoints"]
                elif len(names) == 1:
                    array = stored[names[0]]
                else:
                    raise _fail(path, f"no 'keypoints' array (keys: {_short(names, 120) if names else 'none'})")
                scores = stored["scores"] if "scores" in names else None
                for key in ("image_size", "width", "height", "fps", "layout"):
                    if key in names:
                        meta[key] = stored[key]
    except KeypointError:
        raise
    except NUMPY_FILE_ERRORS as err:
        if "pickle" in str(err):
            raise _fail(path, "holds pickled (object) data, which is never loaded; store numeric arrays") from None
        raise _fail(path, f"cannot read ({one_line_error(err)})") from None
    if not np.issubdtype(array.dtype, np.number) or array.ndim != 3 or array.shape[2] not in (2, 3):
        raise _fail(path, f"'keypoints' must be numbers of shape [T, K, 2] or [T, K, 3], got {array.dtype} "
                          f"{array.shape}")
    array = array.astype(np.float64)
    if scores is None:
        scores = array[:, :, 2] if array.shape[2] == 3 else np.ones(array.shape[:2])
    elif not np.issubdtype(scores.dtype, np.number) or scores.shape != array.shape[:2]:
        raise _fail(path, f"'scores' must be numbers of shape {list(array.shape[:2])}, got {scores.dtype} "
                          f"{scores.shape}")
    scores = np.asarray(scores, dtype=np.float64)
    hint = None
    if "layout" in meta:
        hint = str(np.ravel(meta["layout"])[0]) if meta["layout"].size == 1 else None
        if hint not in KEYPOINT_LAYOUTS:
            raise _fail(path, f"'layout' must be one of {', '.join(KEYPOINT_LAYOUTS)}, got "
                              f"{_short(np.ravel(meta['layout']).tolist())}")
    for key in ("width", "height", "fps"):
        if key in meta and meta[key].size != 1:  # _image_size and _fps check the value itself
            raise _fail(path, f"'{key}' must be one number, got an array of shape {meta[key].shape}")
    image_size = None
    if "image_size" in meta:
        image_size = tuple(np.ravel(meta["image_size"]).tolist())
    elif "width" in meta and "height" in meta:
        image_size = (np.ravel(meta["width"])[0].item(), np.ravel(meta["height"])[0].item())
    fps = np.ravel(meta["fps"])[0].item() if "fps" in meta else None
    frames = [_Frame(t, path, [(array[t, :, :2], scores[t])]) for t in range(array.shape[0])]
    return _Parsed("npz", frames, layout_hint=hint, image_size=image_size, fps=fps)


# ---------------------------------------------------------------------------------------------------------------------
# Assembly


def _resolve_layout(path: Path, count: int, requested: str | None, hint: str | None) -> tuple[str, int]:
    """The layout of ``count`` keypoints per person and how many leading keypoints it keeps."""
    layout = requested or hint or _LAYOUT_BY_COUNT.get(count) or _PREFIXED_COUNTS.get(count)
    if layout is None:
        raise _fail(path, f"{count} keypoints per person fit no known layout (17 coco17, 25 body25, 33 mediapipe33, "
                          "15 humaneva15, 26 Halpe or 133 COCO-WholeBody as coco17); pass layout=")
    size = len(KEYPOINT_LAYOUTS[layout])
    if count != size and _PREFIXED_COUNTS.get(count) != layout:
        raise _fail(path, f"{count} keypoints per person do not fit layout {layout!r}, which has {size} joints")
    return layout, size


def _check_person(frame: _Frame, person: int, points: np.ndarray, scores: np.ndarray, names: tuple[str, ...]) -> None:
    for values, what in ((points, "coordinate"), (scores, "score")):
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            joint = int(bad[0][0])
            raise _fail(frame.path, f"frame {frame.frame_id}, person {person}, joint {joint} ({names[joint]}): "
                                    f"non-finite {what}; expected finite numbers (a missing point is 0 with score 0)")


def _assemble(path: Path, parsed: _Parsed, requested: str | None) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """Pick one person per frame -> (layout, points [T, K, 2], scores [T, K], frame_ids [T])."""
    if not parsed.frames:
        raise _fail(path, "no frames")
    counts = {len(points) for frame in parsed.frames for points, _ in frame.people}
    if len(counts) > 1:
        raise _fail(path, f"people with different keypoint counts {sorted(counts)}; expected one count per file")
    count = counts.pop() if counts else len(KEYPOINT_LAYOUTS[requested or parsed.layout_hint or "coco17"])
    layout, size = _resolve_layout(path, count, requested, parsed.layout_hint)
    names = KEYPOINT_LAYOUTS[layout]
    frames = sorted(parsed.frames, key=lambda f: f.frame_id)
    points = np.zeros((len(frames), size, 2))
    scores = np.zeros((len(frames), size))
    for t, frame in enumerate(frames):
        if t and frame.frame_id == frames[t - 1].frame_id:
            raise _fail(frame.path, f"frame {frame.frame_id} appears twice; expected one entry per frame number")
        people = [(p[:size], s[:size]) for p, s in frame.people]
        for n, (p, s) in enumerate(people):
            _check_person(frame, n, p, s, names)
        if people:
            best = max(range(len(people)), key=lambda n: float(people[n][1].mean()))  # first of equals wins
            points[t], scores[t] = people[best]
    frame_ids = np.array([f.frame_id for f in frames], dtype=np.int64)
    return layout, points, np.clip(scores, 0.0, 1.0), frame_ids


def _image_size(path: Path, value: Any, origin: str) -> tuple[int, int]:
    try:
        width, height = (float(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise _fail(path, f"{origin} image size must be (width, height) in pixels, got {_short(value)}") from None
    if not (width > 0 and height > 0 and width.is_integer() and height.is_integer()):
        raise _fail(path, f"{origin} image size must be positive whole pixels (width, height), got {_short(value)}")
    return int(width), int(height)


def _fps(path: Path, value: Any, origin: str) -> float:
    try:
        fps = float(value)
    except (TypeError, ValueError, OverflowError):
        raise _fail(path, f"{origin} fps must be a number, got {_short(value)}") from None
    if not np.isfinite(fps) or fps <= 0:
        raise _fail(path, f"{origin} fps must be positive, got {_short(value)}")
    return fps


def read_keypoints(path: str | Path, *, layout: str | None = None, image_size: tuple[int, int] | None = None,
                   fps: float | None = None) -> Keypoints2D:
    """Read one detector output (format detected from the file, or an OpenPose folder) as one person per frame.

    Args:
        path: a ``.json`` (MMPose, COCO results, OpenPose, MediaPipe), ``.npz``/``.npy`` file, or a folder of
            OpenPose ``*_keypoints.json`` files.
        layout: joint layout of the file (a key of :data:`KEYPOINT_LAYOUTS`), overriding the file's and the one
            guessed from the keypoint count, e.g. ``"h36m17"`` for 17 joints already in Human3.6M order.
        image_size: (width, height) in pixels, overriding the file's; required for MediaPipe without one.
        fps: frame rate, overriding the file's.

    Returns:
        :class:`Keypoints2D` with points [T, K, 2] in pixels and scores [T, K]; the person of a frame is the one with
        the highest mean keypoint score, and a frame without anybody has points 0 and scores 0.

    Raises:
        KeypointError: unknown or unreadable file, zero frames, a keypoint count that fits no (or not the given)
            layout, non-finite coordinates (naming frame and joint), MediaPipe without an image size.
    """
    path = Path(path).expanduser()
    if layout is not None and layout not in KEYPOINT_LAYOUTS:
        raise _fail(path, f"unknown layout {layout!r}; layouts: {', '.join(KEYPOINT_LAYOUTS)}")
    if path.is_dir():
        parsed = _parse_openpose_folder(path)
    elif not path.is_file():
        raise _fail(path, "no such file or folder")
    elif path.suffix.lower() not in (".json", ".npz", ".npy"):
        raise _fail(path, f"unknown keypoint file type {path.suffix or '(no suffix)'!r}; expected .json, .npz, .npy "
                          "or an OpenPose folder")
    elif path.stat().st_size == 0:
        raise _fail(path, "empty file (expected keypoints: JSON from a pose detector, or .npz/.npy arrays)")
    elif path.suffix.lower() == ".json":
        parsed = _parse_json(path)
    else:
        parsed = _parse_arrays(path)
    found_layout, points, scores, frame_ids = _assemble(path, parsed, layout)
    size = (_image_size(path, image_size, "the given") if image_size is not None
            else _image_size(path, parsed.image_size, "the file's") if parsed.image_size is not None else None)
    rate = (_fps(path, fps, "the given") if fps is not None
            else _fps(path, parsed.fps, "the file's") if parsed.fps is not None else None)
    if parsed.normalized:
        if size is None:
            raise _fail(path, "MediaPipe landmarks are normalised to [0, 1]; pass the image size (width x height) "
                              "in pixels, e.g. image_size=(1920, 1080), or store image_width/image_height in the file")
        points = points * np.array(size, dtype=np.float64)
    return Keypoints2D(path=path, layout=found_layout, points=points, scores=scores, frame_ids=frame_ids,
                       image_size=size, fps=rate, source_format=parsed.source_format)


# ---------------------------------------------------------------------------------------------------------------------
# Mapping


def _weights(kp: Keypoints2D, target: str) -> np.ndarray:
    """Array[J_target, K_source] of the affine weights taking ``kp.layout`` to ``target``."""
    source_names = KEYPOINT_LAYOUTS[kp.layout]
    if kp.layout == target:
        return np.eye(len(source_names))
    recipe = JOINT_MAPS.get((kp.layout, target))
    if recipe is None:
        sources = sorted({s for s, t in JOINT_MAPS if t == target})
        raise _fail(kp.path, f"no joint map from {kp.layout!r} to {target!r}; maps exist from {', '.join(sources)}")
    index = {name: k for k, name in enumerate(source_names)}
    weights = np.zeros((len(recipe), len(source_names)))
    for j, parts in enumerate(recipe):
        for name, weight in parts:
            weights[j, index[name]] += weight
    return weights


def map_keypoints(kp: Keypoints2D, target: str, *, min_score: float = 0.3) -> tuple[np.ndarray, np.ndarray, dict]:
    """Map keypoints to a lifter's layout and fill low-confidence points over time.

    Each target joint is the :data:`JOINT_MAPS` weighted sum of its source joints, and its score the minimum of its
    sources' scores. Where that score is below ``min_score`` (low confidence, or no person in the frame) the joint is
    linearly interpolated over the frame numbers between the frames where it is confident, and held at the nearest
    confident frame before the first or after the last. The returned scores are not raised by filling, so
    ``scores < min_score`` marks the filled points.

    Args:
        kp: keypoints from :func:`read_keypoints` (or built by hand).
        target: ``"h36m17"`` or ``"humaneva15"``; ``kp.layout`` itself gives the identity map.
        min_score: confidence below which a point is filled, in (0, 1].

    Returns:
        (points Array[T, J, 2] pixels, scores Array[T, J], report) with report ``{"filled_points": int,
        "frames_without_person": int, "joint_map": "<source>-><target>"}``.

    Raises:
        KeypointError: unknown target or no map from ``kp.layout``, inconsistent arrays, or a target joint that is
            never confident (named).
    """
    if target not in _TARGET_RECIPES and target != kp.layout:
        raise _fail(kp.path, f"unknown target layout {target!r}; targets: {', '.join(_TARGET_RECIPES)}")
    if kp.layout not in KEYPOINT_LAYOUTS:
        raise _fail(kp.path, f"unknown layout {kp.layout!r}; layouts: {', '.join(KEYPOINT_LAYOUTS)}")
    if not 0.0 < min_score <= 1.0:
        raise _fail(kp.path, f"min_score must be in (0, 1], got {min_score}")
    num_frames, num_joints = len(kp.frame_ids), len(KEYPOINT_LAYOUTS[kp.layout])
    if (kp.points.shape != (num_frames, num_joints, 2) or kp.scores.shape != (num_frames, num_joints)
            or num_frames == 0):
        raise _fail(kp.path, f"expected points [T, {num_joints}, 2] and scores [T, {num_joints}] with T = "
                             f"{num_frames} > 0 frames, got {kp.points.shape} and {kp.scores.shape}")
    times = np.asarray(kp.frame_ids, dtype=np.float64)
    if np.any(np.diff(times) <= 0):
        raise _fail(kp.path, "frame_ids must be strictly increasing")

    weights = _weights(kp, target)
    points = np.einsum("jk,tkc->tjc", weights, kp.points)
    used = weights != 0
    scores = np.stack([kp.scores[:, used[j]].min(axis=1) for j in range(len(weights))], axis=1)
    confident = scores >= min_score
    names = KEYPOINT_LAYOUTS[target]
    for j in range(len(weights)):
        good = confident[:, j]
        if not good.any():
            sources = ", ".join(KEYPOINT_LAYOUTS[kp.layout][k] for k in np.flatnonzero(used[j]))
            raise _fail(kp.path, f"target joint {names[j]!r} ({target}) is never confident (score >= {min_score}) "
                                 f"in any of {num_frames} frames; its sources: {sources}")
        if not good.all():
            for axis in range(2):
                points[~good, j, axis] = np.interp(times[~good], times[good], points[good, j, axis])
    report = {
        "filled_points": int((~confident).sum()),
        "frames_without_person": int((kp.scores.max(axis=1) <= 0).sum()),
        "joint_map": f"{kp.layout}->{target}",
    }
    return points, scores, report
