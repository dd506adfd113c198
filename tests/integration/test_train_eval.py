"""End to end on the embedded data: train a few steps, evaluate, resume exactly, DDP on CPU with gloo."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from crisscross.config import load_config
from crisscross.runs.checkpoint import load_checkpoint
from crisscross.training.loop import TrainingDiverged, fit

pytestmark = pytest.mark.integration

TINY = ["model.name=stcformer", "model.args.dim=16", "model.args.enc_blocks=1", "model.args.dec_blocks=1",
        "train.batch_size=32", "train.progress=false", "train.log_every_steps=2", "train.num_threads=1"]


def _cfg(tmp_path, *extra):
    return load_config(None, [*TINY, f"track.root={tmp_path}", "track.tensorboard=false", *extra])


def test_train_few_steps_then_evaluate(tmp_path):
    from crisscross.tasks.sources import evaluate_source

    result = fit(_cfg(tmp_path, "train.epochs=2", "train.epoch_fraction=0.05"))
    run = result.run_dir
    for name in ("config.yaml", "env.json", "status.json", "metrics.jsonl", "eval.json", "checkpoints/best.pt",
                 "checkpoints/last.pt"):
        assert (run / name).exists(), name
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    ev = json.loads((run / "eval.json").read_text())
    assert set(ev["mpjpe22_mm"]["mean"]) >= {"80", "400", "1000", "avg"}
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum("epoch" in r for r in rows) == 2
    # a checkpoint is usable alone and re-evaluates to the same numbers
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["meta"]["input_frames"] == 10 and ckpt["meta"]["skeleton"] == "h36m"
    again = evaluate_source(str(run))
    assert again["mpjpe22_mm"]["mean"]["avg"] == pytest.approx(ev["mpjpe22_mm"]["mean"]["avg"], rel=1e-6)

    # an exported (release) checkpoint is small, lacks resume state and evaluates to the same numbers
    from crisscross.cli.main import main

    exported = tmp_path / "release.pt"
    assert main(["export", str(run), "--output", str(exported)]) == 0
    small = load_checkpoint(exported)
    assert "optimizer_state" not in small and "rng_cpu" not in small
    assert small["meta"]["training"]["step"] == ckpt["train_state"]["step"]
    assert exported.stat().st_size < (run / "checkpoints" / "best.pt").stat().st_size
    from_release = evaluate_source(str(exported))
    assert from_release["mpjpe22_mm"]["mean"]["avg"] == pytest.approx(ev["mpjpe22_mm"]["mean"]["avg"], rel=1e-6)
    assert main(["export", str(run), "--output", str(exported)]) == 2  # one line, the file is kept
    assert load_checkpoint(exported)["meta"] == small["meta"]

    # several sources are averaged; a run averaged with its own release evaluates to the same numbers
    soup = tmp_path / "soup.pt"
    assert main(["export", str(run), str(exported), "--output", str(soup)]) == 0
    assert len(load_checkpoint(soup)["meta"]["averaged_from"]) == 2
    from_soup = evaluate_source(str(soup))
    assert from_soup["mpjpe22_mm"]["mean"]["avg"] == pytest.approx(ev["mpjpe22_mm"]["mean"]["avg"], rel=1e-5)


@pytest.mark.parametrize("extra, stopped_by, epochs", [
    (["train.epochs=3"], "epochs", 3),
    (["train.epochs=3", "train.time_budget_s=1e-6"], "time_budget", 1),  # reached within the first epoch
    (["train.epochs=3", "train.time_budget_s=1e6"], "epochs", 3),
    (["train.epochs=3", "train.max_steps=3"], "max_steps", 1),
])
def test_training_records_why_it_stopped(tmp_path, extra, stopped_by, epochs):
    result = fit(_cfg(tmp_path, "train.epoch_fraction=0.02", *extra))
    status = json.loads((result.run_dir / "status.json").read_text())
    assert result.status == status["status"] == "completed"
    assert result.stopped_by == status["stopped_by"] == stopped_by
    assert result.epochs == status["epoch"] == epochs
    assert (result.run_dir / "eval.json").exists() and (result.run_dir / "checkpoints" / "last.pt").exists()


def test_runs_never_overwrite(tmp_path):
    a = fit(_cfg(tmp_path, "train.max_steps=1", "train.epochs=1"))
    b = fit(_cfg(tmp_path, "train.max_steps=1", "train.epochs=1"))
    assert a.run_dir != b.run_dir and a.run_dir.parent == b.run_dir.parent


@pytest.mark.slow
@pytest.mark.parametrize("extra", [
    [],
    ["model.args.dropout=0.1", "data.augment.mirror=true", "data.augment.rotate=true", "train.ema_decay=0.9"],
])
def test_exact_resume(tmp_path, extra):
    """A run stopped mid-epoch and resumed ends with the same weights as one never interrupted."""
    args = ["train.epochs=2", "train.epoch_fraction=0.1", "seed=3", "train.deterministic=true", *extra]
    full = fit(_cfg(tmp_path / "a", *args))
    steps = full.steps
    assert steps >= 4
    part = fit(_cfg(tmp_path / "b", *args), stop_after_steps=steps // 2 + 1)  # stops inside epoch 2
    assert part.status == "interrupted"
    assert json.loads((part.run_dir / "status.json").read_text())["status"] == "interrupted"
    resumed = fit(None, resume=part.run_dir)
    assert resumed.run_dir == part.run_dir and resumed.steps == steps
    c_full = load_checkpoint(full.run_dir / "checkpoints" / "last.pt")
    c_res = load_checkpoint(part.run_dir / "checkpoints" / "last.pt")
    for weights in ("model_state", "ema_state"):  # the EMA too: it is what evaluation and export use
        assert (c_full[weights] is None) == (c_res[weights] is None), weights
        for k in c_full[weights] or {}:
            torch.testing.assert_close(c_res[weights][k], c_full[weights][k], rtol=0, atol=0, msg=f"{weights} {k}")
    assert c_res["ema_updates"] == c_full["ema_updates"] == (steps if "train.ema_decay=0.9" in extra else None)


def test_a_completed_run_lengthened_on_resume_equals_the_longer_run(tmp_path, capsys):
    """`crisscross train --resume RUN train.epochs=N` trains a completed run on: with a schedule that does not
    decay over the run's length, its weights and EMA end as those of a run started with N epochs."""
    from crisscross.cli.main import main

    args = ["train.epoch_fraction=0.03", "seed=5", "train.deterministic=true", "train.ema_decay=0.9",
            "sched.name=constant", "sched.warmup_steps=2"]
    longer = fit(_cfg(tmp_path / "a", *args, "train.epochs=2"))
    short = fit(_cfg(tmp_path / "b", *args, "train.epochs=1"))
    assert short.status == "completed" and short.steps * 2 == longer.steps
    capsys.readouterr()
    assert main(["train", "--resume", str(short.run_dir), "train.epochs=2", "--no-baseline"]) == 0
    printed = capsys.readouterr()
    assert f"at step {short.steps}/{longer.steps}" in printed.out + printed.err
    c_long = load_checkpoint(longer.run_dir / "checkpoints" / "last.pt")
    c_ext = load_checkpoint(short.run_dir / "checkpoints" / "last.pt")
    for weights in ("model_state", "ema_state"):
        for k in c_long[weights]:
            torch.testing.assert_close(c_ext[weights][k], c_long[weights][k], rtol=0, atol=0, msg=f"{weights} {k}")
    assert c_ext["config"]["train"]["epochs"] == 2 and "epochs: 2" in (short.run_dir / "config.yaml").read_text()
    epochs = [json.loads(line)["epoch"] for line in (short.run_dir / "metrics.jsonl").read_text().splitlines()
              if "epoch" in json.loads(line)]
    assert epochs == [1, 2]
    # anything but the run's length is refused in one line, exit code 2, and the run is left as it was
    before = (short.run_dir / "checkpoints" / "last.pt").read_bytes()
    assert main(["train", "--resume", str(short.run_dir), "optim.lr=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "optim.lr=1" in err and "train.init_from=" in err
    cosine = fit(_cfg(tmp_path / "c", *args[:4], "sched.name=warmup_cosine", "sched.warmup_steps=1",
                      "train.epochs=1"))
    assert main(["train", "--resume", str(cosine.run_dir), "train.epochs=2"]) == 2
    assert "sched.name=warmup_cosine decays over the run's length" in capsys.readouterr().err
    assert (short.run_dir / "checkpoints" / "last.pt").read_bytes() == before


def test_divergence_is_reported_and_recorded(tmp_path):
    cfg = _cfg(tmp_path, "optim.name=sgd", "optim.lr=1e12", "train.max_steps=6", "sched.name=constant")
    with pytest.raises(TrainingDiverged):
        fit(cfg)
    status = json.loads(next(tmp_path.glob("*/*/status.json")).read_text())
    assert status["status"] == "failed" and "TrainingDiverged" in status["error"]


def test_weight_free_model_evaluates_without_training(tmp_path):
    result = fit(_cfg(tmp_path, "model.name=zero-velocity", "model.args={}"))
    assert result.steps == 0 and result.eval["mpjpe22_mm"]["mean"]["avg"] > 0


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_processes_on_cpu(tmp_path):
    """torchrun with 2 gloo processes trains, reduces metrics and writes checkpoints on rank 0 only."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "crisscross.cli.main", "train", *TINY, f"track.root={tmp_path}", "track.tensorboard=false",
           "train.epochs=1", "train.epoch_fraction=0.02", "train.device=cpu", "--no-baseline"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list(Path(tmp_path).glob("*/*/checkpoints/last.pt"))
    assert len(runs) == 1, "rank 0 alone writes one run folder"
    env_json = json.loads((runs[0].parent.parent / "env.json").read_text())
    assert env_json["world_size"] == 2


def test_sigterm_checkpoints_and_marks_interrupted(tmp_path):
    """A SIGTERM mid-training finishes the step, writes last.pt and leaves a resumable, interrupted run."""
    import signal
    import time as _time

    cmd = [sys.executable, "-m", "crisscross.cli.main", "train", *TINY, f"track.root={tmp_path}",
           "track.tensorboard=false", "train.epochs=50", "--no-baseline"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = _time.time() + 120
    metrics = None
    while _time.time() < deadline:
        found = list(Path(tmp_path).glob("*/*/metrics.jsonl"))
        if found and found[0].stat().st_size > 0:
            metrics = found[0]
            break
        _time.sleep(0.2)
    assert metrics is not None, "training never logged a step"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]  # 143, the shell's code for a SIGTERM stop
    run = metrics.parent
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert (run / "checkpoints" / "last.pt").exists()
    assert f"crisscross train --resume {run}" in out


def test_cli_resume_of_a_run_on_a_data_folder_prints_the_baseline(tmp_path, capsys):
    """`crisscross train --resume RUN` reads the data folder from the run, also for the zero-velocity baseline."""
    import numpy as np

    from crisscross.cli.main import main

    names, parents = ["Hips", "LeftHip", "LeftKnee", "RightHip", "RightKnee", "Neck"], [-1, 0, 1, 0, 3, 0]
    t = np.arange(1500)[:, None]
    wave = 40.0 * np.sin(t[:, :, None] / 7 + np.arange(6)[:, None])
    positions = np.zeros((1500, 6, 3)) + np.array([0, 900, 0]) + wave
    data = tmp_path / "recordings"
    data.mkdir()
    np.save(data / "take.npy", positions)
    (data / "skeleton.json").write_text(json.dumps({"joint_names": names, "parents": parents, "fps": 25}))
    cfg = _cfg(tmp_path / "runs", "data.dataset=npz", f"data.data_dir={data}", "train.epochs=2",
               "train.epoch_fraction=0.5")
    part = fit(cfg, stop_after_steps=2)
    assert part.status == "interrupted"
    capsys.readouterr()
    assert main(["train", "--resume", str(part.run_dir)]) == 0
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert any("zero-velocity" in line for line in table), out[-2000:]
    assert any(line.startswith("| stcformer") for line in table), out[-2000:]
    # the checkpoint carries the user skeleton, so it evaluates again without the training config's help
    from crisscross.tasks.sources import evaluate_source

    again = evaluate_source(str(part.run_dir), data_dir=str(data))
    recorded = json.loads((part.run_dir / "eval.json").read_text())
    assert again["mpjpe22_mm"]["mean"]["avg"] == pytest.approx(recorded["mpjpe22_mm"]["mean"]["avg"], rel=1e-5)
    assert again["joint_counts"]["mpjpe22_mm"] == 5  # every non-root joint of the 6-joint recording


def test_init_from_starts_a_new_run_from_trained_weights(tmp_path):
    """``train.init_from`` (fine-tuning) copies a run's evaluated weights into a fresh run; a mismatch is named."""
    from crisscross.runs.checkpoint import CheckpointError

    source = fit(_cfg(tmp_path / "src", "train.epochs=1", "train.max_steps=3"))
    source_weights = load_checkpoint(source.run_dir / "checkpoints" / "best.pt")["model_state"]
    # A vanishing learning rate leaves the copied weights in place, so the first update's result shows where it began.
    start = ["train.epochs=1", "train.max_steps=1", "optim.lr=1e-12", "sched.name=constant"]
    tuned = fit(_cfg(tmp_path / "ft", *start, f"train.init_from={source.run_dir}", "model.args.dropout=0.1"))
    fresh = fit(_cfg(tmp_path / "fresh", *start, "seed=5"))
    tuned_weights = load_checkpoint(tuned.run_dir / "checkpoints" / "last.pt")["model_state"]
    fresh_weights = load_checkpoint(fresh.run_dir / "checkpoints" / "last.pt")["model_state"]
    for key, value in source_weights.items():
        torch.testing.assert_close(tuned_weights[key], value, rtol=0, atol=1e-9, msg=key)
    assert max(float((fresh_weights[k] - v).abs().max()) for k, v in source_weights.items()) > 1e-3
    assert tuned.eval["mpjpe22_mm"]["mean"]["avg"] == pytest.approx(source.eval["mpjpe22_mm"]["mean"]["avg"],
                                                                     rel=1e-4)
    assert str(source.run_dir) in (tuned.run_dir / "config.yaml").read_text()  # the run records where it began

    with pytest.raises(CheckpointError, match=r"model\.args that differ: dim.*best\.pt|best\.pt.*dim"):
        fit(_cfg(tmp_path / "bad", *start, f"train.init_from={source.run_dir}", "model.args.dim=8"))
    with pytest.raises(CheckpointError, match="model_name='stcformer'.*'simlpe'"):
        fit(_cfg(tmp_path / "bad", *start, f"train.init_from={source.run_dir}", "model.name=simlpe",
                 "model.args={}"))
    with pytest.raises(CheckpointError, match="missing.pt is neither a run folder nor a checkpoint file"):
        fit(_cfg(tmp_path / "bad", *start, f"train.init_from={tmp_path / 'missing.pt'}"))


def test_a_cvae_warm_starts_from_its_deterministic_backbone(tmp_path):
    """``train.init_from`` a deterministic STCFormer run into ``stcformer-cvae``: the backbone's weights are copied,
    the latent parts start as built with a zero projection, so the first forecast is the backbone's."""
    from crisscross.runs.checkpoint import CheckpointError

    source = fit(_cfg(tmp_path / "src", "train.epochs=1", "train.max_steps=3"))
    source_weights = load_checkpoint(source.run_dir / "checkpoints" / "best.pt")["model_state"]
    start = ["train.epochs=1", "train.max_steps=1", "optim.lr=1e-12", "sched.name=constant"]
    cvae = fit(_cfg(tmp_path / "cvae", *start, "model.name=stcformer-cvae", f"train.init_from={source.run_dir}"))
    weights = load_checkpoint(cvae.run_dir / "checkpoints" / "last.pt")["model_state"]
    for key, value in source_weights.items():
        torch.testing.assert_close(weights[key], value, rtol=0, atol=1e-9, msg=key)
    assert float(weights["latent_embed.weight"].abs().max()) < 1e-9
    assert cvae.eval["mpjpe22_mm"]["mean"]["avg"] == pytest.approx(source.eval["mpjpe22_mm"]["mean"]["avg"],
                                                                    rel=1e-5)
    with pytest.raises(CheckpointError, match="model_name='stcformer'.*'humor-cvae'"):
        fit(_cfg(tmp_path / "bad", *start, "model.name=humor-cvae", "model.args={}",
                 f"train.init_from={source.run_dir}"))
