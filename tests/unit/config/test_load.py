"""Config loading: types, ranges, unknown keys, dotted overrides, YAML round trip."""

import pytest

from crisscross.config import ConfigError, ExperimentConfig, config_from_dict, dump_config, load_config
from crisscross.config.load import parse_override


def test_defaults_validate():
    cfg = load_config(None)
    assert isinstance(cfg, ExperimentConfig)
    assert cfg.data.input_frames == 10 and cfg.data.output_frames == 25


def test_dotted_overrides_parse_yaml_scalars():
    cfg = load_config(None, ["optim.lr=3e-4", "model.args.dim=64", "train.tf32=true", "data.actions=walking,eating",
                             "optim.clip_grad_norm=null", "optim.betas=[0.8, 0.99]"])
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.model.args == {"dim": 64}
    assert cfg.train.tf32 is True
    assert cfg.data.actions == ("walking", "eating")
    assert cfg.optim.clip_grad_norm is None
    assert cfg.optim.betas == (0.8, 0.99)


@pytest.mark.parametrize("override, fragment", [
    ("optim.lrr=1", "optim.lrr: unknown key; allowed keys in optim: name, lr"),
    ("optim.lr=abc", "optim.lr: expected a number"),
    ("optim.lr=-1", "optim.lr: must be > 0"),
    ("train.precision=fp8", "train.precision: got 'fp8', expected one of fp32, bf16, fp16"),
    ("train.epochs=1.5", "train.epochs: expected an integer"),
    ("train.compile=maybe", "train.compile: expected true or false"),
    ("optim.nesterov=true", "optim.nesterov: needs optim.momentum > 0"),
    ("bogus=1", "bogus: unknown key"),
])
def test_bad_values_name_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert fragment in str(err.value)


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("optim.lr")


def test_yaml_round_trip(tmp_path):
    cfg = load_config(None, ["optim.name=adamw", "sched.warmup_steps=10", "data.augment.mirror=true"])
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_bad_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml:3: cannot parse YAML"):  # the line where parsing failed
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match="unknown.yaml: train.epoch: unknown key"):
        load_config(unknown)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_nested_section_must_be_mapping():
    with pytest.raises(ConfigError, match="optim: expected a mapping"):
        config_from_dict({"optim": 3})


def test_renaming_the_model_drops_the_base_model_args():
    from crisscross.config.load import QUICKSTART_CONFIG

    base = load_config(QUICKSTART_CONFIG)
    assert base.model.name == "stcformer" and base.model.args
    assert load_config(QUICKSTART_CONFIG, ["model.name=simlpe"]).model.args == {}
    kept = load_config(QUICKSTART_CONFIG, ["model.name=stcformer-ar", "model.args.dim=16"])
    assert kept.model.args["dim"] == 16 and kept.model.args["enc_blocks"] == 1
