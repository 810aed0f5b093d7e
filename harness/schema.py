"""Typed config from YAML mappings: dataclasses are the single source of truth.

Every config dataclass documents its fields with ``field(metadata=doc(...))``. ``build`` turns a
plain mapping (from ``yaml.safe_load``) into such a dataclass, checking unknown keys (with the
closest suggestion), missing keys, types and allowed ranges, and raising a one-line ``UserError``
that names the file and the dotted key. ``schema_markdown`` renders the same metadata as the
documentation of the task file, so docs and checks cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Union

from harness.errors import UserError

MISSING = dataclasses.MISSING


def doc(
    text: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: tuple[str, ...] | None = None,
    gt: float | None = None,
    tunable: bool = False,
) -> dict:
    """Field metadata: its documentation and the checks ``build`` applies.

    ``min``/``max`` are inclusive bounds, ``gt`` an exclusive lower bound, ``choices`` the allowed
    strings (for lists: allowed items). ``tunable``: a list of values is a grid axis, tried on the validation
    split (``harness.strategies.base.grid``).
    """
    return {"doc": text, "min": min, "max": max, "gt": gt, "choices": choices, "tunable": tunable}


def closest(name: str, allowed: typing.Iterable[str]) -> str:
    """' (did you mean X?)' for the closest allowed name, or ''."""
    match = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if origin is list:
        item = typing.get_args(tp)[0]
        return "a list of " + {str: "strings", int: "integers", float: "numbers"}.get(item, _type_name(item))
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _convert(tp: Any, value: Any, key: str, file: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for arg in non_none:
            try:
                return _convert(arg, value, key, file)
            except UserError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else UserError(f"{file}: {key}: expected {_type_name(tp)}, got {value!r}")
    if origin is list:
        (item_type,) = typing.get_args(tp)
        if not isinstance(value, list):
            value = [value] if isinstance(value, (str, int, float)) and item_type is not str else value
        if not isinstance(value, list):
            raise UserError(f"{file}: {key}: expected {_type_name(tp)}, got {value!r}")
        return [_convert(item_type, v, f"{key}[{i}]", file) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{file}: {key}: expected a mapping, got {value!r}")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, file=file, prefix=key)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"{file}: {key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{file}: {key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{file}: {key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"{file}: {key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config type {tp!r} for {key}")  # a bug in a config class


def _check_range(meta: dict, value: Any, key: str, file: str) -> None:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if v is None:
            continue
        if meta.get("choices") and v not in meta["choices"]:
            raise UserError(
                f"{file}: {key}: unknown value {v!r}{closest(str(v), meta['choices'])}; "
                f"choose one of: {', '.join(meta['choices'])}"
            )
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if meta.get("min") is not None and v < meta["min"]:
                raise UserError(f"{file}: {key}: {v} is below the minimum {meta['min']}; use a value >= {meta['min']}")
            if meta.get("gt") is not None and v <= meta["gt"]:
                raise UserError(f"{file}: {key}: {v} must be greater than {meta['gt']}")
            if meta.get("max") is not None and v > meta["max"]:
                raise UserError(f"{file}: {key}: {v} is above the maximum {meta['max']}; use a value <= {meta['max']}")


def build(cls: type, raw: Any, *, file: str, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from mapping ``raw`` (``None`` means all defaults)."""
    label = prefix or "top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise UserError(f"{file}: {label}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in raw:
        if key not in fields:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            raise UserError(
                f"{file}: {dotted}: unknown key{closest(str(key), fields)}; allowed keys here: {', '.join(fields)}"
            )
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise UserError(f"{file}: {dotted}: required key is missing; add it ({f.metadata.get('doc', '')})")
            continue
        value = _convert(hints[name], raw[name], dotted, file)
        _check_range(dict(f.metadata), value, dotted, file)
        kwargs[name] = value
    return cls(**kwargs)


def schema_rows(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, doc) for every field, nested dataclasses flattened with dots."""
    rows = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        inner = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        if dataclasses.is_dataclass(tp) or inner:
            rows.append((key, "mapping", "", f.metadata.get("doc", "")))
            nested: Any = tp if isinstance(tp, type) and dataclasses.is_dataclass(tp) else inner[0]
            rows.extend(schema_rows(nested, key + "."))
            continue
        if f.default is not MISSING:
            default = repr(f.default) if f.default is not None else "—"
        elif f.default_factory is not MISSING:
            default = repr(f.default_factory())
        else:
            default = "required"
        text = f.metadata.get("doc", "")
        if f.metadata.get("choices"):
            text += f" One of: {', '.join(f.metadata['choices'])}."
        if f.metadata.get("tunable"):
            text += " Tunable: a list is a grid, tried on the validation split (see `tuning`)."
        rows.append((key, _type_name(tp), default, text))
    return rows


def schema_markdown(cls: type, prefix: str = "") -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, tp, default, text in schema_rows(cls, prefix):
        lines.append(f"| `{key}` | {tp} | {default.replace('|', '/')} | {text.replace('|', '/')} |")
    return "\n".join(lines)


def one(value: Any) -> Any:
    """A tunable field's value in one run's config (a grid point's scalar, never the list)."""
    if isinstance(value, list):
        raise TypeError("a grid axis, not one run's value: take it from the variant's params")
    return value


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null (``key: null``, or ``key:`` with nothing after it, in YAML)."""
    if isinstance(schema.get("type"), str) and "enum" not in schema:  # {"type": ["object", "null"], ...}: errors
        return {**schema, "type": [schema["type"], "null"]}  # name the key inside, where anyOf says only "not valid"
    return {"anyOf": [schema, {"type": "null"}]}


def _json_type(tp: Any, meta: dict) -> dict[str, Any]:
    """The JSON Schema of a value of type ``tp`` as ``build`` accepts it (``meta``: the field's checks)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [_json_type(a, meta) for a in typing.get_args(tp) if a is not type(None)]
        schema = options[0] if len(options) == 1 else {"anyOf": options}
        return nullable(schema) if type(None) in typing.get_args(tp) else schema
    if origin is list:
        (item,) = typing.get_args(tp)
        array = {"type": "array", "items": _json_type(item, meta)}
        # build wraps a lone number in a list ([4] for 4), never a lone string
        return array if item is str else {"anyOf": [_json_type(item, meta), array]}
    if origin is dict:
        return {"type": "object"}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return json_schema(tp)
    if tp is Any:
        return {}
    scalar: dict[str, Any] = {
        bool: {"type": "boolean"},
        int: {"type": "integer"},
        float: {"type": "number"},
        str: {"type": "string"},
    }[tp]
    if tp is str and meta.get("choices"):
        scalar["enum"] = list(meta["choices"])
    if tp in (int, float):
        if meta.get("min") is not None:
            scalar["minimum"] = meta["min"]
        if meta.get("gt") is not None:
            scalar["exclusiveMinimum"] = meta["gt"]
        if meta.get("max") is not None:
            scalar["maximum"] = meta["max"]
    return scalar


def _json_default(f: dataclasses.Field) -> Any:
    factory: Any = f.default_factory
    value = f.default if f.default is not MISSING else factory()
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) and not isinstance(value, type) else value


def json_schema(cls: type, fields: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A JSON Schema (draft 2020-12) object for dataclass ``cls``: the keys ``build`` accepts, unknown keys
    rejected, each with its doc, type, choices, bounds and default. ``fields`` gives the schema of a field whose
    type says only "a mapping" (e.g. the task's ``strategies``: one config class per name)."""
    hints = typing.get_type_hints(cls)
    properties: dict[str, Any] = {}
    required = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        meta = dict(f.metadata)
        prop = dict((fields or {}).get(f.name) or _json_type(hints[f.name], meta))
        if (fields or {}).get(f.name) and type(None) in typing.get_args(hints[f.name]):
            prop = nullable(prop)
        text = meta.get("doc", "")
        if meta.get("tunable"):
            text += " Tunable: a list is a grid, tried on the validation split (see `tuning`)."
        if text:
            prop = {"description": text, **{k: v for k, v in prop.items() if k != "description"}}
        if f.default is MISSING and f.default_factory is MISSING:
            required.append(f.name)
        else:
            prop["default"] = _json_default(f)
        properties[f.name] = prop
    schema: dict[str, Any] = {"type": "object"}
    if cls.__doc__ and not cls.__doc__.startswith(f"{cls.__name__}("):  # a docstring, not the dataclass signature
        schema["description"] = " ".join(cls.__doc__.split())
    schema["properties"] = properties
    if required:
        schema["required"] = required
    schema["additionalProperties"] = False
    return schema
