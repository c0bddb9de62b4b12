"""Snapshots to JSON and back, losslessly, driven by the dataclasses' own type hints.

Used for the recorded fleets the TUI tests replay and for `--run status --format json`'s raw
section. Only the types that appear in dr_console.models are supported; anything else is a
programming error and raises TypeError.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from datetime import datetime
from typing import Any

from dr_console import models

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls, vars(models))
    return _HINTS[cls]


def to_plain(value: Any) -> Any:
    """Any models value -> JSON-ready data (datetimes as ISO-8601, enums by value)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [to_plain(v) for v in value]
    return value


def from_plain(tp: Any, data: Any) -> Any:
    """The inverse of to_plain for type `tp`."""
    if tp is Any:
        return data
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if data is None:
            return None
        return from_plain(members[0], data)
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(from_plain(args[0], v) for v in data)
        return tuple(from_plain(a, v) for a, v in zip(args, data, strict=True))
    if origin is dict:
        _, value_tp = typing.get_args(tp)
        return {k: from_plain(value_tp, v) for k, v in data.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        kwargs = {
            f.name: from_plain(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(data)
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is float and isinstance(data, int):
        return float(data)
    if tp in (str, int, float, bool):
        return data
    raise TypeError(f"unsupported type in snapshot: {tp!r}")


def fleet_to_json(fleet: models.FleetSnapshot, *, indent: int | None = 1) -> str:
    return json.dumps(to_plain(fleet), indent=indent, sort_keys=True)


def fleet_from_json(text: str) -> models.FleetSnapshot:
    result = from_plain(models.FleetSnapshot, json.loads(text))
    assert isinstance(result, models.FleetSnapshot)
    return result
