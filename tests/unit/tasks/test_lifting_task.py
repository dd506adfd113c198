"""The lifting task end to end on a small HumanEva-I folder in VideoPose3D's format: load, evaluate, fit, CLI."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from crisscross.cli.main import main
from crisscross.config.load import load_config
from crisscross.config.schema import DataConfig
from crisscross.data.cameras import get_cameras, world_to_camera
from crisscross.data.datasets import load_motion
from crisscross.data.lifting import LiftingSet
from crisscross.evaluation.protocols import get_protocol
from crisscross.tasks.lifting import LiftingTask
from crisscross.tasks.sources import evaluate_source
from crisscross.training import fit

_spec = importlib.util.spec_from_file_location(
    "lifting_task_vp3d_fixtures", Path(__file__).parents[1] / "data" / "videopose3d_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)

SUBJECTS = ("Train/S1", "Train/S2", "Validate/S1", "Validate/S2")
ACTIONS = ("Walking 1 chunk0", "Jog 1 chunk0", "Box 1 chunk0")
EXTRA = ("Train/S1", "ThrowCatch 1 chunk0")  # an action outside the protocol's three


def _positions(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    positions_3d: dict = {s: {} for s in SUBJECTS}
    positions_2d: dict = {s: {} for s in SUBJECTS}
    pairs = [(s, a) for s in SUBJECTS for a in ACTIONS] + [EXTRA]
    for i, (subject, action) in enumerate(pairs):
        length = 8 + i % 5
        positions_3d[subject][action] = rng.normal(0.0, 0.5, (length, 15, 3)).astype(np.float32)
        positions_2d[subject][action] = [(rng.uniform(0.05, 0.95, (length, 15, 2)) * [640, 480]).astype(np.float32)
                                         for _ in range(3)]
    return positions_3d, positions_2d


def _write(folder: Path, positions_3d: dict, positions_2d: dict) -> Path:
    fx.write_3d(folder / "data_3d_humaneva15.npz", positions_3d)
    fx.write_2d(folder / "data_2d_humaneva15_gt.npz", positions_2d, fx.HUMANEVA_METADATA)
    return folder


@pytest.fixture(scope="module")
def humaneva(tmp_path_factory) -> tuple[Path, dict, dict]:
    positions_3d, positions_2d = _positions()
    return _write(tmp_path_factory.mktemp("humaneva"), positions_3d, positions_2d), positions_3d, positions_2d


def test_load_gives_root_relative_camera_frame_poses(humaneva):
    folder, positions_3d, positions_2d = humaneva
    data = load_motion("humaneva", split="train", data_dir=folder)
    assert isinstance(data, LiftingSet) and data.dataset == "humaneva" and data.split == "train"
    assert data.skeleton.num_joints == 15 and data.keypoints.shape[1:] == (15, 2) and data.fps == 60.0
    assert data.subjects() == ["Train/S1", "Train/S2"] and data.actions() == ["Walking", "Jog", "Box", "ThrowCatch"]
    assert sorted({k.camera for k in data.keys}) == ["C1", "C2", "C3"]
    assert len(data.keys) == 3 * (2 * 3 + 1)
    assert data.num_frames == 3 * sum(len(p) for s in ("Train/S1", "Train/S2") for p in positions_3d[s].values())
    assert torch.equal(data.positions[:, 0], torch.zeros(data.num_frames, 3))
    # frame 4, joint 7 of Train/S2 "Jog 1 chunk0" seen by C3
    i = next(i for i, k in enumerate(data.keys) if (k.subject, k.action, k.take, k.camera) ==
             ("Train/S2", "Jog", "1 chunk0", "C3"))
    g = int(data.seq_starts[i]) + 4
    camera = get_cameras("humaneva", "Train/S2")[2]
    world_mm = torch.as_tensor(positions_3d["Train/S2"]["Jog 1 chunk0"][4], dtype=torch.float64) * 1000
    in_camera = world_to_camera(world_mm, camera)
    torch.testing.assert_close(data.positions[g, 7].double(), in_camera[7] - in_camera[0], rtol=1e-5, atol=1e-3)
    # a rotation keeps the distance to the root
    assert float(data.positions[g, 7].norm()) == pytest.approx(float((world_mm[7] - world_mm[0]).norm()), rel=1e-5)
    # keypoints: the file's pixels, normalised to x in [-1, 1] (and y in [-0.75, 0.75] for 640 x 480)
    pixels = positions_2d["Train/S2"]["Jog 1 chunk0"][2][4]
    np.testing.assert_allclose(data.keypoints[g].numpy(), pixels / 640 * 2 - [1, 0.75], rtol=1e-5, atol=1e-6)
    assert data.keypoints[..., 0].abs().max() <= 1 and data.keypoints[..., 1].abs().max() <= 0.75
    test = load_motion("humaneva", split="test", data_dir=folder)
    assert test.subjects() == ["Validate/S1", "Validate/S2"]


def test_weight_free_references_on_the_training_split(humaneva):
    folder = humaneva[0]
    task, protocol = LiftingTask(), get_protocol("humaneva-lift-27")
    train = task.load_split(DataConfig(dataset="humaneva", data_dir=str(folder)), "train", ["Walking", "Jog", "Box"])
    scores = {}
    for name in ("nearest-pose", "mean-pose"):
        model = task.build_model(name, {}, train, 27, 1)
        scores[name] = task.evaluate(model, train, protocol, device="cpu", batch_size=64, flip=False)
    # the training frames themselves: every 2D pose finds itself
    assert scores["nearest-pose"]["mpjpe_mm"]["mean"] == pytest.approx(0.0, abs=1e-2)
    assert scores["nearest-pose"]["p_mpjpe_mm"]["mean"] == pytest.approx(0.0, abs=1e-2)
    # mean-pose by hand: per action, the mean over frames of the mean joint distance to the mean pose
    mean_pose = train.positions.double().mean(0)
    errors = (train.positions.double() - mean_pose).norm(dim=-1).mean(-1)
    per_frame_action = np.repeat([k.action for k in train.keys], train.seq_lengths.numpy())
    expected = np.mean([float(errors[torch.as_tensor(per_frame_action == a)].mean()) for a in train.actions()])
    assert scores["mean-pose"]["mpjpe_mm"]["mean"] == pytest.approx(expected, rel=1e-4)
    assert scores["mean-pose"]["mpjpe_mm"]["mean"] > 100


def test_evaluate_source_reports_every_subject(humaneva):
    folder = humaneva[0]
    results = {name: evaluate_source(model_name=name, dataset="humaneva", split="train", data_dir=str(folder),
                                     protocol="humaneva-lift-27", device="cpu")
               for name in ("nearest-pose", "mean-pose")}
    for name, result in results.items():
        assert result["model"] == name and result["task"] == "lifting" and result["flip"] is True
        assert result["protocol"] == "humaneva-lift-27" and result["receptive_field"] == 27
        assert result["actions"] == ["Walking", "Jog", "Box"]  # ThrowCatch is not scored
        assert list(result["per_subject"]) == ["Train/S1", "Train/S2"]
        for figures in result["per_subject"].values():
            assert set(figures) == {"mpjpe_mm", "p_mpjpe_mm", "n_mpjpe_mm", "mpjve_mm"}
            assert set(figures["mpjpe_mm"]["per_action"]) == {"Walking", "Jog", "Box"}
    assert results["mean-pose"]["mpjpe_mm"]["mean"] > 0
    # with flip the nearest pose of the mirrored input is another frame's: no longer exact, but finite
    assert 0 < results["nearest-pose"]["mpjpe_mm"]["mean"] < float("inf")
    # the headline is the unweighted mean of the per-action figures
    mpjpe = results["mean-pose"]["mpjpe_mm"]
    assert mpjpe["mean"] == pytest.approx(np.mean(list(mpjpe["per_action"].values())))


def test_fit_runs_a_lifting_experiment(humaneva, tmp_path):
    folder = humaneva[0]
    cfg = load_config(None, ["task=lifting", "data.dataset=humaneva", f"data.data_dir={folder}", "data.input_frames=27",
                             "data.output_frames=1", "data.train_split=train", "data.val_split=test",
                             "model.name=mean-pose", "model.args={}", "eval.protocol=humaneva-lift-27",
                             "train.progress=false", f"track.root={tmp_path}/runs", "track.tensorboard=false",
                             "train.device=cpu"])
    result = fit(cfg)
    assert result.status == "completed"
    saved = json.loads((result.run_dir / "eval.json").read_text())
    assert saved["protocol"] == "humaneva-lift-27" and saved["split"] == "test"
    assert saved["mpjpe_mm"]["mean"] > 0 and list(saved["per_subject"]) == ["Validate/S1", "Validate/S2"]
    assert saved["mpjpe_mm"]["mean"] == pytest.approx(result.eval["mpjpe_mm"]["mean"])


def test_datasets_check_accepts_the_folder(humaneva, capsys):
    assert main(["datasets", "humaneva", "--check", "--data-dir", str(humaneva[0])]) == 0
    out = capsys.readouterr().out
    assert "dataset humaneva" in out and "files parsed: 2" in out and "OK" in out
    assert "Train/S1, Train/S2 (absent: Train/S3)" in out


@pytest.mark.parametrize("fault", ["14 joints", "short 2D"])
def test_datasets_check_names_a_malformed_file(tmp_path, capsys, fault):
    positions_3d, positions_2d = _positions(seed=1)
    if fault == "14 joints":
        positions_3d["Validate/S2"]["Box 1 chunk0"] = np.zeros((9, 14, 3), dtype=np.float32)
        named, detail = "data_3d_humaneva15.npz", "(9, 14, 3)"
    else:  # every camera one frame shorter than the 3D
        positions_2d["Validate/S2"]["Box 1 chunk0"] = [v[:-1] for v in positions_2d["Validate/S2"]["Box 1 chunk0"]]
        named, detail = "data_2d_humaneva15_gt.npz", "lengths differ"
    folder = _write(tmp_path / "broken", positions_3d, positions_2d)
    assert main(["datasets", "humaneva", "--check", "--data-dir", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "malformed: 1" in out and named in out and "Validate/S2" in out and detail in out


def test_datasets_check_names_a_missing_file(tmp_path, capsys):
    folder = _write(tmp_path / "half", *_positions())
    (folder / "data_2d_humaneva15_gt.npz").unlink()
    assert main(["datasets", "humaneva", "--check", "--data-dir", str(folder)]) != 0
    assert "data_2d_humaneva15_gt.npz" in capsys.readouterr().out


def test_eval_cli_prints_the_lifting_table(humaneva, capsys):
    assert main(["eval", "--model", "mean-pose", "--dataset", "humaneva", "--data-dir", str(humaneva[0]),
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "MPJPE (P1)" in out and "P-MPJPE (P2)" in out and "MPJVE" in out
    assert "humaneva / test" in out and "humaneva-lift-27" in out and "flip on" in out
    assert "Validate/S1:" in out and "Validate/S2:" in out  # per-subject tables
    assert "| mean-pose" in out


@pytest.mark.parametrize(("model", "output_frames"), [("stcformer-lift-small", 9), ("videopose3d-small", 1)])
def test_the_engine_trains_a_lifter_and_its_checkpoint_evaluates_the_same(humaneva, tmp_path, model, output_frames):
    """Sequence-to-sequence and centre-frame lifters train with the shared engine; the checkpoint self-describes."""
    folder = humaneva[0]
    cfg = load_config(None, ["task=lifting", "data.dataset=humaneva", f"data.data_dir={folder}",
                             "data.input_frames=9", f"data.output_frames={output_frames}", "data.val_split=test",
                             "data.augment.mirror=true", f"model.name={model}", "model.args={}", "train.epochs=2",
                             "train.batch_size=8", "train.progress=false", "eval.protocol=humaneva-lift-27",
                             f"track.root={tmp_path}", "track.tensorboard=false"])
    with pytest.raises(ValueError, match="does not fit a lifting model of 9 frames"):
        fit(cfg)
    cfg = load_config(None, [f"{k}={v}" for k, v in {"task": "lifting", "data.dataset": "humaneva",
                                                       "data.data_dir": folder, "data.input_frames": 27,
                                                       "data.output_frames": 27 if output_frames > 1 else 1,
                                                       "data.val_split": "test", "data.augment.mirror": "true",
                                                       "model.name": model, "model.args": "{}",
                                                       "train.epochs": 2, "train.batch_size": 8,
                                                       "train.progress": "false",
                                                       "eval.protocol": "humaneva-lift-27",
                                                       "track.root": tmp_path / "runs",
                                                       "track.tensorboard": "false"}.items()])
    result = fit(cfg)
    assert result.status == "completed" and result.steps > 0
    checkpoint = torch.load(result.run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["meta"]["receptive_field"] == 27 and checkpoint["meta"]["skeleton"] == "humaneva15"
    assert checkpoint["config"]["task"] == "lifting"
    again = evaluate_source(result.run_dir, data_dir=str(folder), device="cpu")  # never the stored folder
    assert again["mpjpe_mm"]["mean"] == pytest.approx(result.eval["mpjpe_mm"]["mean"], rel=1e-5)


def test_a_human36m_lifter_trains_on_the_npz_files_and_eval_gives_the_standard_table(tmp_path, capsys):
    """The path of a user with the full dataset: train on VideoPose3D's files, then ``crisscross eval CHECKPOINT
    --dataset h36m-npz-cpn --split test --protocol h36m-lift-27`` on the same model's checkpoint."""
    rng = np.random.default_rng(5)
    actions = ("Walking 1", "Eating", "Directions")
    positions_3d = {s: {a: rng.normal(0, 0.4, (30, 32, 3)).astype(np.float32) for a in actions}
                    for s in ("S1", "S5", "S9", "S11")}
    positions_2d = {s: {a: [rng.uniform(0, 1000, (30, 17, 2)).astype(np.float32) for _ in range(4)]
                        for a in actions} for s in positions_3d}
    fx.write_3d(tmp_path / "data_3d_h36m.npz", positions_3d)
    fx.write_2d(tmp_path / "data_2d_h36m_gt.npz", positions_2d, fx.H36M_METADATA)
    fx.write_2d(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d, fx.H36M_METADATA)
    cfg = load_config(None, ["task=lifting", "data.dataset=h36m-npz", f"data.data_dir={tmp_path}",
                             "data.input_frames=27", "data.output_frames=1", "data.val_split=test",
                             "model.name=videopose3d-small", "model.args={}", "train.epochs=1", "train.batch_size=16",
                             "train.progress=false", "eval.protocol=h36m-lift-27", f"track.root={tmp_path}/runs",
                             "track.tensorboard=false", "train.device=cpu"])
    result = fit(cfg)
    assert result.status == "completed" and result.eval["protocol"] == "h36m-lift-27"
    checkpoint = result.run_dir / "checkpoints" / "best.pt"
    assert main(["eval", str(checkpoint), "--dataset", "h36m-npz-cpn", "--data-dir", str(tmp_path), "--split",
                 "test", "--protocol", "h36m-lift-27", "--per-action", "--output", str(tmp_path / "cpn.json")]) == 0
    out = capsys.readouterr().out
    assert "h36m-npz-cpn / test" in out and "h36m-lift-27" in out and "flip on" in out
    saved = json.loads((tmp_path / "cpn.json").read_text())
    # S9 and S11 in 4 cameras, S11 Directions dropped as VideoPose3D drops it; every frame scored
    assert saved["num_frames"] == 4 * 30 * 5 and saved["actions"] == ["Walking", "Eating", "Directions"]
    assert saved["mpjpe_mm"]["mean"] > 0 and saved["p_mpjpe_mm"]["mean"] <= saved["mpjpe_mm"]["mean"] + 1e-6


def test_a_selection_figure_a_lifting_result_lacks_is_refused_before_training():
    task = LiftingTask()
    by_subject = get_protocol("humaneva-lift-27")
    for path in (None, "p_mpjpe_mm.mean", "mpjve_mm.per_action.Walking", "per_subject.Validate/S1.mpjpe_mm.mean"):
        task.check_select_metric(by_subject, path)
    for path in ("mpjpe_mm", "mpjpe22_mm.mean.avg", "per_subject.S1", "ade"):
        with pytest.raises(ValueError, match=rf"^eval.select_metric: '{path}' is no figure of a lifting result"):
            task.check_select_metric(by_subject, path)
    with pytest.raises(ValueError, match=r"'per_subject.S9.mpjpe_mm.mean' is no figure .* under h36m-lift-27"):
        task.check_select_metric(get_protocol("h36m-lift-27"), "per_subject.S9.mpjpe_mm.mean")
