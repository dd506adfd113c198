"""The CLI turns bad input into one line on stderr and exit code 2, never a traceback."""

import subprocess
import sys

import pytest

from crisscross.cli.main import main


@pytest.mark.parametrize("argv, fragment", [
    (["train", "optim.lrr=1"], "optim.lrr: unknown key"),
    (["train", "train.precision=fp8"], "train.precision: got 'fp8'"),
    (["train", "optim.lr"], "expected KEY=VALUE"),
    (["train", "model.name=nope"], "unknown model 'nope'; known models:"),
    (["train", "data.dataset=nope"], "unknown dataset 'nope'"),
    (["train", "--config", "missing.yaml"], "missing.yaml does not exist"),
    (["eval", "does/not/exist"], "neither a run folder nor a checkpoint"),
    (["eval", "--model", "zero-velocity", "--protocol", "nope"], "nope"),
    (["eval"], "give either a run folder"),
    (["models", "--dataset", "npz"], "--dataset 'npz': expected a dataset with a built-in skeleton"),
])
def test_bad_input_is_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_flag_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "crisscross.cli.main", "train", "--no-such-flag"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_bad_yaml_file_names_the_file(tmp_path, capsys):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("train:\n  epochs: many\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert f"{cfg}: train.epochs: expected an integer" in capsys.readouterr().err


def test_models_lists_every_model(capsys):
    from crisscross.models.registry import list_models

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in list_models():
        assert f"| {name} " in out


def test_eval_weight_free_model(capsys):
    assert main(["eval", "--model", "zero-velocity", "--joints", "22"]) == 0
    out = capsys.readouterr().out
    assert "zero-velocity" in out and "1000 ms" in out
