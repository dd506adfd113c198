"""Results tables in Markdown: parsing by hand-written cases, re-evaluation on the embedded data, the command."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest
import torch

from crisscross.cli.main import main
from crisscross.experiments import results_tables
from crisscross.experiments.results_tables import (
    ResultsTableError,
    combine_figures,
    evaluate_tables,
    find_mismatches,
    format_table,
    parse_results_tables,
    read_results_tables,
    resolve_weights,
)
from crisscross.tasks.sources import evaluate_source

REPO_ROOT = Path(__file__).resolve().parents[3]
SIMLPE_10 = "pretrained/h36m-simlpe-10in-seed0.pt"  # a committed checkpoint, evaluated on the embedded data
SIMLPE_10_SEEDS = tuple(f"pretrained/h36m-simlpe-10in-seed{seed}.pt" for seed in range(3))

PAGE = """# Results

Some prose with a | pipe.

<!-- results dataset=h36m split=val protocol=h36m-10-25-256 metric=mpjpe22_mm -->
| model | weights | 80 ms | 1000 ms | avg |
|---|---|---:|---:|---:|
| `stcformer` (seed 1) | `pretrained/a.pt` | **11.7** | 106.3 | 64.0 |
| `zero-velocity` | none | 24.1 | 127.8 | nan |
<!-- /results -->

<!-- stochastic-results dataset=h36m split=val protocol=p actions=walking seed=0 -->
| model | checkpoint | K | APD |
|---|---|---|---|
| `x` | `y.pt` | 50 | 1.0 |
<!-- /stochastic-results -->

<!-- lifting-results dataset=humaneva split=test protocol=humaneva-lift-27 -->
| model | weights | P1 | P2 |
|---|---|---:|---:|
| `videopose3d-small` | `pretrained/b.pt` | 26.1 | 20.9 |
<!-- /lifting-results -->
"""


def test_tables_are_read_with_their_attributes_figures_and_lines():
    forecast, lifting = parse_results_tables(PAGE, "page.md")  # the stochastic block is not a kind read here
    assert forecast.kind == "results" and forecast.where == "page.md:5"
    assert forecast.attrs == {"dataset": "h36m", "split": "val", "protocol": "h36m-10-25-256",
                              "metric": "mpjpe22_mm"}
    assert forecast.columns == ("80 ms", "1000 ms", "avg")
    first, second = forecast.rows
    assert (first.model, first.weights, first.line) == ("stcformer (seed 1)", "pretrained/a.pt", 8)
    assert first.figures == {"80": 11.7, "1000": 106.3, "avg": 64.0}  # bold is only emphasis
    assert first.printed_head == ("`stcformer` (seed 1)", "`pretrained/a.pt`")
    assert second.weights == "none" and math.isnan(second.figures["avg"])
    assert lifting.kind == "lifting-results" and lifting.rows[0].figures == {"P1": 26.1, "P2": 20.9}
    assert lifting.where == "page.md:18"


@pytest.mark.parametrize(("text", "message"), [
    ("<!-- results dataset=h36m split=val protocol=p -->\n| a |\n<!-- /results -->\n",
     r"t.md:1: the results block lacks metric"),
    ("<!-- results dataset=h36m split=val protocol=p metric -->\n", r"t.md:1: expected name=value attributes"),
    ("<!-- results dataset=h36m split=val protocol=p metric=m -->\n| model | weights | avg |\n|---|---|---:|\n",
     r"t.md:1: the results block is not closed by <!-- /results -->"),
    ("<!-- results dataset=h36m split=val protocol=p metric=m -->\n<!-- /results -->\n", r"t.md:1: .* no table rows"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| model | weights | avg |\n|---|---|---:|\n"
     "| `m` | none | 1.0 | 2.0 |\n<!-- /results -->\n", r"t.md:4: expected 3 cells, got 4"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| model | weights | avg |\n|---|---|---:|\n"
     "| `m` | none | - |\n<!-- /results -->\n", r"t.md:4: expected a figure in mm, got '-'"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| name | file | avg |\n|---|---|---:|\n"
     "| `m` | none | 1.0 |\n<!-- /results -->\n", r"t.md:2: expected the columns model \| weights"),
    ("<!-- lifting-results dataset=d split=test protocol=p -->\n| model | weights | P3 |\n|---|---|---:|\n"
     "| `m` | none | 1.0 |\n<!-- /lifting-results -->\n", r"t.md:2: unknown lifting column 'P3'"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| model | weights | 80 ms | avg |\n"
     "|---|---|---:|---:|\n| `m` | `a.pt` `b.pt` | 1.0 ± 0.1 | 2.0 |\n<!-- /results -->\n",
     r"t.md:4: a row over 2 checkpoints prints 'mean ± sd' in every column, got '2.0' in avg"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| model | weights | avg |\n|---|---|---:|\n"
     "| `m` | `a.pt` | 2.0 ± 0.1 |\n<!-- /results -->\n",
     r"t.md:4: '2.0 ± 0.1' in avg is a spread, which needs several checkpoints"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| model | weights | avg |\n|---|---|---:|\n"
     "| `m` | `a.pt` peer:simlpe | 2.0 ± 0.1 |\n<!-- /results -->\n",
     r"t.md:4: a row over several weights takes checkpoints only, got 'a.pt peer:simlpe'"),
    ("<!-- results dataset=d split=val protocol=p metric=m -->\n| model | weights | avg |\n|---|---|---:|\n"
     "| `m` | `a.pt` `b.pt` | 2.0 ± x |\n<!-- /results -->\n", r"t.md:4: expected a figure in mm, got '2.0 ± x'"),
])
def test_a_malformed_table_is_one_line_naming_file_and_line(text: str, message: str):
    with pytest.raises(ResultsTableError, match=message) as err:
        parse_results_tables(text, "t.md")
    assert "\n" not in str(err.value)


def test_a_file_without_tables_or_missing_is_refused(tmp_path: Path):
    (tmp_path / "plain.md").write_text("# nothing here\n")
    with pytest.raises(ResultsTableError, match="plain.md: no results tables"):
        read_results_tables(tmp_path / "plain.md")
    with pytest.raises(FileNotFoundError, match="gone.md: no such file"):
        read_results_tables(tmp_path / "gone.md")


def test_formatting_measured_figures_reads_back_as_them():
    table = parse_results_tables(PAGE, "page.md")[0]
    measured = [{"80": 11.66, "1000": 106.349, "avg": 63.95}, None]
    text = format_table(table, measured, split="test")
    assert text.splitlines()[0] == ("<!-- results dataset=h36m split=test protocol=h36m-10-25-256 "
                                    "metric=mpjpe22_mm -->")
    assert "| `zero-velocity` | none | n/a | n/a | n/a |" in text
    with pytest.raises(ResultsTableError, match="expected a figure in mm, got 'n/a'"):
        parse_results_tables(text, "out.md")
    again = parse_results_tables(format_table(table, [measured[0], {"80": 1.0, "1000": 2.0, "avg": 3.0}]), "o.md")[0]
    assert again.rows[0].figures == {"80": 11.7, "1000": 106.3, "avg": 64.0}  # rounded to the printed decimal
    assert [r.printed_head for r in again.rows] == [r.printed_head for r in table.rows]


def test_mismatches_use_half_the_last_printed_digit():
    table = parse_results_tables(PAGE, "page.md")[0]
    close = [{"80": 11.74, "1000": 106.26, "avg": 64.0}, {"80": 24.1, "1000": 127.8, "avg": float("nan")}]
    assert find_mismatches(table, close) == []
    far = [{"80": 11.76, "1000": 106.3, "avg": 64.0}, {"80": 24.1, "1000": 127.8, "avg": 90.7}]
    found = find_mismatches(table, far)
    assert [(m.where, m.column) for m in found] == [("page.md:8", "80 ms"), ("page.md:9", "avg")]
    assert math.isnan(found[1].printed) and found[1].measured == 90.7
    assert str(found[0]) == "page.md:8: stcformer (seed 1) (pretrained/a.pt), 80 ms: printed 11.7, measured 11.760"
    assert find_mismatches(table, [None, None]) == []  # rows not evaluated are not compared


SEEDS_PAGE = """<!-- results dataset=h36m split=val protocol=h36m-50-25-256 metric=mpjpe22_mm -->
| model | weights | 80 ms | avg |
|---|---|---:|---:|
| `simlpe` (3 seeds) | `p/s1.pt` `p/s2.pt` `p/s3.pt` | **9.944** ± 0.012 | 60.69 ± 0.1 |
| siMLPe (released weights) | `peer:simlpe` | 9.954 | 61.066 |
<!-- /results -->
"""


def test_a_seeds_row_reads_its_checkpoints_means_spreads_and_decimals():
    table = parse_results_tables(SEEDS_PAGE, "s.md")[0]
    seeds, released = table.rows
    assert seeds.checkpoints == ("p/s1.pt", "p/s2.pt", "p/s3.pt") and released.checkpoints == ("peer:simlpe",)
    assert seeds.figures == {"80": 9.944, "80 sd": 0.012, "avg": 60.69, "avg sd": 0.1}
    assert seeds.decimals == {"80": 3, "80 sd": 3, "avg": 2, "avg sd": 1}
    assert released.figures == {"80": 9.954, "avg": 61.066} and released.printed_decimals("avg") == 3


def test_several_checkpoints_combine_into_mean_and_sample_spread():
    combined = combine_figures([{"80": 1.0, "avg": 10.0}, {"80": 2.0, "avg": 10.0}, {"80": 4.0, "avg": 13.0}])
    assert combined["80"] == pytest.approx(7.0 / 3.0) and combined["avg"] == pytest.approx(11.0)
    # sample standard deviation (n - 1): squared deviations 16/9 + 1/9 + 25/9 = 42/9 over 2
    assert combined["80 sd"] == pytest.approx(math.sqrt(21.0 / 9.0))
    assert combined["avg sd"] == pytest.approx(math.sqrt(3.0))
    assert combine_figures([{"80": 1.5}]) == {"80": 1.5}  # one checkpoint: its figures, no spread


def test_seeds_rows_and_three_decimals_are_checked_to_their_last_printed_digit():
    table = parse_results_tables(SEEDS_PAGE, "s.md")[0]
    close = [{"80": 9.9444, "80 sd": 0.0116, "avg": 60.694, "avg sd": 0.14}, {"80": 9.9536, "avg": 61.0664}]
    assert find_mismatches(table, close) == []
    far = [{"80": 9.9452, "80 sd": 0.0131, "avg": 60.69, "avg sd": 0.1}, {"80": 9.954, "avg": 61.0672}]
    assert [(m.where, m.column) for m in find_mismatches(table, far)] == [
        ("s.md:4", "80 ms"), ("s.md:4", "80 ms sd"), ("s.md:5", "avg")]
    text = format_table(table, close)
    assert "| `simlpe` (3 seeds) | `p/s1.pt` `p/s2.pt` `p/s3.pt` | 9.944 ± 0.012 | 60.69 ± 0.1 |" in text
    assert "| siMLPe (released weights) | `peer:simlpe` | 9.954 | 61.066 |" in text
    assert parse_results_tables(text, "o.md")[0].rows[0].figures == {"80": 9.944, "80 sd": 0.012, "avg": 60.69,
                                                                       "avg sd": 0.1}


def test_weights_are_found_from_the_working_directory_or_a_folder_above_the_file(tmp_path: Path, monkeypatch):
    (tmp_path / "repo" / "pretrained").mkdir(parents=True)
    (tmp_path / "repo" / "pretrained" / "a.pt").write_bytes(b"x")
    page = tmp_path / "repo" / "docs" / "results" / "page.md"
    page.parent.mkdir(parents=True)
    page.write_text(PAGE)
    table = read_results_tables(page)[0]
    monkeypatch.chdir(tmp_path)
    assert resolve_weights("pretrained/a.pt", table) == tmp_path / "repo" / "pretrained" / "a.pt"
    (tmp_path / "pretrained").mkdir()
    (tmp_path / "pretrained" / "a.pt").write_bytes(b"y")  # the working directory comes first
    assert resolve_weights("pretrained/a.pt", table) == Path("pretrained/a.pt")
    with pytest.raises(FileNotFoundError, match=r"page.md:5: weights pretrained/c.pt not found"):
        resolve_weights("pretrained/c.pt", table)


def _synthetic_page(figures: dict[str, dict[str, float]], *, peer: bool = False) -> str:
    """Two tables (22 and 32 joints) of the embedded data, a weight-free row and a committed checkpoint's row."""
    blocks = []
    for metric in ("mpjpe22_mm", "mpjpe32_mm"):
        ref, ckpt = figures[metric + "zv"], figures[metric]
        rows = [f"| `zero-velocity` | none | {ref['80']:.1f} | {ref['avg']:.1f} |",
                f"| `simlpe` (seed 0) | `{SIMLPE_10}` | {ckpt['80']:.1f} | {ckpt['avg']:.1f} |"]
        if peer:
            rows.append("| siMLPe (released weights) | `peer:simlpe` | 1.0 | 2.0 |")
        blocks.append(f"<!-- results dataset=synthetic split=val protocol=synthetic-10-25 metric={metric} -->\n"
                      "| model | weights | 80 ms | avg |\n|---|---|---:|---:|\n" + "\n".join(rows) +
                      "\n<!-- /results -->\n")
    return "\n".join(blocks)


@pytest.fixture(scope="module")
def synthetic_figures() -> dict[str, dict[str, float]]:
    """The figures of both rows measured directly with ``evaluate_source``."""
    ckpt = evaluate_source(str(REPO_ROOT / SIMLPE_10), dataset="synthetic", protocol="synthetic-10-25", device="cpu")
    ref = evaluate_source(model_name="zero-velocity", dataset="synthetic", protocol="synthetic-10-25", device="cpu")
    return {"mpjpe22_mm": ckpt["mpjpe22_mm"]["mean"], "mpjpe32_mm": ckpt["mpjpe32_mm"]["mean"],
            "mpjpe22_mmzv": ref["mpjpe22_mm"]["mean"], "mpjpe32_mmzv": ref["mpjpe32_mm"]["mean"]}


def test_every_row_is_evaluated_once_and_gives_the_direct_figures(tmp_path: Path, monkeypatch, synthetic_figures):
    monkeypatch.chdir(REPO_ROOT)
    tables = parse_results_tables(_synthetic_page(synthetic_figures), tmp_path / "page.md")
    calls = []
    real = results_tables.evaluate_source
    monkeypatch.setattr(results_tables, "evaluate_source", lambda *a, **k: calls.append(a) or real(*a, **k))
    measured = evaluate_tables(tables, device="cpu", progress=calls.append)
    assert len([c for c in calls if isinstance(c, str)]) == 2  # one evaluation per weights, shared by both tables
    for (table, figures), metric in zip(measured, ("mpjpe22_mm", "mpjpe32_mm"), strict=True):
        assert figures[0] == {k: synthetic_figures[metric + "zv"][k] for k in ("80", "avg")}
        assert figures[1] == {k: synthetic_figures[metric][k] for k in ("80", "avg")}
        assert find_mismatches(table, figures) == []


def test_a_seeds_row_is_the_mean_and_spread_of_its_checkpoints_evaluated_alone(tmp_path: Path, monkeypatch,
                                                                              capsys):
    monkeypatch.chdir(REPO_ROOT)
    alone = [evaluate_source(str(REPO_ROOT / ckpt), dataset="synthetic", protocol="synthetic-10-25", device="cpu")
             ["mpjpe22_mm"]["mean"] for ckpt in SIMLPE_10_SEEDS]
    mean = {k: statistics.fmean(a[k] for a in alone) for k in ("80", "avg")}
    sd = {k: statistics.stdev(a[k] for a in alone) for k in ("80", "avg")}
    assert sd["80"] > 0.001  # the seeds differ, so the spread is a real check
    weights = " ".join(f"`{ckpt}`" for ckpt in SIMLPE_10_SEEDS)
    row = " | ".join(f"{mean[k]:.3f} ± {sd[k]:.3f}" for k in ("80", "avg"))
    page = tmp_path / "page.md"
    page.write_text("<!-- results dataset=synthetic split=val protocol=synthetic-10-25 metric=mpjpe22_mm -->\n"
                    "| model | weights | 80 ms | avg |\n|---|---|---:|---:|\n"
                    f"| `simlpe` (3 seeds) | {weights} | {row} |\n<!-- /results -->\n")
    assert main(["results", str(page), "--check", "--device", "cpu"]) == 0
    assert "(1 rows in 1 tables)" in capsys.readouterr().out
    page.write_text(page.read_text().replace(f"{sd['avg']:.3f} |", f"{sd['avg'] + 0.002:.3f} |"))
    assert main(["results", str(page), "--check", "--device", "cpu"]) == 1
    assert "simlpe (3 seeds)" in (out := capsys.readouterr().out) and "avg sd: printed" in out


def test_the_command_checks_printed_figures_and_names_what_differs(tmp_path: Path, monkeypatch, capsys,
                                                                   synthetic_figures):
    monkeypatch.chdir(REPO_ROOT)
    page = tmp_path / "page.md"
    page.write_text(_synthetic_page(synthetic_figures, peer=True))
    assert main(["results", str(page), "--check", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "every printed figure reproduced to half its last digit (4 rows in 2 tables)" in out
    assert "| siMLPe (released weights) | `peer:simlpe` | n/a | n/a |" in out
    assert "not evaluated: peer:simlpe (give the released file with --peer NAME=FILE)" in out
    wrong = dict(synthetic_figures, mpjpe32_mm={**synthetic_figures["mpjpe32_mm"], "avg": 0.0})
    page.write_text(_synthetic_page(wrong))
    assert main(["results", str(page), "--check", "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "not reproduced: 1 printed figure(s)" in out and f"{page}:12: simlpe (seed 0) ({SIMLPE_10}), avg" in out


def test_a_peer_row_is_evaluated_from_the_released_file(tmp_path: Path, monkeypatch, capsys, released_simlpe):
    torch.save(released_simlpe(), tmp_path / "h36m_model_40000.pth")
    page = tmp_path / "page.md"
    page.write_text("<!-- results dataset=synthetic split=val protocol=synthetic-50-25 metric=mpjpe22_mm -->\n"
                    "| model | weights | 80 ms | avg |\n|---|---|---:|---:|\n"
                    "| siMLPe (released weights) | `peer:simlpe` | 1.0 | 2.0 |\n<!-- /results -->\n")
    assert main(["results", str(page), "--peer", f"simlpe={tmp_path / 'h36m_model_40000.pth'}", "--device",
                 "cpu"]) == 0
    printed = parse_results_tables(capsys.readouterr().out, "out")[0].rows[0].figures
    imported = main(["import", "simlpe", str(tmp_path / "h36m_model_40000.pth"), "-o", str(tmp_path / "s.pt")])
    direct = evaluate_source(str(tmp_path / "s.pt"), dataset="synthetic", protocol="synthetic-50-25", device="cpu")
    assert imported == 0 and printed == {k: round(direct["mpjpe22_mm"]["mean"][k], 1) for k in ("80", "avg")}


@pytest.mark.parametrize(("args", "message"), [
    (["--peer", "simlpe"], "--peer expects NAME=FILE"),
    (["--peer", "other=x.pth"], "unknown peer 'other'"),
    (["--peer", "simlpe=missing.pth"], "missing.pth: no such file"),
    (["--check", "--split", "test"], "--check compares with the printed figures"),
    (["--protocol", "h36m-50-25-256"], "no results table of protocol h36m-50-25-256"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, capsys, args: list[str], message: str,
                                               synthetic_figures):
    page = tmp_path / "page.md"
    page.write_text(_synthetic_page(synthetic_figures))
    assert main(["results", str(page), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
