"""2D keypoint readers (MMPose, COCO results, OpenPose, MediaPipe, npz) and the joint maps to h36m17 / humaneva15.

Every file is written here in its tool's layout from a synthetic walker: 30 frames, a bystander with lower scores in
some frames (listed first in one), nobody in frame 12, and a few low-score points.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crisscross.data.errors import DataError
from crisscross.data.keypoints import (
    JOINT_MAPS,
    KEYPOINT_LAYOUTS,
    KeypointError,
    Keypoints2D,
    map_keypoints,
    read_keypoints,
)
from crisscross.data.skeleton import H36M_17_SKELETON, HUMANEVA_15_SKELETON

WIDTH, HEIGHT = 1280, 720
NUM_FRAMES = 30
EMPTY_FRAME = 12
BYSTANDER_FRAMES = (3, 7, 18)
BYSTANDER_FIRST = 7  # the bystander is listed before the walker in this frame
LOW_POINTS = {(10, "left_wrist"): 0.05, (20, "right_knee"): 0.1}

_BODY25_ROLES = {
    "Nose": "nose", "Neck": "neck", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
    "LShoulder": "left_shoulder", "LElbow": "left_elbow", "LWrist": "left_wrist", "MidHip": "mid_hip",
    "RHip": "right_hip", "RKnee": "right_knee", "RAnkle": "right_ankle", "LHip": "left_hip", "LKnee": "left_knee",
    "LAnkle": "left_ankle", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear",
    "LBigToe": "left_big_toe", "LSmallToe": "left_small_toe", "LHeel": "left_heel", "RBigToe": "right_big_toe",
    "RSmallToe": "right_small_toe", "RHeel": "right_heel",
}


def walker_pose(t: int) -> dict[str, np.ndarray]:
    """Joint name -> (x, y) pixels of a person walking to the right (the person's left is at larger x)."""
    phase = 2 * np.pi * t / 15
    swing = np.sin(phase)
    cx = 400.0 + 6.0 * t
    pelvis = np.array([cx, 420.0 + 4.0 * np.sin(2 * phase)])
    pose: dict[str, np.ndarray] = {}
    for side, sign, s in (("left", 1.0, swing), ("right", -1.0, -swing)):
        hip = pelvis + [40.0 * sign, 0.0]
        knee = hip + [20.0 * s, 110.0]
        ankle = knee + [30.0 * s, 110.0]
        shoulder = pelvis + [55.0 * sign + 3.0 * s, -200.0]
        elbow = shoulder + [10.0 * sign - 15.0 * s, 90.0]
        wrist = elbow + [-20.0 * s, 80.0]
        pose.update({f"{side}_hip": hip, f"{side}_knee": knee, f"{side}_ankle": ankle, f"{side}_shoulder": shoulder,
                     f"{side}_elbow": elbow, f"{side}_wrist": wrist})
        pose.update({f"{side}_heel": ankle + [-4.0 * sign, 10.0], f"{side}_foot_index": ankle + [6.0 * sign, 24.0],
                     f"{side}_big_toe": ankle + [8.0 * sign, 26.0], f"{side}_small_toe": ankle + [14.0 * sign, 22.0],
                     f"{side}_pinky": wrist + [6.0 * sign, 14.0], f"{side}_index": wrist + [2.0 * sign, 18.0],
                     f"{side}_thumb": wrist + [-4.0 * sign, 12.0]})
    nose = np.array([cx + 3.0 * swing, pelvis[1] - 290.0])
    for side, sign in (("left", 1.0), ("right", -1.0)):
        eye = nose + [12.0 * sign, -10.0]
        pose.update({f"{side}_eye": eye, f"{side}_eye_inner": eye + [-4.0 * sign, 0.0],
                     f"{side}_eye_outer": eye + [4.0 * sign, 0.0], f"{side}_ear": nose + [28.0 * sign, -4.0]})
    pose.update({"nose": nose, "mouth_left": nose + [9.0, 18.0], "mouth_right": nose + [-9.0, 18.0]})
    # BODY_25's own Neck and MidHip, placed off the shoulder / hip midpoints so the tests see they are not used.
    pose["neck"] = (pose["left_shoulder"] + pose["right_shoulder"]) / 2 + [0.0, -15.0]
    pose["mid_hip"] = (pose["left_hip"] + pose["right_hip"]) / 2 + [0.0, 8.0]
    return pose


def role_of(layout: str, name: str) -> str:
    return _BODY25_ROLES[name] if layout == "body25" else name


class Scene:
    """The walker (and bystander) of every frame in one layout, and what a reader must return."""

    def __init__(self, layout: str, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        names = KEYPOINT_LAYOUTS[layout]
        self.layout = layout
        self.names = names
        self.points = np.array([[walker_pose(t)[role_of(layout, n)] for n in names] for t in range(NUM_FRAMES)])
        self.scores = np.round(rng.uniform(0.7, 0.99, size=(NUM_FRAMES, len(names))), 4)
        for (t, role), score in LOW_POINTS.items():
            self.scores[t, [role_of(layout, n) for n in names].index(role)] = score
        bystander = self.points + [500.0, 10.0]
        bystander_scores = np.round(rng.uniform(0.3, 0.6, size=self.scores.shape), 4)
        self.people: list[list[tuple[np.ndarray, np.ndarray]]] = []
        for t in range(NUM_FRAMES):
            frame = [] if t == EMPTY_FRAME else [(self.points[t], self.scores[t])]
            if t in BYSTANDER_FRAMES:
                extra = (bystander[t], bystander_scores[t])
                frame = [extra, *frame] if t == BYSTANDER_FIRST else [*frame, extra]
            self.people.append(frame)
        self.expected_points = self.points.copy()
        self.expected_points[EMPTY_FRAME] = 0.0
        self.expected_scores = self.scores.copy()
        self.expected_scores[EMPTY_FRAME] = 0.0

    def index(self, role: str) -> int:
        return [role_of(self.layout, n) for n in self.names].index(role)

    def walker_at(self, t: int) -> int | None:
        """Position of the walker among the people of frame ``t`` (None in the empty frame)."""
        return None if t == EMPTY_FRAME else 1 if t == BYSTANDER_FIRST else 0


def check_read(kp: Keypoints2D, scene: Scene, source_format: str, frame_ids=None) -> None:
    assert kp.layout == scene.layout
    assert kp.source_format == source_format
    assert kp.points.shape == (NUM_FRAMES, len(scene.names), 2) and kp.points.dtype == np.float64
    assert kp.scores.shape == (NUM_FRAMES, len(scene.names)) and kp.scores.dtype == np.float64
    expected_ids = np.arange(NUM_FRAMES) if frame_ids is None else np.asarray(frame_ids)
    np.testing.assert_array_equal(kp.frame_ids, expected_ids)
    np.testing.assert_allclose(kp.points, scene.expected_points, rtol=0, atol=1e-9)
    np.testing.assert_allclose(kp.scores, scene.expected_scores, rtol=0, atol=1e-12)


def assert_one_line_error(excinfo: pytest.ExceptionInfo, name: str, *fragments: str) -> None:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, DataError)
    assert "\n" not in message, message
    assert name in message, message
    for fragment in fragments:
        assert fragment in message, message


# --- writers in each tool's layout -----------------------------------------------------------------------------------


def mmpose_instance(points: np.ndarray, scores: np.ndarray) -> dict:
    low, high = points.min(axis=0), points.max(axis=0)
    return {"keypoints": points.tolist(), "keypoint_scores": scores.tolist(),
            "bbox": [[*low.tolist(), *high.tolist()]], "bbox_score": 0.93}


def write_mmpose_video(path: Path, scene: Scene) -> Path:
    frames = [{"frame_id": t, "instances": [mmpose_instance(p, s) for p, s in people]}
              for t, people in enumerate(scene.people)]
    path.write_text(json.dumps(frames, indent="  "))
    return path


def coco_flat(points: np.ndarray, scores: np.ndarray) -> list[float]:
    return np.concatenate([points, scores[:, None]], axis=1).ravel().tolist()


def write_coco_results(path: Path, scene: Scene, image_ids) -> Path:
    detections = [{"image_id": image_ids(t), "category_id": 1, "keypoints": coco_flat(p, s),
                   "score": float(s.mean()) + 1.0, "box": [0, 0, 10, 10], "idx": [n]}
                  for t, people in enumerate(scene.people) for n, (p, s) in enumerate(people)]
    detections.reverse()  # the reader must order frames by number, not by file order
    path.write_text(json.dumps(detections))
    return path


def openpose_json(people: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    return {"version": 1.3, "people": [
        {"person_id": [-1], "pose_keypoints_2d": coco_flat(p, s), "face_keypoints_2d": [],
         "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": [],
         "face_keypoints_3d": [], "hand_left_keypoints_3d": [], "hand_right_keypoints_3d": []}
        for p, s in people]}


def landmarks(points: np.ndarray, scores: np.ndarray) -> list[dict]:
    return [{"x": x / WIDTH, "y": y / HEIGHT, "z": -0.1, "visibility": float(c), "presence": 0.99}
            for (x, y), c in zip(points, scores)]


# --- layouts and maps ------------------------------------------------------------------------------------------------


def test_layouts_have_the_documented_indices():
    coco, mediapipe, body25 = (KEYPOINT_LAYOUTS[k] for k in ("coco17", "mediapipe33", "body25"))
    assert (len(coco), len(mediapipe), len(body25)) == (17, 33, 25)
    assert (coco[0], coco[5], coco[6], coco[11], coco[16]) == ("nose", "left_shoulder", "right_shoulder",
                                                               "left_hip", "right_ankle")
    assert (mediapipe[0], mediapipe[11], mediapipe[16], mediapipe[23], mediapipe[32]) == (
        "nose", "left_shoulder", "right_wrist", "left_hip", "right_foot_index")
    assert (body25[1], body25[2], body25[8], body25[9], body25[12], body25[24]) == (
        "Neck", "RShoulder", "MidHip", "RHip", "LHip", "RHeel")
    assert KEYPOINT_LAYOUTS["h36m17"] == H36M_17_SKELETON.joint_names
    assert KEYPOINT_LAYOUTS["humaneva15"] == HUMANEVA_15_SKELETON.joint_names


def test_joint_maps_are_affine_and_name_real_joints():
    assert set(JOINT_MAPS) == {(s, t) for s in ("coco17", "mediapipe33", "body25") for t in ("h36m17", "humaneva15")}
    for (source, target), recipe in JOINT_MAPS.items():
        assert len(recipe) == len(KEYPOINT_LAYOUTS[target])
        for parts in recipe:
            assert all(name in KEYPOINT_LAYOUTS[source] for name, _ in parts)
            assert sum(w for _, w in parts) == pytest.approx(1.0, abs=1e-12)
    # BODY_25's MidHip and Neck are not used: pelvis and thorax come from the hips and shoulders.
    used = {name for parts in JOINT_MAPS["body25", "h36m17"] for name, _ in parts}
    assert "MidHip" not in used and "Neck" not in used


# --- readers ---------------------------------------------------------------------------------------------------------


def test_mmpose_inferencer_video_output(tmp_path: Path):
    scene = Scene("coco17")
    kp = read_keypoints(write_mmpose_video(tmp_path / "walk.json", scene))
    check_read(kp, scene, "mmpose")  # the walker wins in every bystander frame, also when listed second
    assert kp.image_size is None and kp.fps is None


def test_mmpose_demo_wholebody_output_keeps_the_first_17_joints(tmp_path: Path):
    scene = Scene("coco17")
    rng = np.random.default_rng(1)
    frames = []
    for t, people in enumerate(scene.people):
        instances = []
        for n, (p, s) in enumerate(people):
            walker = n == scene.walker_at(t)
            # Face/hand/foot scores favour the bystander; the choice must look at the 17 body joints only.
            extra_scores = np.full(116, 0.2 if walker else 1.0)
            extra_points = p.mean(axis=0) + rng.normal(0, 20, size=(116, 2))
            instances.append(mmpose_instance(np.vstack([p, extra_points]), np.concatenate([s, extra_scores])))
        frames.append({"frame_id": t + 1, "instances": instances})  # the demo numbers video frames from 1
    meta = {"dataset_name": "coco_wholebody", "num_keypoints": 133, "keypoint_id2name": {"0": "nose"}}
    path = tmp_path / "results_walk.json"
    path.write_text(json.dumps({"meta_info": meta, "instance_info": frames}, indent="\t"))
    kp = read_keypoints(path, fps=25)
    check_read(kp, scene, "mmpose", frame_ids=np.arange(1, NUM_FRAMES + 1))
    assert kp.fps == 25.0


def test_mmpose_demo_h36m_model_reads_as_h36m17(tmp_path: Path):
    points = np.arange(17 * 2, dtype=float).reshape(17, 2) + 100
    data = {"meta_info": {"dataset_name": "h36m", "num_keypoints": 17},
            "instance_info": [{"frame_id": 1, "instances": [mmpose_instance(points, np.full(17, 0.9))]}]}
    path = tmp_path / "h36m_model.json"
    path.write_text(json.dumps(data))
    kp = read_keypoints(path)
    assert kp.layout == "h36m17"
    np.testing.assert_array_equal(kp.points[0], points)


def test_alphapose_results_order_frames_by_the_number_in_the_image_name(tmp_path: Path):
    scene = Scene("coco17")
    kp = read_keypoints(write_coco_results(tmp_path / "alphapose-results.json", scene, lambda t: f"{t}.jpg"))
    # The frame without anybody has no detection, so it is a gap in the frame numbers.
    keep = np.arange(NUM_FRAMES) != EMPTY_FRAME
    assert kp.source_format == "coco-results" and kp.layout == "coco17"
    np.testing.assert_array_equal(kp.frame_ids, np.arange(NUM_FRAMES)[keep])
    np.testing.assert_allclose(kp.points, scene.points[keep], rtol=0, atol=1e-9)
    np.testing.assert_allclose(kp.scores, scene.scores[keep], rtol=0, atol=1e-12)


def test_detectron2_results_with_integer_image_ids(tmp_path: Path):
    scene = Scene("coco17", seed=3)
    kp = read_keypoints(write_coco_results(tmp_path / "coco_instances_results.json", scene, lambda t: 1000 + t),
                        image_size=(WIDTH, HEIGHT))
    keep = np.arange(NUM_FRAMES) != EMPTY_FRAME
    np.testing.assert_array_equal(kp.frame_ids, 1000 + np.arange(NUM_FRAMES)[keep])
    np.testing.assert_allclose(kp.points, scene.points[keep], rtol=0, atol=1e-9)
    assert kp.image_size == (WIDTH, HEIGHT)


def test_openpose_folder_and_single_file(tmp_path: Path):
    scene = Scene("body25")
    knee = scene.index("right_knee")
    scene.points[20, knee] = 0.0  # OpenPose writes a missing point as 0, 0 with confidence 0
    scene.scores[20, knee] = 0.0
    scene.expected_points[20, knee] = scene.expected_scores[20, knee] = 0.0
    folder = tmp_path / "json"
    folder.mkdir()
    for t, people in enumerate(scene.people):
        (folder / f"walk_{t:012d}_keypoints.json").write_text(json.dumps(openpose_json(people)))
    kp = read_keypoints(folder)
    check_read(kp, scene, "openpose")
    single = read_keypoints(folder / f"walk_{5:012d}_keypoints.json")
    assert single.frame_ids.tolist() == [5] and single.layout == "body25"
    np.testing.assert_allclose(single.points[0], scene.points[5], rtol=0, atol=1e-9)


@pytest.mark.parametrize("style", ["landmark_lists", "tasks_api", "legacy"])
def test_mediapipe_frames_are_scaled_to_pixels(tmp_path: Path, style: str):
    scene = Scene("mediapipe33")
    frames = []
    for t, people in enumerate(scene.people):
        walker = [] if t == EMPTY_FRAME else landmarks(scene.points[t], scene.scores[t])
        if style == "landmark_lists":  # one person's landmarks per frame, [] for nobody
            frames.append(walker)
        elif style == "tasks_api":  # one landmark list per person
            frames.append({"pose_landmarks": [landmarks(p, s) for p, s in people], "pose_world_landmarks": []})
        else:  # MessageToDict(results.pose_landmarks), {} for nobody
            frames.append({"landmark": walker} if walker else {})
    path = tmp_path / f"mediapipe_{style}.json"
    path.write_text(json.dumps({"frames": frames, "image_width": WIDTH, "image_height": HEIGHT, "fps": 30.0}))
    kp = read_keypoints(path)
    assert kp.image_size == (WIDTH, HEIGHT) and kp.fps == 30.0
    check_read(kp, scene, "mediapipe")
    # The caller's image size wins over the file's.
    doubled = read_keypoints(path, image_size=(2 * WIDTH, 2 * HEIGHT))
    np.testing.assert_allclose(doubled.points, 2 * kp.points, rtol=1e-12)


def test_mediapipe_plain_list_needs_the_image_size(tmp_path: Path):
    scene = Scene("mediapipe33")
    path = tmp_path / "pose.json"
    path.write_text(json.dumps([landmarks(scene.points[t], scene.scores[t]) for t in range(3)] + [[]]))
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path)
    assert_one_line_error(excinfo, "pose.json", "image size", "width x height")
    kp = read_keypoints(path, image_size=(WIDTH, HEIGHT))
    assert kp.layout == "mediapipe33" and kp.points.shape == (4, 33, 2)
    np.testing.assert_allclose(kp.points[:3], scene.points[:3], rtol=0, atol=1e-9)
    assert kp.scores[3].max() == 0.0


def test_npz_yolo_style_scores_in_the_third_channel(tmp_path: Path):
    scene = Scene("coco17")
    stacked = np.concatenate([scene.expected_points, scene.expected_scores[..., None]], axis=2)
    path = tmp_path / "yolo.npz"
    np.savez(path, keypoints=stacked.astype(np.float32), image_size=np.array([WIDTH, HEIGHT]), fps=np.array(25.0))
    kp = read_keypoints(path)
    assert kp.source_format == "npz" and kp.layout == "coco17" and kp.fps == 25.0
    assert kp.image_size == (WIDTH, HEIGHT)
    np.testing.assert_allclose(kp.points, scene.expected_points, rtol=1e-6)  # stored as float32
    np.testing.assert_allclose(kp.scores, scene.expected_scores, rtol=1e-6)
    np.testing.assert_array_equal(kp.frame_ids, np.arange(NUM_FRAMES))


def test_npz_layout_key_scores_key_and_npy(tmp_path: Path):
    points = np.random.default_rng(0).uniform(0, 500, size=(5, 17, 2))
    scores = np.full((5, 17), 0.8)
    path = tmp_path / "h36m_order.npz"
    np.savez(path, keypoints=points, scores=scores, layout=np.array("h36m17"), width=np.array(1000),
             height=np.array(1002))
    kp = read_keypoints(path)
    assert kp.layout == "h36m17" and kp.image_size == (1000, 1002)
    np.testing.assert_array_equal(kp.scores, scores)
    npy = tmp_path / "only.npy"
    np.save(npy, points)
    only = read_keypoints(npy, layout="h36m17")
    assert only.layout == "h36m17" and np.all(only.scores == 1.0)
    assert read_keypoints(npy).layout == "coco17"


# --- mapping ---------------------------------------------------------------------------------------------------------


def one_frame(layout: str, pose: dict[str, tuple[float, float]], path: Path) -> Keypoints2D:
    names = KEYPOINT_LAYOUTS[layout]
    points = np.array([[pose.get(role_of(layout, n), (0.0, 0.0)) for n in names]], dtype=float)
    return Keypoints2D(path, layout, points, np.ones((1, len(names))), np.array([0]), None, None, "npz")


HAND_POSE = {"left_hip": (540.0, 420.0), "right_hip": (460.0, 424.0), "left_shoulder": (556.0, 220.0),
             "right_shoulder": (444.0, 216.0), "nose": (510.0, 130.0), "left_knee": (545.0, 530.0),
             "neck": (480.0, 190.0), "mid_hip": (300.0, 300.0)}


@pytest.mark.parametrize("layout", ["coco17", "mediapipe33", "body25"])
def test_map_gives_hand_computed_torso_and_head(tmp_path: Path, layout: str):
    kp = one_frame(layout, HAND_POSE, tmp_path / "hand.npz")
    points, scores, report = map_keypoints(kp, "h36m17")
    joint = {name: points[0, j] for j, name in enumerate(H36M_17_SKELETON.joint_names)}
    np.testing.assert_allclose(joint["Hips"], [500.0, 422.0])  # hips' midpoint, not BODY_25's MidHip
    np.testing.assert_allclose(joint["Thorax"], [500.0, 218.0])  # shoulders' midpoint, not BODY_25's Neck
    np.testing.assert_allclose(joint["Spine"], [500.0, 320.0])
    np.testing.assert_allclose(joint["Neck"], [510.0, 130.0])
    # nose + 0.95 (nose - thorax) = (510 + 0.95 * 10, 130 - 0.95 * 88)
    np.testing.assert_allclose(joint["Head"], [519.5, 46.4])
    np.testing.assert_allclose(joint["LeftKnee"], [545.0, 530.0])
    assert report == {"filled_points": 0, "frames_without_person": 0, "joint_map": f"{layout}->h36m17"}
    assert scores.shape == (1, 17)

    points, _, report = map_keypoints(kp, "humaneva15")
    joint = {name: points[0, j] for j, name in enumerate(HUMANEVA_15_SKELETON.joint_names)}
    np.testing.assert_allclose(joint["Pelvis"], [500.0, 422.0])
    np.testing.assert_allclose(joint["Thorax"], [500.0, 218.0])
    np.testing.assert_allclose(joint["Head"], [519.5, 46.4])
    assert report["joint_map"] == f"{layout}->humaneva15"


def test_identity_map_keeps_the_points(tmp_path: Path):
    points = np.random.default_rng(2).uniform(0, 500, size=(4, 17, 2))
    kp = Keypoints2D(tmp_path / "x.npz", "h36m17", points, np.ones((4, 17)), np.arange(4), None, None, "npz")
    mapped, scores, report = map_keypoints(kp, "h36m17")
    np.testing.assert_array_equal(mapped, points)
    np.testing.assert_array_equal(scores, np.ones((4, 17)))
    assert report["joint_map"] == "h36m17->h36m17"


def walker_keypoints(layout: str, path: Path, frame_ids=None) -> Keypoints2D:
    scene = Scene(layout)
    ids = np.arange(NUM_FRAMES) if frame_ids is None else np.asarray(frame_ids)
    return Keypoints2D(path, layout, scene.expected_points.copy(), scene.expected_scores.copy(), ids,
                       (WIDTH, HEIGHT), 25.0, "npz")


def test_filling_interpolates_a_dropped_point_linearly(tmp_path: Path):
    kp = walker_keypoints("coco17", tmp_path / "walk.npz")
    wrist = KEYPOINT_LAYOUTS["coco17"].index("left_wrist")
    kp.points[9, wrist] = (100.0, 200.0)
    kp.points[11, wrist] = (130.0, 260.0)
    kp.points[10, wrist] = (900.0, 900.0)  # a wild low-confidence detection (score 0.05)
    points, scores, report = map_keypoints(kp, "h36m17")
    target = H36M_17_SKELETON.joint_names.index("LeftWrist")
    np.testing.assert_allclose(points[10, target], [115.0, 230.0], rtol=0, atol=1e-9)
    assert scores[10, target] == 0.05  # filled points keep their low score
    # LeftWrist in frame 10, RightKnee in frame 20 (score 0.1), and all 17 joints of the frame without anybody.
    assert report == {"filled_points": 1 + 1 + 17, "frames_without_person": 1, "joint_map": "coco17->h36m17"}


def test_filling_uses_frame_numbers_and_holds_the_ends(tmp_path: Path):
    ids = [0, 1, 4, 5, 6]
    points = np.zeros((5, 17, 2))
    points[:, :, 0] = np.array(ids, dtype=float)[:, None] * 10.0
    scores = np.ones((5, 17))
    scores[1, 0] = 0.0  # nose at frame number 1, between numbers 0 and 4
    scores[4, 5] = 0.1  # left shoulder in the last frame
    points[1, 0] = (-999.0, -999.0)
    points[4, 5] = (-999.0, -999.0)
    kp = Keypoints2D(tmp_path / "gaps.npz", "coco17", points, scores, np.array(ids), None, None, "npz")
    mapped, _, _ = map_keypoints(kp, "h36m17")
    neck = H36M_17_SKELETON.joint_names.index("Neck")
    shoulder = H36M_17_SKELETON.joint_names.index("LeftShoulder")
    np.testing.assert_allclose(mapped[1, neck], [10.0, 0.0])  # interpolates between x = 0 and x = 40 at 1/4
    np.testing.assert_allclose(mapped[4, shoulder], [50.0, 0.0])  # held at the last confident frame (number 5)


def test_never_confident_joint_is_named(tmp_path: Path):
    kp = walker_keypoints("coco17", tmp_path / "no_nose.npz")
    kp.scores[:, KEYPOINT_LAYOUTS["coco17"].index("nose")] = 0.1
    with pytest.raises(KeypointError) as excinfo:
        map_keypoints(kp, "h36m17")
    assert_one_line_error(excinfo, "no_nose.npz", "'Neck'", "never confident", "nose")


@pytest.mark.parametrize("layout", ["coco17", "mediapipe33", "body25"])
@pytest.mark.parametrize("target", ["h36m17", "humaneva15"])
def test_maps_commute_with_translation(tmp_path: Path, layout: str, target: str):
    kp = walker_keypoints(layout, tmp_path / "walk.npz")
    shift = np.array([37.5, -12.25])
    moved = Keypoints2D(kp.path, layout, kp.points + shift, kp.scores, kp.frame_ids, None, None, "npz")
    points, scores, _ = map_keypoints(kp, target)
    moved_points, moved_scores, _ = map_keypoints(moved, target)
    np.testing.assert_allclose(moved_points, points + shift, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(moved_scores, scores)


def source_mirror_permutation(layout: str) -> list[int]:
    """Index of each joint's left/right partner (itself for a centre joint)."""
    names = KEYPOINT_LAYOUTS[layout]
    if layout == "body25":
        swap = {"L": "R", "R": "L"}
        partners = [swap[n[0]] + n[1:] if n[0] in swap and n[1].isupper() else n for n in names]
    else:
        partners = [n.replace("left", "@").replace("right", "left").replace("@", "right") for n in names]
    return [names.index(p) for p in partners]


@pytest.mark.parametrize("layout", ["coco17", "mediapipe33", "body25"])
@pytest.mark.parametrize("target", ["h36m17", "humaneva15"])
def test_maps_commute_with_a_left_right_mirror(tmp_path: Path, layout: str, target: str):
    kp = walker_keypoints(layout, tmp_path / "walk.npz")
    perm = source_mirror_permutation(layout)
    flip = np.array([-1.0, 1.0])
    mirrored = Keypoints2D(kp.path, layout, kp.points[:, perm] * flip, kp.scores[:, perm], kp.frame_ids, None, None,
                           "npz")
    skeleton = H36M_17_SKELETON if target == "h36m17" else HUMANEVA_15_SKELETON
    target_perm = list(skeleton.mirror_permutation())
    points, scores, _ = map_keypoints(kp, target)
    mirrored_points, mirrored_scores, _ = map_keypoints(mirrored, target)
    np.testing.assert_allclose(mirrored_points, points[:, target_perm] * flip, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(mirrored_scores, scores[:, target_perm])


# --- errors ----------------------------------------------------------------------------------------------------------


def test_wrong_keypoint_count(tmp_path: Path):
    path = tmp_path / "sixteen.npz"
    np.savez(path, keypoints=np.zeros((4, 16, 2)))
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path)
    assert_one_line_error(excinfo, "sixteen.npz", "16 keypoints")
    path = tmp_path / "seventeen.npz"
    np.savez(path, keypoints=np.zeros((4, 17, 2)))
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path, layout="body25")
    assert_one_line_error(excinfo, "seventeen.npz", "17 keypoints", "'body25'")
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path, layout="coco18")
    assert_one_line_error(excinfo, "seventeen.npz", "unknown layout")


def test_nan_coordinates_name_frame_and_joint(tmp_path: Path):
    points = np.ones((6, 17, 2))
    points[4, 7, 1] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, keypoints=points)
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path)
    assert_one_line_error(excinfo, "nan.npz", "frame 4", "joint 7 (left_elbow)", "non-finite coordinate")

    scene = Scene("coco17")
    scene.people[6][0][0][3, 0] = np.inf
    path = write_mmpose_video(tmp_path / "inf.json", scene)  # json writes Infinity, which Python reads back
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path)
    assert_one_line_error(excinfo, "inf.json", "frame 6", "joint 3 (left_ear)")


def test_openpose_coco18_is_refused(tmp_path: Path):
    path = tmp_path / "clip_000000000000_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [1.0] * 54}]}))
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path)
    assert_one_line_error(excinfo, path.name, "COCO-18", "BODY_25")


def test_unknown_empty_and_frameless_files(tmp_path: Path):
    text = tmp_path / "poses.txt"
    text.write_text("1 2 3\n")
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(text)
    assert_one_line_error(excinfo, "poses.txt", "unknown keypoint file type")
    for name in ("empty.json", "empty.npz"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(KeypointError) as excinfo:
            read_keypoints(tmp_path / name)
        assert_one_line_error(excinfo, name, "empty file")
    frameless = tmp_path / "frameless.json"
    frameless.write_text("[]")
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(frameless)
    assert_one_line_error(excinfo, "frameless.json", "no frames")
    zero = tmp_path / "zero.npz"
    np.savez(zero, keypoints=np.zeros((0, 17, 2)))
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(zero)
    assert_one_line_error(excinfo, "zero.npz", "no frames")
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"frames": [')
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(garbage)
    assert_one_line_error(excinfo, "garbage.json", "not valid JSON")
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(tmp_path / "missing.json")
    assert_one_line_error(excinfo, "missing.json", "no such file")
    empty_folder = tmp_path / "openpose"
    empty_folder.mkdir()
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(empty_folder)
    assert_one_line_error(excinfo, "openpose", "_keypoints.json")


def test_pickled_npz_is_refused(tmp_path: Path):
    path = tmp_path / "pickled.npz"
    np.savez(path, keypoints=np.array([{"a": 1}], dtype=object))
    with pytest.raises(KeypointError) as excinfo:
        read_keypoints(path)
    assert_one_line_error(excinfo, "pickled.npz", "pickled")
