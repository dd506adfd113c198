"""The bench, profile, attention and animate commands end to end on the embedded data, at tiny sizes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest
from PIL import Image

from crisscross.benchmarking.table import ROW_COLUMNS
from crisscross.cli.main import main

pytestmark = pytest.mark.integration

TINY_MODEL = "stcformer:dim=16:enc_blocks=1:dec_blocks=1"
TINY_CFG = ["model.name=stcformer", "model.args.dim=16", "model.args.enc_blocks=1", "model.args.dec_blocks=1",
            "train.batch_size=32", "train.progress=false", "train.num_threads=1", "train.max_steps=2",
            "train.epochs=1", "track.tensorboard=false"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from crisscross.config import load_config
    from crisscross.training.loop import fit

    root = tmp_path_factory.mktemp("runs")
    return fit(load_config(None, [*TINY_CFG, f"track.root={root}"])).run_dir


def _image_ok(path: Path, shape: tuple[int, int] | None = None) -> None:
    image = mpimg.imread(path)
    assert image[..., :3].std() > 0.05, f"{path} is blank"
    if shape is not None:
        assert image.shape[:2] == shape, path


def test_bench_writes_one_row_per_configuration(tmp_path, capsys) -> None:
    out = tmp_path / "bench.csv"
    argv = ["bench", "--models", f"{TINY_MODEL},zero-velocity", "--batch-sizes", "2", "--precisions",
            "fp32,bf16", "--mode", "train,infer", "--warmup", "1", "--iters", "2", "--threads", "1",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "multiply-add = 2 FLOPs" in printed and "| model" in printed
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == ROW_COLUMNS
    assert len(rows) == 2 * 1 * 2 * 2  # models x batch sizes x precisions x modes
    tiny = [r for r in rows if r["model"] == TINY_MODEL]
    assert all(r["status"] == "ok" for r in tiny), [r["message"] for r in tiny]
    assert all(float(r["samples_per_s"]) > 0 and float(r["gflops_per_sample"]) > 0 for r in tiny)
    assert {r["status"] for r in rows if r["model"] == "zero-velocity" and r["mode"] == "train"} == {"skipped"}
    assert main(["bench", "--models", "zero-velocity", "--batch-sizes", "2", "--mode", "infer", "--iters", "1",
                 "--out", str(out)]) == 0  # appends under the same header
    with open(out, newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows) + 1


def test_bench_config_file_and_isolation(tmp_path, capsys) -> None:
    config = tmp_path / "b.yaml"
    config.write_text(f"models: ['{TINY_MODEL}']\nbatch_sizes: [2]\nmodes: [infer]\nwarmup: 1\niters: 2\n"
                      "threads: 1\ndevice: cpu\n")
    out = tmp_path / "bench.jsonl"
    assert main(["bench", "--config", str(config), "--isolate", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["status"] == "ok" and "fresh process" in rows[0]["peak_mem_method"]


def test_bench_bad_input_is_one_line(capsys) -> None:
    assert main(["bench", "--models", "nope", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("crisscross bench: error: unknown model 'nope'") and "\n" not in err
    assert main(["bench", "--models", "simlpe", "--precisions", "fp8"]) == 2


def test_profile_run_folder(run_dir, capsys) -> None:
    assert main(["profile", str(run_dir), "--batch-size", "16", "--steps", "3", "--warmup", "1",
                 "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    for phase in ("data", "forward", "loss", "backward", "optimizer", "step (measured wall time)"):
        assert phase in printed
    folders = sorted((run_dir / "profiles").glob("profile-*"))
    assert len(folders) == 1
    trace = json.loads((folders[0] / "trace.json").read_text())
    assert trace["traceEvents"]
    summary = json.loads((folders[0] / "profile.json").read_text())
    assert summary["phase_sum_ms"] <= summary["step_ms"] * 1.01 + 0.05
    assert main(["profile", str(run_dir), "--batch-size", "8", "--steps", "1", "--warmup", "0"]) == 0
    assert len(list((run_dir / "profiles").glob("profile-*"))) == 2  # a new folder each time


def test_attention_model_by_name_and_run(run_dir, tmp_path, capsys) -> None:
    out = tmp_path / "att"
    assert main(["attention", "--model", TINY_MODEL, "--samples", "0", "--out", str(out)]) == 0
    pngs = sorted(out.glob("sample000_*.png"))
    assert len(pngs) == 6  # encoder self, decoder self and cross; spatial and temporal each
    _image_ok(pngs[0])
    _image_ok(out / "spatial_temporal_distance.png")
    with open(out / "spatial_temporal_distance.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == 3 * 2 * 2  # calls x heads x (sample 0 + mean)
    assert main(["attention", str(run_dir), "--samples", "1"]) == 0
    assert len(list((run_dir / "attention").glob("sample001_*.png"))) == 6
    assert main(["attention", "--model", TINY_MODEL, "--samples", "0", "--out", str(out)]) == 2  # not empty
    capsys.readouterr()
    assert main(["attention", "--model", "simlpe"]) == 2  # no attention: one-line error
    assert "no attention layers" in capsys.readouterr().err


def test_animate_run_folder(run_dir, tmp_path) -> None:
    out = tmp_path / "clip.gif"
    assert main(["animate", str(run_dir), "--sample", "4", "--out", str(out)]) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 35 and gif.size == (640, 336)
    _image_ok(tmp_path / "clip_per_joint.png", (400, 1000))
    _image_ok(tmp_path / "clip_per_horizon.png", (400, 600))
    assert main(["animate", str(run_dir), "--sample", "4", "--out", str(out)]) == 2  # never overwrites
    assert main(["animate", "--model", TINY_MODEL, "--sample", "100000", "--no-errors",
                 "--out", str(tmp_path / "x.gif")]) == 2  # out of range: one-line error
