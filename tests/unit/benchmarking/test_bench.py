"""The benchmark sweep: specs, one row per configuration, failures recorded, files appended, the table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from crisscross.benchmarking.bench import (
    BenchCell,
    BenchSpec,
    load_bench_config,
    run_cell,
    run_cell_isolated,
    run_sweep,
)
from crisscross.benchmarking.table import ROW_COLUMNS, append_rows, best_of_repeats, format_table, precision_speedups
from crisscross.models.registry import parse_model_spec

TINY = (("dim", 16), ("enc_blocks", 1), ("dec_blocks", 1))


def _cell(**kw) -> BenchCell:
    values = dict(model="stcformer", model_args=TINY, mode="train", batch_size=2, warmup=1, iters=2, threads=1)
    values.update(kw)
    return BenchCell(**values)


def test_model_specs_parse_overrides() -> None:
    spec = parse_model_spec("stcformer:dim=128:heads=4:norm=post")
    assert spec.name == "stcformer" and dict(spec.args) == {"dim": 128, "heads": 4, "norm": "post"}
    assert spec.label == "stcformer:dim=128:heads=4:norm=post"
    assert parse_model_spec({"name": "simlpe", "args": {"dim": 48}}).label == "simlpe:dim=48"
    for bad in ("", ":dim=3", "stcformer:dim"):
        with pytest.raises(ValueError):
            parse_model_spec(bad)


def test_spec_expands_the_product_and_validates() -> None:
    spec = BenchSpec(models=[parse_model_spec("simlpe"), parse_model_spec("stcformer")], batch_sizes=[1, 8],
                     precisions=["fp32", "bf16"], compile=[False], modes=["train", "infer"])
    cells = spec.cells()
    assert len(cells) == 2 * 2 * 2 * 2
    assert (cells[0].model, cells[0].batch_size, cells[0].precision, cells[0].mode) == ("simlpe", 1, "fp32", "train")
    assert cells[1].mode == "infer"
    with pytest.raises(ValueError, match="precision"):
        BenchSpec(models=spec.models, precisions=["fp8"]).cells()
    with pytest.raises(ValueError, match="mode"):
        BenchSpec(models=spec.models, modes=["eval"]).cells()
    with pytest.raises(KeyError, match="unknown model"):
        BenchSpec(models=[parse_model_spec("nope")]).cells()


@pytest.mark.parametrize("mode", ["train", "infer"])
def test_run_cell_fills_every_column(mode: str) -> None:
    row = run_cell(_cell(mode=mode))
    assert set(row) == set(ROW_COLUMNS)
    assert row["status"] == "ok", row["message"]
    assert row["parameters"] > 0 and row["gflops_per_sample"] > 0
    assert row["samples_per_s"] == pytest.approx(2 / (row["latency_ms_median"] / 1000))
    assert row["achieved_gflops_per_s"] == pytest.approx(row["gflops_per_sample"] * row["samples_per_s"])
    assert row["mfu_pct"] is None  # set by run_sweep from the sweep's ceilings, not by the cell
    assert row["latency_ms_p10"] <= row["latency_ms_median"] <= row["latency_ms_p90"]
    assert row["peak_mem_mb"] is not None and row["peak_mem_mb"] >= 0
    assert row["torch"] == torch.__version__ and row["device"] == "cpu" and row["timestamp"]
    assert json.loads(row["model_args"]) == {"dim": 16, "enc_blocks": 1, "dec_blocks": 1}


def test_failures_are_rows_and_the_sweep_goes_on() -> None:
    bad_args = _cell(model_args=(("no_such_argument", 1),))
    no_cuda = _cell(device="cuda:7") if not torch.cuda.is_available() else _cell(batch_size=10**9)
    weightless = _cell(model="zero-velocity", model_args=())
    rows = run_sweep([bad_args, no_cuda, weightless, _cell(mode="infer")])
    assert [r["status"] for r in rows] == ["error", "error", "skipped", "ok"]
    assert "no_such_argument" in rows[0]["message"] and "\n" not in rows[0]["message"]
    assert rows[2]["message"] == "model has no trainable parameters"


def test_isolated_cell_runs_in_a_fresh_process() -> None:
    row = run_cell_isolated(_cell(mode="infer"), timeout_s=300)
    assert row["status"] == "ok", row["message"]
    assert row["peak_mem_method"] is None or "fresh process" in row["peak_mem_method"]


def test_rows_append_to_csv_and_jsonl(tmp_path) -> None:
    rows = [run_cell(_cell(model="zero-velocity", model_args=(), mode=m)) for m in ("train", "infer")]
    path = append_rows(tmp_path / "bench.csv", rows[:1])
    append_rows(path, rows[1:])
    with open(path, newline="") as fh:
        table = list(csv.reader(fh))
    assert tuple(table[0]) == ROW_COLUMNS and len(table) == 3
    assert [r[ROW_COLUMNS.index("mode")] for r in table[1:]] == ["train", "infer"]
    jsonl = append_rows(tmp_path / "bench.jsonl", rows)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [tuple(line) for line in lines] == [ROW_COLUMNS, ROW_COLUMNS]
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other columns"):
        append_rows(other, rows)
    with pytest.raises(ValueError, match=r"\.csv or \.jsonl"):
        append_rows(tmp_path / "bench.txt", rows)


def test_table_states_the_flop_convention() -> None:
    rows = [run_cell(_cell(model="zero-velocity", model_args=(), mode=m)) for m in ("train", "infer")]
    text = format_table(rows)
    assert "multiply-add = 2 FLOPs" in text
    assert "zero-velocity" in text and "skipped" in text


def test_bench_config_files_load(tmp_path) -> None:
    root = Path(__file__).resolve().parents[3] / "configs" / "bench"
    for path in sorted(root.glob("*.yaml")):
        values = load_bench_config(path)
        assert values["models"], path
        BenchSpec(**{k: v for k, v in values.items() if k in BenchSpec.__dataclass_fields__}).validate()
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [simlpe]\nbatchsize: 3\n")
    with pytest.raises(ValueError, match="unknown keys batchsize"):
        load_bench_config(bad)


def test_repeats_keep_the_fastest_pass_and_speedups() -> None:
    cells = [_cell(model="zero-velocity", model_args=(), mode="infer", precision=p) for p in ("fp32", "bf16")]
    rows = run_sweep(cells, repeats=2)
    assert [r["repeat"] for r in rows] == [0, 0, 1, 1]
    best = best_of_repeats(rows)
    assert len(best) == 2
    for b in best:
        same = [r for r in rows if r["precision"] == b["precision"]]
        assert b["latency_ms_median"] == min(r["latency_ms_median"] for r in same)
    fake = [dict(best[0], latency_ms_median=10.0), dict(best[1], latency_ms_median=4.0)]
    table = precision_speedups(fake)
    assert "bf16 speed-up" in table and "2.50x" in table
    with pytest.raises(ValueError, match="repeats"):
        run_sweep(cells, repeats=0)


@pytest.mark.parametrize(("model", "output_frames"), [("stcformer-lift-small", 1), ("stcformer-lift-small", 9),
                                                      ("videopose3d-small", 1), ("simple-baseline-small", 1)])
@pytest.mark.parametrize("mode", ["train", "infer"])
def test_lifters_bench_on_lifting_batches(model: str, output_frames: int, mode: str) -> None:
    # BatchNorm lifters (videopose3d, simple-baseline) train on the lifting task's [B, R, J, 5] batches
    row = run_cell(BenchCell(model=model, model_args=(), mode=mode, batch_size=4, input_frames=9,
                             output_frames=output_frames,
                             warmup=1, iters=2, threads=1))
    assert row["status"] == "ok", row["message"]
    assert row["parameters"] > 0 and row["gflops_per_sample"] > 0
    if model == "stcformer-lift-small" and mode == "infer":
        # the criss-cross encoder runs over every frame either way: one output frame costs nearly as much as nine
        assert row["gflops_per_sample"] > 0.5 * run_cell(BenchCell(
            model=model, model_args=(), mode=mode, batch_size=4, input_frames=9, output_frames=9, warmup=1, iters=2,
            threads=1))["gflops_per_sample"]
