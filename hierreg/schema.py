"""A small strict schema for JSON read from files: every missing, extra or mistyped field is a
``ValueError`` that names it.

A schema is a value of these kinds:

* a Python type (``str``, ``int``, ``float``, ``bool``, ``dict``, ``list``) or a tuple of them:
  ``int`` refuses ``bool`` (JSON's ``true`` is not a count), ``float`` takes any number;
* :class:`Fields`: a JSON object with exactly these keys (each with its own schema);
* :class:`ListOf` / :class:`MapOf`: a list of items / an object of values, each checked;
* :class:`Optional`: ``null`` or the inner schema;
* :class:`Choice`: one of the given strings;
* :class:`Check`: the inner schema, then a predicate with the reason it failed;
* :class:`AnyOf`: the first of several schemas that matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AnyOf",
    "Check",
    "Choice",
    "Fields",
    "ListOf",
    "MapOf",
    "Optional",
    "plain",
    "validate",
]


@dataclass(frozen=True)
class Fields:
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class ListOf:
    item: Any
    min_length: int = 0


@dataclass(frozen=True)
class MapOf:
    value: Any


@dataclass(frozen=True)
class Optional:
    inner: Any


@dataclass(frozen=True)
class Choice:
    options: tuple[str, ...]


@dataclass(frozen=True)
class Check:
    inner: Any
    predicate: Callable[[Any], bool]
    reason: str


@dataclass(frozen=True)
class AnyOf:
    options: tuple[Any, ...]
    description: str


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    dict: "an object",
    list: "a list",
    type(None): "null",
}


def validate(value: Any, schema: Any, *, where: str, field: str = "") -> None:
    """Raise ``ValueError`` naming ``where`` and the field path if ``value`` does not match."""
    if isinstance(schema, Optional):
        if value is not None:
            validate(value, schema.inner, where=where, field=field)
        return
    if isinstance(schema, AnyOf):
        for option in schema.options:
            try:
                validate(value, option, where=where, field=field)
                return
            except ValueError:
                continue
        _fail(where, field, f"must be {schema.description}, got {_show(value)}")
    if isinstance(schema, Check):
        validate(value, schema.inner, where=where, field=field)
        if not schema.predicate(value):
            _fail(where, field, f"{schema.reason}, got {_show(value)}")
        return
    if isinstance(schema, Choice):
        if not isinstance(value, str) or value not in schema.options:
            options = ", ".join(repr(o) for o in schema.options)
            _fail(where, field, f"must be one of {options}, got {_show(value)}")
        return
    if isinstance(schema, Fields):
        if not isinstance(value, dict):
            _fail(where, field, f"must be an object, got {_kind(value)}")
        missing = [k for k in schema.fields if k not in value]
        extra = sorted(str(k) for k in value if k not in schema.fields)
        if missing:
            _fail(where, _join(field, missing[0]), "is missing")
        if extra:
            _fail(where, _join(field, extra[0]), "is not a field of this format (unexpected)")
        for key, sub in schema.fields.items():
            validate(value[key], sub, where=where, field=_join(field, key))
        return
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            _fail(where, field, f"must be a list, got {_kind(value)}")
        if len(value) < schema.min_length:
            _fail(where, field, f"must hold at least {schema.min_length} item(s)")
        for i, item in enumerate(value):
            validate(item, schema.item, where=where, field=f"{field}[{i}]")
        return
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            _fail(where, field, f"must be an object, got {_kind(value)}")
        for key, item in value.items():
            validate(item, schema.value, where=where, field=_join(field, str(key)))
        return
    types = schema if isinstance(schema, tuple) else (schema,)
    if not any(_is(value, t) for t in types):
        expected = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
        _fail(where, field, f"must be {expected}, got {_kind(value)} {_show(value)}")


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _kind(value: Any) -> str:
    for kind, name in _TYPE_NAMES.items():
        if _is(value, kind):
            return name
    return type(value).__name__


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(where: str, field: str, problem: str) -> None:
    raise ValueError(f"{where}: field {field or '(top level)'!r} {problem}")


def plain(value: Any) -> Any:
    """NumPy scalars -> Python scalars (JSON writes those)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value
