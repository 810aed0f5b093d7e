"""Dataclasses to JSON and back, by their type hints: enums by value, nested dataclasses, lists, optionals.

Records and results are typed in memory and plain JSON on disk; this is the one conversion between the two.
Keys a dataclass does not know are ignored when loading (a newer writer may add some); missing keys take the
field's default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar, Union

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


def from_jsonable(cls: type[T], data: dict[str, Any]) -> T:
    """An instance of dataclass ``cls`` from its JSON form."""
    hints = typing.get_type_hints(cls)
    kwargs = {
        f.name: _convert(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)  # type: ignore[arg-type]
        if f.init and f.name in data
    }
    return cls(**kwargs)


def _convert(tp: Any, value: Any) -> Any:
    if value is None or tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(options[0], value) if len(options) == 1 else value
    if origin in (list, tuple):
        (item,) = typing.get_args(tp)[:1]
        converted = [_convert(item, v) for v in value]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        args = typing.get_args(tp)
        return {k: _convert(args[1], v) for k, v in value.items()} if args else dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_jsonable(tp, value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is float and isinstance(value, int):
        return float(value)
    return value
