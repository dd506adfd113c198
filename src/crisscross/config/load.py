"""YAML <-> typed config, with dotted overrides (``optim.lr=3e-4``) and strict validation.

Unknown keys, wrong types and out-of-range values raise :class:`ConfigError` naming the dotted key and
what is allowed. Values in overrides are parsed as YAML scalars (``3e-4``, ``true``, ``[1, 2]``, ``null``).
"""

from __future__ import annotations

import copy
import dataclasses
import re
import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from crisscross.config.schema import ConfigError, ExperimentConfig

__all__ = ["QUICKSTART_CONFIG", "apply_overrides", "build_dataclass", "config_from_dict", "config_to_dict",
           "dump_config", "load_config", "parse_override", "parse_yaml", "printable_key", "read_yaml"]


def _yaml_load_float_aware(text: str) -> Any:
    # PyYAML follows YAML 1.1 and reads "3e-4" as a string: parse_override's caller turns such strings into floats
    # (_coerce_scalar_string), as YAML 1.2 reads them.
    return parse_yaml(text)


def _yaml_problem(err: yaml.YAMLError) -> str:
    """One line of a YAML error: its problem (PyYAML's message runs over several lines with the marks)."""
    problem = getattr(err, "problem", None) or (str(err).strip().splitlines() or [type(err).__name__])[0]
    return " ".join(str(problem).split())


def parse_yaml(text: str, where: str = "") -> Any:
    """``yaml.safe_load(text)``, or a one-line :class:`ConfigError` ``"<where>[:<line>]: cannot parse YAML: ..."``.

    Besides PyYAML's own errors this catches what its composer and constructors let through on hostile input:
    ``RecursionError`` for deep nesting; ``ValueError`` for an integer of over 4300 digits or a date like
    2001-13-01; ``AttributeError``, ``KeyError`` and the like for a scalar under an explicit tag it does not fit
    (``!!timestamp x``, ``!!bool x``).
    """
    prefix = f"{where}: " if where else ""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{where}:{mark.line + 1}: " if where and mark is not None else prefix
        raise ConfigError(f"{at}cannot parse YAML: {_yaml_problem(err)}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError(f"{prefix}cannot parse YAML: nested too deeply") from None
    except Exception as err:  # a constructor's int(), date() or lookup failed on a scalar (see above)
        detail = " ".join(str(err).split())
        raise ConfigError(f"{prefix}cannot parse YAML: a value its tag or type cannot hold "
                          f"({type(err).__name__}{': ' + detail if detail else ''})") from None


def read_yaml(path: Path, what: str = "file") -> Any:
    """The YAML file ``path`` as plain values, or a one-line :class:`ConfigError` naming the file (and the line
    where parsing failed) when it cannot be read, decoded or parsed."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the {what} ({type(err).__name__})") from None
    return parse_yaml(text, str(path))


_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _coerce_scalar_string(value: str) -> Any:
    return float(value) if _FLOAT_RE.match(value.strip()) else value


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: got {value!r}, expected {_type_name(tp)}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping of {_field_names(tp)}, got {value!r}")
        return _build(tp, value, key)
    if origin is tuple:
        if isinstance(value, (str, int, float)) and args and args[-1] is Ellipsis and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list ({_type_name(tp)}), got {value!r}")
        if args and args[-1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, str):
            value = _coerce_scalar_string(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:  # an integer of over 308 digits
                raise ConfigError(f"{key}: expected a number, got an integer too large for a float") from None
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported type {tp}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _field_names(cls: type) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def printable_key(key: str) -> str:
    """``key`` as a message shows it: quoted when it holds a line break or another control character (a key
    written in YAML quotes may), so that the message stays one line."""
    return key if key.isprintable() else repr(key)


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in values.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if k not in names:
            where = f" in {prefix}" if prefix else ""
            raise ConfigError(f"{printable_key(key)}: unknown key; allowed keys{where}: {_field_names(cls)}")
        kwargs[k] = _convert(v, hints[k], key)
    return cls(**kwargs)


def build_dataclass(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    """Build and validate any config dataclass ``cls`` (nested dataclasses included) from plain values.

    The typed converter behind every config file of crisscross: unknown keys, wrong types and out-of-range values
    raise :class:`ConfigError` naming the dotted key under ``prefix``.
    """
    return _build(cls, values, prefix)


def config_from_dict(values: dict[str, Any] | None) -> ExperimentConfig:
    """Build and validate an :class:`ExperimentConfig` from plain nested values."""
    return _build(ExperimentConfig, values or {}, "")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config (tuples become lists), suitable for YAML/JSON."""

    def plain(x: Any) -> Any:
        if dataclasses.is_dataclass(x):
            return {f.name: plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        return x

    return plain(cfg)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``"a.b.c=value"`` into the key path and the YAML-parsed value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. optim.lr=3e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r}: empty key")
    try:
        value = _yaml_load_float_aware(raw) if raw.strip() else ""
    except ConfigError as err:  # name the override: the YAML error alone does not say which value it is about
        raise ConfigError(f"override {text!r}: {err}") from None
    if isinstance(value, str):
        value = _coerce_scalar_string(value)
    return key.split("."), value


def apply_overrides(values: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of nested ``values`` with dotted overrides applied (``model.args.*`` keys are free-form)."""
    result = copy.deepcopy(values)
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {printable_key(part)} is not a section")
            node = child
        node[path[-1]] = value
    return result


QUICKSTART_CONFIG = Path(__file__).with_name("quickstart.yaml")


def _drop_base_model_args(values: dict[str, Any], overrides: list[str]) -> None:
    # A base file's model.args belong to its model: overriding model.name alone must not hand them to another
    # model (simlpe has no `dim`). Overriding model.args.* as well keeps them.
    keys = [parse_override(o)[0] for o in overrides]
    renamed = any(k == ["model", "name"] for k in keys)
    args_given = any(k[:2] == ["model", "args"] for k in keys)
    if renamed and not args_given and isinstance(values.get("model"), dict):
        values["model"].pop("args", None)


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Load a YAML config file (or the defaults when ``path`` is None) and apply dotted overrides.

    Overriding ``model.name`` without any ``model.args.*`` override drops the file's ``model.args``.
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        loaded = read_yaml(path, "config file")
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
        values = loaded or {}
        try:  # the file alone first, so that an error is blamed on the file or on the override that caused it
            config_from_dict(values)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    overrides = list(overrides)
    _drop_base_model_args(values, overrides)
    values = apply_overrides(values, overrides)
    try:
        return config_from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{_culprit(str(err), overrides)}: {err}") from None


def _culprit(message: str, overrides: list[str]) -> str:
    """The override a validation message (``"optim.lrr: unknown key; ..."``) is about, or all of them."""
    key = message.split(":", 1)[0].strip()
    for override in overrides:
        name = override.split("=", 1)[0].strip()
        if name == key or key.startswith(name + ".") or name.startswith(key + "."):
            return f"command-line override {override!r}"
    # repr for an override with a line break or another control character: the message stays one line
    shown = [o if o.isprintable() else repr(o) for o in overrides]
    return "command-line overrides " + " ".join(shown) if overrides else "config"


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
