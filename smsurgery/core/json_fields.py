"""Check the JSON values given for a dataclass's fields against the fields' types.

An edit read from JSON (`{"op": "rename_signature", "old": ["a"], ...}`)
reaches code that expects a `str` where the file holds a list; the result
would be a TypeError deep inside protobuf. The field annotations already
say what each field takes (`str`, `str | None`, `bool`, `Mapping[str,
str]`), so each value is checked against them once, at the door, and a
wrong one is named with the type it should have had.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

_JSON_NAMES = {str: "a string", bool: "true or false", int: "an integer", float: "a number", type(None): "null"}


def _matches(value: Any, kind: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(kind))
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        key_type, value_type = typing.get_args(kind) or (Any, Any)
        return isinstance(value, Mapping) and all(
            _matches(k, key_type) and _matches(v, value_type) for k, v in value.items()
        )
    if kind is Any:
        return True
    if kind in (int, float) and isinstance(value, bool):
        return False
    return isinstance(value, kind) if isinstance(kind, type) else True


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(option) for option in typing.get_args(kind))
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        return "an object of strings"
    return _JSON_NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", dict: "an object", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def wrong_field(cls: type, arguments: Mapping[str, Any]) -> str | None:
    """`'old' must be a string, not a list` for the first field whose value has the wrong type; None if all fit."""
    hints = typing.get_type_hints(cls)
    for name, value in arguments.items():
        if name in hints and not _matches(value, hints[name]):
            return f"'{name}' must be {_describe(hints[name])}, not {_json_type(value)}"
    return None
