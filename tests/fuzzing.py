"""Hypothesis helpers shared by the fuzzing tests: awkward integers and the one-thing-broken mutation of a value.

Importable from any test module (pytest puts this folder, the one holding the root ``conftest.py``, on
``sys.path``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

__all__ = ["HUGE_INTS", "mutate"]

# Integers YAML and pickles carry but int64, float and C code do not.
HUGE_INTS = st.sampled_from([2**63, -(2**63) - 1, 2**64 + 1, 10**400, -(10**400)])


def mutate(draw: st.DrawFn, value: Any, junk: st.SearchStrategy, keys: st.SearchStrategy,
           leaf: Callable[[st.DrawFn, Any], Any] | None = None) -> Any:
    """``value`` (nested dicts and lists) with at most one thing broken at one level.

    At the chosen level the value is kept, replaced by a draw of ``junk``, emptied, wrapped in a list, or (a
    container) loses an entry or gains one under a key drawn from ``keys``; ``leaf(draw, value)``, when given, is
    one more way to break it (a tensor reshaped or retyped, say) and returns the value unchanged where it does
    not apply.
    """
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(list(value)))
        return {**value, key: mutate(draw, value[key], junk, keys, leaf)}
    if isinstance(value, list) and value and draw(st.booleans()):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], mutate(draw, value[index], junk, keys, leaf), *value[index + 1:]]
    ways = ("keep", "junk", "drop", "extra", "empty", "wrap") + (("leaf",) if leaf is not None else ())
    how = draw(st.sampled_from(ways))
    if how == "junk":
        return draw(junk)
    if how == "drop" and isinstance(value, dict) and value:
        key = draw(st.sampled_from(list(value)))
        return {k: v for k, v in value.items() if k != key}
    if how == "drop" and isinstance(value, list) and value:
        return value[1:]
    if how == "extra" and isinstance(value, dict):
        return {**value, draw(keys): draw(junk)}
    if how == "extra" and isinstance(value, list):
        return [*value, draw(junk)]
    if how == "empty":
        return type(value)() if isinstance(value, list | dict | str) else None
    if how == "wrap":
        return [value]
    if how == "leaf":
        return leaf(draw, value)
    return value
