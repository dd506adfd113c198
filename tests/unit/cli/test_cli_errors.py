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


def test_an_override_error_blames_the_override_not_the_file(tmp_path, capsys):
    assert main(["train", "optim.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "command-line override 'optim.lrr=1'" in err and "quickstart.yaml" not in err
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("optim:\n  lrr: 1\n")
    assert main(["train", "--config", str(cfg)]) == 2
    assert f"{cfg}: optim.lrr: unknown key" in capsys.readouterr().err


def test_unparsable_yaml_is_one_line_with_its_line(tmp_path, capsys):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("optim:\n  lr: [1,\n")
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:3: cannot parse YAML" in err and err.count("\n") == 1


def test_model_arguments_that_cannot_build_a_model_are_one_line(capsys):
    assert main(["train", "model.args.dim=-3"]) == 2
    err = capsys.readouterr().err
    assert "model 'stcformer' cannot be built with dim=-3" in err and err.count("\n") == 1


@pytest.mark.parametrize("content, fragment", [
    (lambda good: good[: len(good) // 3], "truncated or corrupt"),
    (lambda good: bytes(len(good)), "not a PyTorch zip archive"),
    (lambda good: b"some notes, not weights\n", "not a file that torch.load(weights_only=True) accepts"),
    (lambda good: b"", "truncated or corrupt"),
])
def test_a_damaged_checkpoint_is_one_line_without_torchs_advice(tmp_path, capsys, content, fragment):
    from pathlib import Path

    good = (Path(__file__).resolve().parents[3] / "pretrained" / "h36m-stcformer-seed0.pt").read_bytes()
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(content(good))
    assert main(["eval", str(bad)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and "weights_only=False" not in err and err.count("\n") == 1


@pytest.mark.parametrize("command", [["eval"], ["attention", "--samples", "0"], ["train", "--resume"]])
def test_a_checkpoint_with_an_invalid_stored_config_names_the_checkpoint(tmp_path, capsys, command):
    from pathlib import Path

    import torch

    good = Path(__file__).resolve().parents[3] / "pretrained" / "h36m-stcformer-seed0.pt"
    ckpt = torch.load(good, weights_only=True)
    ckpt["config"]["train"]["epochz"] = 3  # written by another version, or edited by hand
    bad = tmp_path / "run" / "checkpoints" / "last.pt"
    bad.parent.mkdir(parents=True)
    torch.save(ckpt, bad)
    assert main([*command, str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {bad}: its stored config: train.epochz: unknown key" in err and err.count("\n") == 1
