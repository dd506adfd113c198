"""Any forecaster under a stochastic protocol: the forecasting task's sample_fn, evaluation, report and CLI.

A deterministic model is scored as K copies of its forecast (APD 0, its own ADE); a sampling model (tiny
``humor-cvae`` / ``stcformer-cvae``) through its ``sample`` with a seeded generator. Most tests use a small
protocol object on the embedded synthetic data (10 windows of walking); the named ``h36m-stochastic-10-25`` runs
through ``evaluate_source`` and ``crisscross eval`` on the synthetic data too (same skeleton and frame rate).
"""

from __future__ import annotations

import json

import pytest
import torch

from crisscross.cli.main import main
from crisscross.config import ConfigError
from crisscross.data.datasets import load_motion
from crisscross.data.skeleton import H36M_SKELETON
from crisscross.evaluation.forecasting import PREDICTED_JOINTS_KEY, evaluate_forecaster, make_predict_fn
from crisscross.evaluation.protocols import ForecastProtocol, StochasticProtocol, protocol_windows
from crisscross.evaluation.stochastic import pose_error
from crisscross.models.registry import build_model
from crisscross.runs.checkpoint import save_checkpoint
from crisscross.tasks.forecasting import ForecastingTask
from crisscross.tasks.forecasting.sampling import DETERMINISTIC_SAMPLER, MODEL_SAMPLER, make_sample_fn
from crisscross.tasks.sources import evaluate_source

K = 4
TINY = {
    "humor-cvae": {"latent_size": 4, "prior_hidden": [16, 16], "posterior_hidden": [16], "decoder_hidden": [16, 16]},
    "stcformer-cvae": {"dim": 16, "enc_blocks": 1, "dec_blocks": 1, "heads": 2, "latent_size": 4,
                       "latent_hidden": 16, "posterior_blocks": 1},
    "stcformer": {"dim": 16, "enc_blocks": 1, "dec_blocks": 1, "heads": 2},
}
# 10 -> 25 frames on the synthetic walking sequences, a window every 100 frames: 5 per sequence, 10 in all.
PROTOCOL = StochasticProtocol("test-stochastic-10-25", "synthetic", 10, 25, "strided", stride=100, samples=50,
                              multimodal_threshold_mm=500.0, skeleton=H36M_SKELETON.name,
                              scored_joints=H36M_SKELETON.predicted, description="a test protocol")
DETERMINISTIC = ForecastProtocol("test-10-25", "synthetic", 10, 25, "strided", stride=100)
TASK = ForecastingTask()


@pytest.fixture(scope="module")
def walking():
    return load_motion("synthetic", split="val").subset(actions=["walking"])


def _model(name: str, output_frames: int = 25):
    torch.manual_seed(0)
    return build_model(name, TINY.get(name, {}), H36M_SKELETON, 10, output_frames)


def _evaluate(model, motion, **kwargs):
    # batch_size 64 with K = 4: 16 windows per model call, so all 10 windows go in one call
    return TASK.evaluate(model, motion, PROTOCOL, device="cpu", batch_size=64, **{"samples": K, **kwargs})


def _windows(motion):
    starts, _, _ = protocol_windows(motion, PROTOCOL)
    return motion.gather(starts, PROTOCOL.window_frames)


@pytest.mark.parametrize("name", ["zero-velocity", "stcformer"])
def test_a_deterministic_model_has_apd_zero_and_its_own_ade(walking, name):
    model = _model(name)
    result = _evaluate(model, walking)
    single = _evaluate(model, walking, samples=1)
    assert result["sampler"] == DETERMINISTIC_SAMPLER and result["num_windows"] == 10
    assert result["apd"] == 0.0 and single["apd"] == 0.0
    for key in ("ade", "fde", "mmade", "mmfde"):  # equal up to float32 rounding (K copies reduce in another order)
        assert result[key] == pytest.approx(single[key], rel=1e-6)
    # its ADE is the frame error of its one forecast, through the same units and joints as the deterministic path
    windows = _windows(walking)
    forecast = make_predict_fn(model, walking.skeleton, 25)(windows[:, :10])
    joints = list(H36M_SKELETON.predicted)
    ade = pose_error(forecast[None][..., joints, :], windows[:, 10:, joints]).mean()
    assert result["ade"] == pytest.approx(float(ade), rel=1e-5)
    # one action: the deterministic evaluator's mean over actions is the mean over windows
    deterministic = evaluate_forecaster(make_predict_fn(model, walking.skeleton, 25), walking, PROTOCOL)
    mpjpe = result["mpjpe_first_sample_by_horizon_mm"]
    assert mpjpe["avg"] == pytest.approx(deterministic[PREDICTED_JOINTS_KEY]["mean"]["avg"], rel=1e-5)
    assert mpjpe["1000"] == pytest.approx(deterministic[PREDICTED_JOINTS_KEY]["mean"]["1000"], rel=1e-5)
    assert result["mpjpe_sample_mean_by_horizon_mm"] == mpjpe


@pytest.mark.parametrize("name", ["humor-cvae", "stcformer-cvae"])
def test_a_sampling_model_is_diverse_and_best_of_k_beats_its_first_sample(walking, name):
    model = _model(name).train()
    result = _evaluate(model, walking, seed=3)
    assert model.training, "the evaluation restores the train/eval mode"
    assert result["sampler"] == MODEL_SAMPLER and result["k"] == K and result["seed"] == 3
    assert result["apd"] > 0.0
    # the same draws, by hand: the sample_fn of the task with the same seed on the same (single) batch
    windows = _windows(walking)
    sample_fn, _ = make_sample_fn(model, walking.skeleton, 25, seed=3)
    drawn = sample_fn(windows[:, :10], K)
    assert drawn.shape == (K, 10, 25, 32, 3)
    joints = list(H36M_SKELETON.predicted)
    per_sample_ade = pose_error(drawn[..., joints, :], windows[:, 10:, joints]).mean(dim=-1)  # [K, B]
    assert result["ade"] == pytest.approx(float(per_sample_ade.amin(dim=0).mean()), rel=1e-5)
    assert result["ade"] <= float(per_sample_ade[0].mean())
    assert result["fde"] <= result["fde_by_horizon_mm"]["1000"] + 1e-9


@pytest.mark.parametrize("name", ["humor-cvae", "stcformer-cvae"])
def test_the_same_seed_gives_the_same_figures_and_another_seed_others(walking, name):
    model = _model(name)
    first, again, other = (_evaluate(model, walking, seed=s) for s in (0, 0, 1))
    assert first == again
    assert other["apd"] != first["apd"] and other["ade"] != first["ade"]


def test_a_model_with_a_shorter_output_is_rolled_out_sample_by_sample(walking):
    model = _model("humor-cvae", output_frames=10)
    windows = _windows(walking)[:3]
    sample_fn, sampler = make_sample_fn(model, walking.skeleton, 25, seed=0)
    drawn = sample_fn(windows[:, :10], K)
    assert sampler == MODEL_SAMPLER and drawn.shape == (K, 3, 25, 32, 3)
    skeleton = walking.skeleton
    for dst, src in skeleton.copies:
        assert torch.equal(drawn[:, :, :, dst], drawn[:, :, :, src])
    for joint in skeleton.unpredicted_joints():  # from the last observed pose, as the deterministic wrapper
        assert torch.equal(drawn[:, :, :, joint], windows[None, :, 9:10, joint].expand(K, 3, 25, 3))
    assert (drawn[0] - drawn[1]).abs().amax() > 0


def test_the_report_and_results_table_say_what_the_figures_are(walking):
    model = _evaluate(_model("humor-cvae"), walking)
    baseline = _evaluate(_model("zero-velocity"), walking)
    text = TASK.report(model, "humor-cvae", per_action=True)
    for expected in ("humor-cvae on synthetic / val, protocol test-stochastic-10-25 v1: 10 windows, K = 4",
                     "K = 4, not the protocol's 50", "within 500 mm", "22 joints of the h36m skeleton at 25 fps",
                     "not DLow's setting", "not MPJPE", "| model", "APD", "MMADE", "MMFDE", "MPJPE mean sample",
                     "ADE, best of 4 (first h frames)", "FDE, best of 4 (frame h)",
                     "MPJPE of the mean of the 4 samples", "MPJPE of the first sample", "1000 ms",
                     "sampler: model.sample", "no per-action figures"):
        assert expected in text, expected
    table = TASK.results_table({"humor-cvae": model, "zero-velocity": baseline})
    lines = table.splitlines()
    assert lines[0].startswith("DLow's metrics (mm) on synthetic / val, protocol test-stochastic-10-25, 10 windows")
    assert "ADE, best of K (first h frames) (mm)" in table and "sampler:" not in table
    assert sum(line.startswith("| zero-velocity") for line in lines) == 2  # a summary row and an ADE-per-horizon row
    row = TASK.validation_row(model)
    assert set(row) >= {"apd_mm", "ade_mm", "mmfde_mm", "mpjpe_first_sample_avg_mm"}
    deterministic = TASK.evaluate(_model("zero-velocity"), walking, DETERMINISTIC, device="cpu", batch_size=64)
    with pytest.raises(ValueError, match="stochastic and deterministic"):
        TASK.results_table({"humor-cvae": model, "zero-velocity": deterministic})


def test_a_named_stochastic_protocol_runs_through_evaluate_source():
    result = evaluate_source(model_name="zero-velocity", protocol="h36m-stochastic-10-25", actions=("walking",),
                             device="cpu", options={"samples": 2, "seed": 5})
    assert result["protocol"] == "h36m-stochastic-10-25" and result["protocol_version"] == 1
    assert (result["k"], result["k_protocol"], result["k_overridden"], result["seed"]) == (2, 50, True, 5)
    assert (result["model"], result["dataset"], result["split"], result["num_windows"]) == ("zero-velocity",
                                                                                           "synthetic", "val", 256)
    assert result["multimodal_threshold_mm"] == 500.0 and result["apd"] == 0.0


def test_crisscross_eval_of_a_checkpoint_under_a_stochastic_protocol(tmp_path, capsys):
    model = _model("humor-cvae")
    meta = {"skeleton": "h36m", "predicted_joints": list(H36M_SKELETON.predicted), "input_frames": 10,
            "output_frames": 25, "fps": 25.0, "units": "metres"}
    ckpt = save_checkpoint(tmp_path / "humor.pt", {"model_name": "humor-cvae", "model_args": TINY["humor-cvae"],
                                                   "config": {}, "meta": meta, "model_state": model.state_dict()})
    out = tmp_path / "eval.json"
    assert main(["eval", str(ckpt), "--protocol", "h36m-stochastic-10-25", "--samples", "2", "--actions", "walking",
                 "--device", "cpu", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "humor-cvae on synthetic / val, protocol h36m-stochastic-10-25 v1: 256 windows, K = 2" in text
    assert "ADE, best of 2 (first h frames)" in text
    result = json.loads(out.read_text())
    assert result["model"] == "humor-cvae" and result["checkpoint"] == str(ckpt) and result["apd"] > 0


def test_the_dlow_protocol_without_its_data_loader_is_one_clear_error(capsys):
    with pytest.raises(ValueError, match=r"h36m-stochastic-25-100.*no data loader provides one yet"):
        TASK.resolve_protocol("synthetic", 25, 100, "h36m-stochastic-25-100")
    assert main(["eval", "--model", "zero-velocity", "--protocol", "h36m-stochastic-25-100"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "50 Hz on the h36m17 skeleton" in err and "lifting task only" in err
    assert "Traceback" not in err


def test_samples_and_seed_are_refused_under_a_deterministic_protocol(walking, capsys):
    assert main(["eval", "--model", "zero-velocity", "--protocol", "synthetic-10-25", "--samples", "3"]) == 2
    assert "--samples applies to stochastic protocols only" in capsys.readouterr().err
    with pytest.raises(ValueError, match="stochastic protocols only"):
        TASK.evaluate(_model("zero-velocity"), walking, DETERMINISTIC, device="cpu", batch_size=8, seed=1)


def test_a_stochastic_validation_protocol_needs_a_best_of_k_selection_figure_before_any_data_is_loaded():
    stochastic = TASK.resolve_protocol("synthetic", 10, 25, "h36m-stochastic-10-25")
    with pytest.raises(ConfigError, match=r"^eval.select_metric: protocol h36m-stochastic-10-25 is stochastic.*"
                                          r"eval.select_metric=ade"):
        TASK.check_select_metric(stochastic, None)
    for path in ("ade", "mmfde_mm", "ade_by_horizon.1000", "mpjpe_first_sample_by_horizon_mm.avg"):
        TASK.check_select_metric(stochastic, path)
    with pytest.raises(ConfigError, match=r"'apd'.*APD is a diversity"):
        TASK.check_select_metric(stochastic, "apd")
    for path in ("ade_by_horizon.999", f"{PREDICTED_JOINTS_KEY}.mean.avg", "ade.avg"):
        with pytest.raises(ConfigError, match=rf"^eval.select_metric: '{path}' is no error of a stochastic result"):
            TASK.check_select_metric(stochastic, path)
    deterministic = TASK.resolve_protocol("synthetic", 10, 25, "h36m-10-25-256")
    for path in (None, f"{PREDICTED_JOINTS_KEY}.mean.400", "mpjpe32_mm.per_action.walking.avg"):
        TASK.check_select_metric(deterministic, path)
    for path in ("ade", f"{PREDICTED_JOINTS_KEY}.mean", f"{PREDICTED_JOINTS_KEY}.mean.420"):
        with pytest.raises(ConfigError, match=rf"'{path}' is no figure of a deterministic result under h36m-10-25"):
            TASK.check_select_metric(deterministic, path)


def test_training_under_a_stochastic_protocol_fails_at_once_without_and_selects_by_ade_with_a_figure(tmp_path,
                                                                                                     capsys):
    base = ["train", "--config", "configs/forecast/synthetic_small.yaml", "model.name=humor-cvae",
            "model.args={latent_size: 4, prior_hidden: [16], posterior_hidden: [16], decoder_hidden: [16]}",
            "eval.protocol=h36m-stochastic-10-25", "data.actions=[walking]", "train.max_steps=2", "train.epochs=1",
            "train.progress=false", f"track.root={tmp_path}", "track.name=stoch"]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eval.select_metric: protocol h36m-stochastic-10-25 is stochastic" in err
    assert not (tmp_path / "stoch").exists()  # no run folder: it failed before the data load
    assert main([*base, "eval.select_metric=ade"]) == 0
    (run,) = (tmp_path / "stoch").iterdir()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [row for row in rows if "val/ade" in row]
    assert len(val) == 1 and val[0]["val/ade"] == val[0]["val/ade_mm"] > 0 and val[0]["val/apd_mm"] > 0
    assert (run / "checkpoints" / "best.pt").is_file()
