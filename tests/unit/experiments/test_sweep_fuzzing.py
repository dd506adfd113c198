"""Property-based fuzzing of sweep files: each one loads or raises a one-line SweepError naming the file.

The promise to users: :func:`~crisscross.experiments.sweep.load.load_sweep` returns a validated
:class:`~crisscross.experiments.sweep.spec.SweepSpec`, or raises :class:`~crisscross.experiments.sweep.spec.SweepError`
(it wraps the base config's :class:`~crisscross.config.schema.ConfigError` too) whose message is one line naming
the sweep file, and never another exception. Hypothesis writes random bytes and text, valid YAML of the wrong
shape, and near-valid sweeps (a shipped or test sweep with one thing broken at one key: a search dimension of the
wrong type, low > high, no choices, an unknown sampler or pruner, a budget of the wrong type, overrides that do not
parse) next to a base config that is valid or broken, into a temporary folder. What the sweep driver asks of a
loaded spec (its budget and fingerprint) must work or raise SweepError as well.

Each test builds its folder with :func:`tempfile.TemporaryDirectory` in the test body, since pytest's ``tmp_path``
is created once per test, not once per example. Inputs that once escaped are pinned by the plain regression tests
at the end of the file, so they are checked on every run whatever Hypothesis draws.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import fuzzing
import pytest
import yaml
from fuzzing import HUGE_INTS
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crisscross.experiments.sweep.load import load_sweep
from crisscross.experiments.sweep.spec import SweepError, SweepSpec

# The suite runs on 2 slow cores: a few dozen examples per property, no per-example deadline (file I/O varies).
# CRISSCROSS_FUZZ_EXAMPLES=2000 fuzzes harder by hand, e.g. after changing the loader.
FUZZ = settings(max_examples=int(os.environ.get("CRISSCROSS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

REPO = Path(__file__).resolve().parents[3]
SWEEP = "s.yaml"
BASE = {"model": {"name": "simlpe", "args": {"depth": 2}}, "train": {"epochs": 2}}
GRID = {"base": "base.yaml",
        "space": {"optim.lr": {"type": "loguniform", "values": [1e-3, 1e-2]},
                  "opt": {"type": "choice", "values": {"adam": {"optim.name": "adam"},
                                                       "sgdm": {"optim.name": "sgd", "optim.momentum": 0.9}}}},
        "sampler": "grid", "seeds": [0, 1], "overrides": ["train.epochs=3"]}
TPE = {"base": "base.yaml",
       "space": {"optim.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2},
                 "model.args.depth": {"type": "int", "low": 1, "high": 4, "step": 1},
                 "optim.weight_decay": {"type": "uniform", "low": 0.0, "high": 0.1}},
       "trials": 3, "sampler": {"type": "tpe", "seed": 1}, "pruner": {"type": "median", "startup_trials": 1},
       "objective": {"metric": "train/epoch_loss", "direction": "maximize", "reduce": "last"}}


def _shipped(path: Path) -> dict[str, Any]:
    """A shipped sweep, its base made absolute so that the sweep loads from a temporary folder."""
    values = yaml.safe_load(path.read_text())
    return {**values, "base": str((path.parent / values["base"]).resolve())}


VALID = {"grid": GRID, "tpe": TPE,
         **{p.stem: _shipped(p) for p in sorted((REPO / "configs" / "sweeps").glob("*.yaml"))}}
SECTION_KEYS = ["name", "base", "overrides", "space", "sampler", "sampler.type", "sampler.seed", "objective",
                "objective.metric", "objective.direction", "objective.reduce", "trials", "seeds", "pruner",
                "pruner.type", "pruner.startup_trials", "pruner.warmup_epochs", "spce"]
PARAM_FIELDS = ["type", "values", "low", "high", "step", "log", "name", "kind"]


# ---------------------------------------------------------------------------------------------------------------------
# The property


def assert_loads_or_fails_cleanly(read: Callable[[], Any], path: Path) -> Any:
    """Call ``read``: it returns (what it returns is returned), or raises SweepError whose message is one line
    naming ``path`` (None is returned). Any other exception propagates and fails the test, which is the point.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = read()
        event("sweep: loaded")
        return result
    except SweepError as err:
        event("sweep: refused")
        message = str(err)
        assert message.splitlines() == [message], f"message is not one line: {message!r}"
        assert path.name in message, f"message does not name {path.name}: {message!r}"
    return None


def write_files(folder: Path, files: Mapping[str, bytes]) -> None:
    """Write ``{relative name: bytes}`` under ``folder``."""
    for name, data in files.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def load_and_use(path: Path) -> SweepSpec:
    """What ``crisscross sweep`` does with a file before any trial: load it, then its budget and fingerprint."""
    spec = load_sweep(path)
    spec.fingerprint()
    spec.budget()
    return spec


# ---------------------------------------------------------------------------------------------------------------------
# Strategies

ODD_STRINGS = st.sampled_from(["", " ", "3e-4", "1e999", "nan", ".inf", "true", "null", "adam", "grid", "tpe",
                               "random", "median", "none", "hyperband", "choice", "int", "uniform", "loguniform",
                               "categorical", "normal", "minimize", "max", "best", "last", "val/x", "train/epoch_loss",
                               "a=1", "optim.lr=", "=1", "a..b=1", "optim.lr=[", "base.yaml", ".", "/", "..",
                               "x" * 300, "\x00", "\u00e9", "\n", "a\nb", "../" * 40])
YAML_SCALARS = (st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | st.text(max_size=8)
                | ODD_STRINGS | st.binary(max_size=4) | st.dates())
KEYS = (st.text(max_size=6) | st.sampled_from(["optim.lr", "seed", "train.epochs", "model.args.depth", "type",
                                                 "values", "low", "high", "step", "log", "a\nb"])
        | st.integers() | st.booleans() | st.none())
# Search dimensions that are almost right, and ones whose grid would be astronomically large.
ODD_PARAMS = st.sampled_from([
    {"type": "int", "low": 0, "high": 2**63}, {"type": "int", "low": 1, "high": 10**12}, {"type": "int", "low": 1},
    {"type": "uniform", "low": 1, "high": 0}, {"type": "loguniform", "low": -1, "high": 1}, {"type": "choice"},
    {"type": "choice", "values": []}, {"type": "choice", "values": {}}, {"type": "choice", "values": [[1], {"a": 1}]},
    {"type": "choice", "values": {"a": ["x"]}}, {"type": "choice", "values": {"a": "optim.lr=1"}},
    {"type": "choice", "values": {"a": {"seed": "2001-01-01"}}}, {"type": "uniform", "values": [0.1, "x"]},
    {"type": "int", "low": 0.5, "high": 2}, {"type": "int", "low": 1, "high": 3, "step": 0},
    {"type": "uniform", "low": 0.0, "high": float("nan")}, {"type": "uniform", "low": 0.0, "high": float("inf")},
    {"type": "int", "values": [1, 2.5]}, {"type": "uniform", "low": 0.1, "high": 0.2, "step": 2},
])
YAML_JUNK = st.recursive(
    YAML_SCALARS | ODD_PARAMS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=10,
)


def mutate(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with at most one thing broken at one level (:func:`fuzzing.mutate`)."""
    return fuzzing.mutate(draw, value, YAML_JUNK, KEYS)


def set_path(values: Any, path: list[str], value: Any) -> Any:
    """A copy of nested ``values`` with the entry at ``path`` (keys, not dotted: space keys hold dots) set."""
    if not path:
        return value
    section = values if isinstance(values, dict) else {}
    return {**section, path[0]: set_path(section.get(path[0]), path[1:], value)}


def dump(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as YAML text, block or flow style, now and then in another encoding or cut short."""
    text = yaml.safe_dump(value, default_flow_style=draw(st.sampled_from((False, True, None))), sort_keys=False,
                          allow_unicode=draw(st.booleans()))
    how = draw(st.sampled_from(("utf-8", "utf-8", "utf-8", "utf-16", "latin-1", "truncate")))
    if how == "truncate":
        return text.encode()[:draw(st.integers(0, max(len(text) - 1, 0)))]
    return text.encode(how, errors="replace")


PATHOLOGICAL = st.sampled_from([b"[" * 100_000, b"{a: " * 20_000, b"base: " + b"1" * 5000 + b"\n",
                                b"base: 2001-13-01\n", b"base: !!timestamp x\n", b"base: !!bool x\n",
                                b"a: &a [*a]\nbase: *a\n", b"\x00", b"\xff\xfe\x00", b"- 1\n", b"base\n", b""])


@st.composite
def yaml_files(draw: st.DrawFn, valid: Any) -> bytes:
    """Random bytes or text, pathological YAML, junk YAML of any shape, or ``valid`` with one thing broken."""
    kind = draw(st.sampled_from(("bytes", "text", "odd", "junk", "near", "near", "near")))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=200)).encode(draw(st.sampled_from(("utf-8", "utf-16"))))
    if kind == "odd":
        return draw(PATHOLOGICAL)
    if kind == "junk":
        return dump(draw, draw(YAML_JUNK))
    return dump(draw, mutate(draw, valid))


@st.composite
def sweep_folders(draw: st.DrawFn) -> dict[str, bytes]:
    """A sweep file and its base config: valid, or either one (or both) broken, the sweep often at one key
    (a section's, or a field of one search dimension)."""
    sweep = VALID[draw(st.sampled_from(sorted(VALID)))]
    kind = draw(st.sampled_from(("valid", "file", "key", "key", "param", "param", "base", "both")))
    files = {"base.yaml": yaml.safe_dump(BASE).encode(), SWEEP: yaml.safe_dump(sweep).encode()}
    if kind in ("file", "both"):
        files[SWEEP] = draw(yaml_files(sweep))
    if kind == "key":
        path = draw(st.sampled_from(SECTION_KEYS)).split(".")
        files[SWEEP] = dump(draw, set_path(sweep, path, draw(YAML_JUNK)))
    if kind == "param":
        name = draw(st.sampled_from(list(sweep["space"])))
        value = draw(ODD_PARAMS) if draw(st.booleans()) else draw(YAML_JUNK)
        path = ["space", name] if draw(st.booleans()) else ["space", name, draw(st.sampled_from(PARAM_FIELDS))]
        files[SWEEP] = dump(draw, set_path(sweep, path, value))
    if kind in ("base", "both"):
        sweep = {**sweep, "base": "base.yaml"}
        files[SWEEP] = files[SWEEP] if kind == "both" else yaml.safe_dump(sweep).encode()
        files["base.yaml"] = draw(yaml_files(BASE))
    return files


# ---------------------------------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(files=sweep_folders())
def test_sweep_files_load_or_raise_one_line(files: dict[str, bytes]) -> None:
    """A sweep file next to its base config, either of them broken."""
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        path = Path(tmp) / SWEEP
        spec = assert_loads_or_fails_cleanly(lambda: load_and_use(path), path)
        assert spec is None or isinstance(spec, SweepSpec)


@FUZZ
@given(files=sweep_folders(),
       overrides=st.lists(st.sampled_from(["train.batch_size=8", "data.dataset=h36m", "optim.lrr=1", "=1", "a..b=2",
                                           "seed", "seed=[", "seed=\n", "optim.lr=" + "1" * 400, "seed=!!bool x",
                                           "train.epochs=0", "task=nope", "seed=2001-13-01"]), max_size=2))
def test_sweeps_with_command_line_overrides_load_or_raise_one_line(files: dict[str, bytes],
                                                                     overrides: list[str]) -> None:
    """``crisscross sweep FILE key=value ...``: the command line's overrides on top of the file's."""
    with tempfile.TemporaryDirectory() as tmp:
        write_files(Path(tmp), files)
        path = Path(tmp) / SWEEP
        assert_loads_or_fails_cleanly(lambda: load_sweep(path, overrides), path)


# ---------------------------------------------------------------------------------------------------------------------
# Regression tests: inputs that once escaped


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_sweeps_load(name: str, tmp_path: Path) -> None:
    """The near-valid inputs start from sweeps that load."""
    write_files(tmp_path, {"base.yaml": yaml.safe_dump(BASE).encode(), SWEEP: yaml.safe_dump(VALID[name]).encode()})
    assert isinstance(load_and_use(tmp_path / SWEEP), SweepSpec)


GRID_OF_ONE = "space: {seed: {type: choice, values: [1]}}\nsampler: grid\n"


@pytest.mark.parametrize("text", [
    pytest.param("base: base.yaml\nspace: {o: {type: choice, values: [pre, pos\n", id="yaml-syntax"),  # 7 lines
    pytest.param("\x00", id="nul-character"),  # the YAML reader's message ran over two lines
    pytest.param("[" * 100_000, id="deep-nesting"),  # RecursionError
    pytest.param("base: " + "1" * 5000, id="int-over-4300-digits"),  # ValueError
    pytest.param("base: 2001-13-01", id="bad-date"),  # ValueError
    pytest.param("base: !!timestamp x", id="tag-timestamp"),  # AttributeError
    pytest.param('"\\r": null\n', id="key-with-carriage-return"),  # the unknown-key message ran over two lines
    pytest.param('base: base.yaml\nspace: {"a\\nb": 5}\nsampler: grid\n', id="dimension-with-line-break"),
    pytest.param("base: base.yaml\nspace: {seed: {type: int, low: 0, high: 9223372036854775808}}\nsampler: grid\n",
                 id="grid-of-2**63-points"),  # MemoryError / OverflowError listing the grid
    pytest.param("base: base.yaml\noverrides: {seed: 2001-01-01}\n" + GRID_OF_ONE, id="override-date"),  # TypeError
    pytest.param("base: base.yaml\noverrides: {seed: !!set {1}}\n" + GRID_OF_ONE, id="override-set"),  # TypeError
    pytest.param("base: base.yaml\noverrides: {model.args.x: &a [*a]}\n" + GRID_OF_ONE,
                 id="override-recursive-list"),  # ValueError: Circular reference detected
    pytest.param("base: base.yaml\nspace: {o: {type: choice, values: {a: {seed: !!binary aGk=}}}}\nsampler: grid\n",
                 id="bundle-bytes"),  # TypeError
    pytest.param("base: " + "x" * 300 + "\n" + GRID_OF_ONE, id="base-name-too-long"),  # OSError ENAMETOOLONG
    pytest.param('base: "a\\0b"\n' + GRID_OF_ONE, id="base-name-with-nul"),  # ValueError: embedded null byte
])
def test_escaped_sweep_files_raise_one_line(text: str, tmp_path: Path) -> None:
    write_files(tmp_path, {"base.yaml": yaml.safe_dump(BASE).encode(), SWEEP: text.encode()})
    with pytest.raises(SweepError) as info:
        load_and_use(tmp_path / SWEEP)
    assert "\n" not in str(info.value) and "\r" not in str(info.value) and SWEEP in str(info.value)


@pytest.mark.parametrize("base", [b"\x80\x00", b"a: [\n", b"[" * 100_000, b"seed: !!bool x\n"],
                         ids=["undecodable", "yaml-syntax", "deep-nesting", "tag-bool"])
def test_escaped_base_configs_raise_one_line(base: bytes, tmp_path: Path) -> None:
    """UnicodeDecodeError, a multi-line YAML error, RecursionError and KeyError escaped from the base config."""
    write_files(tmp_path, {"base.yaml": base, SWEEP: b"base: base.yaml\n" + GRID_OF_ONE.encode()})
    with pytest.raises(SweepError) as info:
        load_sweep(tmp_path / SWEEP)
    assert "\n" not in str(info.value) and SWEEP in str(info.value) and "base.yaml" in str(info.value)
