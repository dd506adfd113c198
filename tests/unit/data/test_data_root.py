"""One rule for the data folder everywhere: the command line, then $CRISSCROSS_DATA, then the user config file;
a path stored in a checkpoint is never reused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from crisscross.cli.main import main
from crisscross.data.datasets import find_data_dir, resolve_data_root, user_config_file
from crisscross.data.errors import DataError

PRETRAINED = Path(__file__).resolve().parents[3] / "pretrained"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No $CRISSCROSS_DATA and an empty user config folder."""
    monkeypatch.delenv("CRISSCROSS_DATA", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path


def test_the_order_is_argument_environment_user_config(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_data_root(None)[0] is None
    assert user_config_file() == clean_env / "config" / "crisscross" / "config.yaml"
    user_config_file().parent.mkdir(parents=True)
    user_config_file().write_text("data_dir: ~/from-user-config\n")
    assert resolve_data_root(None)[0] == Path("~/from-user-config").expanduser()
    monkeypatch.setenv("CRISSCROSS_DATA", str(clean_env / "from-env"))
    assert resolve_data_root(None)[0] == clean_env / "from-env"
    assert resolve_data_root(clean_env / "from-argument")[0] == clean_env / "from-argument"


def test_the_error_lists_what_was_tried(clean_env: Path) -> None:
    with pytest.raises(DataError, match=r"tried --data-dir \(not given\), \$CRISSCROSS_DATA \(not set\), .*absent"):
        find_data_dir("h36m")
    user_config_file().parent.mkdir(parents=True)
    user_config_file().write_text("data_dir: [1, 2]\n")
    with pytest.raises(DataError, match="data_dir must be a folder path"):
        find_data_dir("h36m")
    user_config_file().write_text("data_dir: {unclosed\n")
    with pytest.raises(DataError, match="cannot parse the user config") as err:
        find_data_dir("h36m")
    assert "\n" not in str(err.value)


def test_eval_of_a_checkpoint_ignores_the_folder_stored_in_it(clean_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    ckpt = torch.load(PRETRAINED / "h36m-stcformer-seed0.pt", weights_only=True)
    ckpt["config"]["data"]["data_dir"] = "/elsewhere/another-machine/datasets"
    moved = clean_env / "moved.pt"
    torch.save(ckpt, moved)
    assert main(["eval", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "another-machine" not in err and "CRISSCROSS_DATA (not set)" in err
    monkeypatch.setenv("CRISSCROSS_DATA", str(clean_env / "my-data"))
    assert main(["eval", str(moved)]) == 2
    err = capsys.readouterr().err
    assert "my-data: no such file or folder" in err and "another-machine" not in err
