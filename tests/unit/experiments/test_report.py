"""Reports: tables with the promised columns in Markdown/CSV/HTML, real PNG figures, never overwriting."""

import csv

import pytest

pytest.importorskip("matplotlib")

from crisscross.cli.main import main
from crisscross.experiments.report import CURVE_FILES, SETTINGS_FILE, build_report, default_labels, write_report
from crisscross.experiments.summaries import load_run_summary


def assert_real_png(path, min_px=200):
    """A PNG file that opens, is large enough and is not a blank image."""
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] >= min_px and img.shape[1] >= min_px, img.shape
    rgb = img[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05  # not a single colour
    dark = (rgb.sum(axis=1) < 1.5).mean()  # axes, ticks, labels and curves draw dark/colour pixels
    assert 0.005 < dark < 0.5, dark


@pytest.fixture
def two_runs(run_factory):
    a = run_factory("adam", overrides=("optim.name=adam",), val=(120.0, 95.0, 97.0), test_eval=True)
    b = run_factory("sgd", overrides=("optim.name=sgd", "optim.momentum=0.9"), val=(150.0, 140.0, 130.0),
                    device="cuda:0")
    return a, b


def test_report_tables_and_curves(two_runs, tmp_path):
    out = write_report(list(two_runs), tmp_path / "rep", title="optimizers", command="crisscross report x")
    names = {p.name for p in out.iterdir()}
    assert {"report.md", "report.csv", "report.html", *CURVE_FILES} <= names
    with (out / "report.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    cols = set(rows[0])
    for col in ("run", "params", "s_per_epoch", "samples_per_s", "peak_memory_mb", "memory_kind", "train_time_s",
                "best_val", "best_epoch", "val_avg", "val_80ms", "val_1000ms", "test_avg", "test_80ms", "device"):
        assert col in cols, col
    by_run = {r["run"]: r for r in rows}
    assert set(by_run) == {"optim=adam momentum=0", "optim=sgd momentum=0.9"}
    adam = by_run["optim=adam momentum=0"]
    assert adam["rank"] == "1" and by_run["optim=sgd momentum=0.9"]["rank"] == "2"
    assert float(adam["best_val"]) == 95.0 and adam["best_epoch"] == "2" and float(adam["test_avg"]) == 102.0
    assert float(adam["s_per_epoch"]) == pytest.approx(2.5) and adam["params"] == "1234"
    assert {r["memory_kind"] for r in rows} == {"process RSS", "GPU allocated"}
    assert rows[1]["test_avg"] == ""  # no eval_test.json in the second run
    md = (out / "report.md").read_text()
    for fragment in ("# optimizers", "## Completed runs", "s/epoch", "peak memory (MB)", "80 ms", "1000 ms",
                     "Test MPJPE per horizon", "Configuration differences", "optim.name",
                     "![val_vs_time](val_vs_time.png)", f"![best_val_by_setting]({SETTINGS_FILE})",
                     "crisscross report x"):
        assert fragment in md, fragment
    assert "Running and unfinished runs" not in md  # both runs completed
    html = (out / "report.html").read_text()
    assert "<table>" in html and '<img src="train_loss_vs_epoch.png"' in html
    for name in (*CURVE_FILES, SETTINGS_FILE):
        assert_real_png(out / name)


def test_report_never_overwrites(two_runs, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    with pytest.raises(FileExistsError, match="never overwritten"):
        write_report(list(two_runs), out)
    assert list(out.iterdir()) == []


def test_seed_groups_and_labels(run_factory):
    runs = [run_factory(f"r{s}{o}", overrides=(f"seed={s}", f"optim.name={o}"), val=(100.0 + s,))
            for s in (0, 1) for o in ("adam", "sgd")]
    labels = default_labels([load_run_summary(r) for r in runs])
    assert labels == ["optim=adam seed=0", "optim=sgd seed=0", "optim=adam seed=1", "optim=sgd seed=1"]
    rep = build_report(runs)
    groups = {g["configuration"]: g for g in rep.groups}
    assert set(groups) == {"optim=adam", "optim=sgd"}
    assert groups["optim=adam"]["runs"] == 2 and groups["optim=adam"]["unfinished"] == 0
    assert groups["optim=adam"]["best_val_mean"] == pytest.approx(100.5)
    assert groups["optim=adam"]["best_val_std"] == pytest.approx(0.7071, abs=1e-3)
    labelled = build_report(runs, labels=["adam s0", "sgd s0", "adam s1", "sgd s1"])
    assert {g["configuration"] for g in labelled.groups} == {"adam", "sgd"}
    with pytest.raises(ValueError, match="distinct labels"):
        build_report(runs[:2], labels=["x", "x"])


def test_report_cli(two_runs, run_factory, tmp_path, capsys):
    out = tmp_path / "cli-rep"
    assert main(["report", str(run_factory.root), "--out", str(out), "--labels", "adam,sgd"]) == 0
    assert "report of 2 runs" in capsys.readouterr().out
    assert "| adam " in (out / "report.md").read_text()
    assert main(["report", str(run_factory.root), "--out", str(out)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "none"), "--out", str(tmp_path / "x")]) == 2
