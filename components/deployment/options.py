"""Typed options of one runtime or router: a dataclass per implementation, filled from a mapping.

Values from the command line arrive as text and are converted by the field's type; an unknown key
is an error naming it and listing the known ones.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, TypeVar, get_type_hints

from components.errors import InvalidInputError
from components.inputs import clipped

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def parse_options(owner: str, kind: type[T], values: dict) -> T:
    """`kind` built from `values`; `owner` names the option family in errors (e.g. runtime_options)."""
    hints = get_type_hints(kind)
    known = {f.name for f in fields(kind)}
    converted = {}
    for key, value in (values or {}).items():
        if key not in known:
            raise InvalidInputError(f"{owner}.{key}", "is not an option here",
                                    f"use one of {', '.join(sorted(known)) or '(none)'}")
        converted[key] = _convert(f"{owner}.{key}", value, hints[key])
    return kind(**converted)


def _convert(name: str, value, hint):
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE + _FALSE:
            return str(value).lower() in _TRUE
        raise InvalidInputError(name, f"{clipped(value)} is not true or false", "pass true or false")
    if hint is int:
        if isinstance(value, bool):
            raise InvalidInputError(name, f"{clipped(value)} is not a whole number", "pass a whole number")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InvalidInputError(name, f"{clipped(value)} is not a whole number", "pass a whole number") from None
    if hint is str:
        if isinstance(value, (dict, list)):
            raise InvalidInputError(name, f"{clipped(value)} is not text", "pass a single value")
        return str(value)
    if hint == tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        return tuple(str(item).strip() for item in items if str(item).strip())
    return value
