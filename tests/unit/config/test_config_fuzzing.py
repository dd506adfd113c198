"""Property-based fuzzing of experiment configs and dotted overrides: each loads or raises a one-line ConfigError.

The promise to users: :func:`~crisscross.config.load.load_config` returns a validated config, or raises
:class:`~crisscross.config.schema.ConfigError` whose message is one line naming the config file or the override
at fault, and never another exception. Hypothesis writes random bytes and text, valid YAML of the wrong shape
(lists, scalars, unknown keys, NaN/inf, huge integers, booleans where numbers belong, nulls, dates, binary), and
near-valid configs (a shipped config with one thing broken at one key, or one schema key set to junk) into a
temporary folder, and passes malformed or ill-typed ``key=value`` overrides on top.

Each test builds its folder with :func:`tempfile.TemporaryDirectory` in the test body, since pytest's ``tmp_path``
is created once per test, not once per example. Inputs that once escaped are pinned by the plain regression tests
at the end of the file, so they are checked on every run whatever Hypothesis draws.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import typing
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import fuzzing
import pytest
import yaml
from fuzzing import HUGE_INTS
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from crisscross.config.load import QUICKSTART_CONFIG, load_config
from crisscross.config.schema import ConfigError, ExperimentConfig

# The suite runs on 2 slow cores: a few dozen examples per property, no per-example deadline (file I/O varies).
# CRISSCROSS_FUZZ_EXAMPLES=2000 fuzzes harder by hand, e.g. after changing the loader.
FUZZ = settings(max_examples=int(os.environ.get("CRISSCROSS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

REPO = Path(__file__).resolve().parents[3]
SHIPPED = [QUICKSTART_CONFIG, *sorted((REPO / "configs" / "forecast").glob("*.yaml")),
           *sorted((REPO / "configs" / "lift").glob("*.yaml"))]
SHIPPED_VALUES = {p.name: yaml.safe_load(p.read_text()) or {} for p in SHIPPED}


def _schema_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of the config schema (``optim.lr``, ``data.augment.rotate``, ...)."""
    keys = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        key = f"{prefix}{f.name}"
        keys.append(key)
        if dataclasses.is_dataclass(tp):
            keys += _schema_keys(tp, key + ".")
    return keys


SCHEMA_KEYS = _schema_keys(ExperimentConfig)


# ---------------------------------------------------------------------------------------------------------------------
# The property


def assert_loads_or_fails_cleanly(read: Callable[[], Any], names: Sequence[str]) -> Any:
    """Call ``read``: it returns (what it returns is returned), or raises ConfigError whose message is one line
    naming one of ``names`` (None is returned). Any other exception propagates and fails the test, which is the point.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = read()
        event("config: loaded")
        return result
    except ConfigError as err:
        event("config: refused")
        message = str(err)
        assert message.splitlines() == [message], f"message is not one line: {message!r}"
        named = [n for n in names if n]
        assert any(n in message for n in named), f"message names none of {named}: {message!r}"
    return None


def override_names(overrides: Sequence[str]) -> list[str]:
    """What may name an override in a message: its key, or the whole text as ``repr`` writes it."""
    return [n for o in overrides for n in (o.split("=", 1)[0].strip(), repr(o))]


# ---------------------------------------------------------------------------------------------------------------------
# Strategies

ODD_STRINGS = st.sampled_from(["", " ", "3e-4", "1e999", "nan", ".inf", "true", "null", "~", "adam", "cuda:0",
                               "a,b", "x" * 300, "\x00", "\u00e9", "\n", "a\nb", "{", "[1", "'"])
YAML_SCALARS = (st.none() | st.booleans() | st.integers() | HUGE_INTS | st.floats() | st.text(max_size=8)
                | ODD_STRINGS | st.binary(max_size=4) | st.dates())
KEYS = st.text(max_size=6) | st.sampled_from(SCHEMA_KEYS) | st.integers() | st.booleans() | st.none()
YAML_JUNK = st.recursive(
    YAML_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=10,
)


def mutate(draw: st.DrawFn, value: Any) -> Any:
    """``value`` with at most one thing broken at one level (:func:`fuzzing.mutate`)."""
    return fuzzing.mutate(draw, value, YAML_JUNK, KEYS)


def set_dotted(values: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of nested ``values`` with dotted ``key`` set to ``value`` (sections made as needed)."""
    head, _, rest = key.partition(".")
    if not rest:
        return {**values, head: value}
    section = values.get(head)
    return {**values, head: set_dotted(section if isinstance(section, dict) else {}, rest, value)}


def dump(draw: st.DrawFn, value: Any) -> bytes:
    """``value`` as YAML text, block or flow style, now and then in another encoding or cut short."""
    text = yaml.safe_dump(value, default_flow_style=draw(st.sampled_from((False, True, None))), sort_keys=False,
                          allow_unicode=draw(st.booleans()))
    how = draw(st.sampled_from(("utf-8", "utf-8", "utf-8", "utf-16", "latin-1", "truncate")))
    if how == "truncate":
        return text.encode()[:draw(st.integers(0, max(len(text) - 1, 0)))]
    return text.encode(how, errors="replace")


DEEP = st.sampled_from([b"[" * 100_000, b"{a: " * 20_000, b"- " * 50_000, b"a: &a [*a, *a]\nb: *a\n",
                        b"!!python/object/apply:os.system ['true']\n", b"seed: !!binary aGVsbG8=\n",
                        b"\xef\xbb\xbfseed: 1\n", b"seed: 1\n\x00", b"seed: 1\nseed: 2\n", b"? [1, 2]\n: 3\n",
                        b"%YAML 1.1\n---\nseed: 1\n---\nseed: 2\n", b"\t", b"seed:\t1\n\tx: 2\n",
                        b"seed: " + b"1" * 5000 + b"\n", b"seed: 2001-13-01\n", b"optim: {lr: " + b"1" * 400 + b"}\n",
                        b"seed: !!float x\n", b"[" * 500 + b"]" * 500])


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    """Random bytes or text, pathological YAML, junk YAML of any shape, or a shipped config with one thing broken
    (at a random level, or at a random schema key)."""
    kind = draw(st.sampled_from(("bytes", "text", "deep", "junk", "near", "near", "key", "key")))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "text":
        return draw(st.text(max_size=200)).encode(draw(st.sampled_from(("utf-8", "utf-16", "utf-32"))))
    if kind == "deep":
        return draw(DEEP)
    if kind == "junk":
        return dump(draw, draw(YAML_JUNK))
    base = SHIPPED_VALUES[draw(st.sampled_from(sorted(SHIPPED_VALUES)))]
    if kind == "near":
        return dump(draw, mutate(draw, base))
    key = draw(st.sampled_from(SCHEMA_KEYS) | st.text(alphabet="abcdefghilmnoprst._", min_size=1, max_size=16))
    return dump(draw, set_dotted(base, key, draw(YAML_JUNK)))


VALUE_TEXTS = st.sampled_from(["", " ", "3e-4", "1e999", "-1e999", ".nan", ".inf", "NaN", "true", "yes", "null",
                               "~", "[1, 2]", "[0.9, 0.999]", "{a: 1}", "[", "{", "]", "'unterminated", '"x',
                               ": x", "- a", "&a", "*a", "!!python/name:os.system", "!!binary aGk=",
                               "2001-01-01", "0x1F", "1_000", str(2**64), str(10**400), "-0", "a: b: c",
                               "\t", "1\n2", "[1,\n2]", "x\n", "@x", "`x", "%x", "|", ">", "? x", "adam", "sgd",
                               "step", "multistep", "bf16", "cuda:0", "a,b", "!!set {1}", "1" * 5000, "2001-13-01",
                               "!!float x", "!!int 1.5", "!!timestamp x", "!!bool x", "!!set [1]", "!!omap 1",
                               "!!pairs {a: 1}", "!!map [1]", "!!str [1]", "!!seq a", "!!null x", "!!binary é",
                               "!!python/tuple [1]"]) | st.text(max_size=10)
KEY_TEXTS = (st.sampled_from(SCHEMA_KEYS)
             | st.sampled_from(["", " ", ".", "a..b", ".a", "a.", "model.args.depth", "model.args", "optim.lrr",
                                "seed.x", "data.augment.rotate.x", "train..epochs", "x" * 300, "model.args.a.b"])
             | st.text(max_size=10))

def flow_yaml(value: Any) -> str:
    """``value`` as one line of flow-style YAML (the form an override value takes)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix("\n...\n").strip()


OVERRIDES = st.lists(
    st.builds(lambda k, sep, v: f"{k}{sep}{v}", KEY_TEXTS, st.sampled_from(["=", "=", "=", "==", " = ", ""]),
              VALUE_TEXTS)
    | st.builds(lambda k, v: f"{k}={flow_yaml(v)}", st.sampled_from(SCHEMA_KEYS), YAML_JUNK)
    | st.sampled_from(["a.b=", "=x", "a..b=1", "=", "", "seed", "seed=1=2", "optim.lr=",
                                              "model.name=simlpe", "sched.name=step", "train.epochs=0\n"]),
    max_size=3,
)


# ---------------------------------------------------------------------------------------------------------------------
# Properties


@FUZZ
@given(data=config_files())
def test_config_files_load_or_raise_one_line(data: bytes) -> None:
    """A config file alone: random bytes and text, junk YAML, near-valid shipped configs."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "experiment.yaml"
        path.write_bytes(data)
        cfg = assert_loads_or_fails_cleanly(lambda: load_config(path), [path.name])
        assert cfg is None or isinstance(cfg, ExperimentConfig)


@FUZZ
@given(base=st.sampled_from([None, *sorted(SHIPPED_VALUES)]), overrides=OVERRIDES)
def test_overrides_apply_or_raise_one_line(base: str | None, overrides: list[str]) -> None:
    """Malformed and ill-typed ``key=value`` overrides on the defaults or on a shipped config."""
    path = None if base is None else next(p for p in SHIPPED if p.name == base)
    names = [*override_names(overrides), *([path.name] if path else [])]
    cfg = assert_loads_or_fails_cleanly(lambda: load_config(path, overrides), names)
    assert cfg is None or isinstance(cfg, ExperimentConfig)


@FUZZ
@given(data=config_files(), overrides=OVERRIDES)
def test_broken_files_with_overrides_load_or_raise_one_line(data: bytes, overrides: list[str]) -> None:
    """Both at once: a broken file and broken overrides, in whichever order the loader meets them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "experiment.yaml"
        path.write_bytes(data)
        assert_loads_or_fails_cleanly(lambda: load_config(path, overrides), [path.name, *override_names(overrides)])


# ---------------------------------------------------------------------------------------------------------------------
# Regression tests: inputs that once escaped


@pytest.mark.parametrize("shipped", sorted(SHIPPED_VALUES))
def test_shipped_configs_load(shipped: str) -> None:
    """The near-valid inputs start from configs that load."""
    assert isinstance(load_config(next(p for p in SHIPPED if p.name == shipped)), ExperimentConfig)


@pytest.mark.parametrize("data", [
    pytest.param(b"[" * 100_000, id="deep-nesting"),  # RecursionError in PyYAML's composer
    pytest.param(b"seed: " + b"1" * 5000 + b"\n", id="int-over-4300-digits"),  # ValueError from int()
    pytest.param(b"seed: 2001-13-01\n", id="bad-date"),  # ValueError from date()
    pytest.param(b"seed: !!timestamp x\n", id="tag-timestamp"),  # AttributeError in the constructor
    pytest.param(b"seed: !!bool x\n", id="tag-bool"),  # KeyError in the constructor
    pytest.param(b"optim: {lr: " + b"1" * 400 + b"}\n", id="int-too-large-for-float"),  # OverflowError in float()
    pytest.param(b'"a\\nb": 1\n', id="key-with-line-break"),  # the unknown-key message ran over two lines
    pytest.param(b"seed: [\n", id="yaml-syntax"),
])
def test_escaped_config_files_raise_one_line(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "experiment.yaml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and path.name in str(info.value)


@pytest.mark.parametrize("overrides, named", [
    pytest.param(["seed=["], "'seed=['", id="yaml-syntax"),  # the multi-line YAML error named no override
    pytest.param(["task=@x"], "'task=@x'", id="yaml-token"),
    pytest.param(["task=!!timestamp x"], "'task=!!timestamp x'", id="tag-timestamp"),  # AttributeError
    pytest.param(["seed=" + "1" * 5000], "seed=", id="int-over-4300-digits"),  # ValueError
    pytest.param(["optim.lr=1" + "0" * 400], "optim.lr", id="int-too-large-for-float"),  # OverflowError
    pytest.param(["sched.name=step", "train.epochs=0\n"], "sched.name=step", id="override-with-line-break"),
    pytest.param(["0\r0="], "'0\\r0='", id="key-with-carriage-return"),
])
def test_escaped_overrides_raise_one_line(overrides: list[str], named: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value) and "\r" not in str(info.value) and named in str(info.value)
