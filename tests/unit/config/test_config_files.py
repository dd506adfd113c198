"""Every shipped config file loads and validates with the loader of its kind."""

from pathlib import Path

import pytest

from crisscross.benchmarking.bench import load_bench_config
from crisscross.config import load_config
from crisscross.config.load import QUICKSTART_CONFIG
from crisscross.experiments.sweep import load_sweep
from crisscross.models.registry import list_models

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def _files(sub: str) -> list[Path]:
    return sorted((CONFIGS / sub).glob("*.yaml"))


def test_there_are_shipped_configs():
    assert _files("forecast") and _files("sweeps") and _files("bench")


@pytest.mark.parametrize("path", [*_files("forecast"), QUICKSTART_CONFIG], ids=lambda p: p.name)
def test_forecast_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.name in list_models()
    assert path.read_text().startswith("#"), "each shipped config starts with a comment giving its launch command"


@pytest.mark.parametrize("path", _files("sweeps"), ids=lambda p: p.name)
def test_sweep_files_load(path):
    spec = load_sweep(path)
    assert spec is not None


@pytest.mark.parametrize("path", _files("bench"), ids=lambda p: p.name)
def test_bench_configs_load(path):
    assert load_bench_config(path)
