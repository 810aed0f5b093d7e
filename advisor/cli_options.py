"""Command-line options made from a dataclass: one option per field, whose name, type, bounds, default and help
all come from the field (``harness.schema.doc`` metadata), so the dataclass stays the one source of truth.

Field metadata beyond ``doc``: ``flag`` (the option's spelling, e.g. ``--out`` or ``--progress/--no-progress``)
and ``path`` ("dir" or "file": a path option; a file must exist).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class CommaList(click.ParamType):
    """'prompt, rag' -> ['prompt', 'rag']."""

    name = "list"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[str]:
        if isinstance(value, list):
            return value
        return [part.strip() for part in str(value).split(",") if part.strip()]


def _plain(tp: Any) -> Any:
    """``int | None`` -> int."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def _option_type(tp: Any, meta: dict[str, Any]) -> Any:
    if meta.get("choices"):
        return click.Choice(list(meta["choices"]))
    if meta.get("path"):
        return click.Path(
            file_okay=meta["path"] == "file",
            dir_okay=meta["path"] == "dir",
            exists=meta["path"] == "file",
            path_type=Path,
        )
    if typing.get_origin(tp) is list:
        return CommaList()
    if tp is int:
        return click.IntRange(min=meta.get("min"), max=meta.get("max"))
    if tp is float:
        lower = meta["gt"] if meta.get("gt") is not None else meta.get("min")
        return click.FloatRange(min=lower, max=meta.get("max"), min_open=meta.get("gt") is not None)
    return str


def dataclass_options(cls: type, *, skip: tuple[str, ...] = ()) -> Callable[[F], F]:
    """Decorate a click command with one option per documented field of dataclass ``cls``; the command gets
    each as a keyword argument named like the field."""
    hints = typing.get_type_hints(cls)

    def decorate(fn: F) -> F:
        for f in reversed(dataclasses.fields(cls)):
            meta = dict(f.metadata)
            if f.name in skip or "doc" not in meta:
                continue
            default = f.default if f.default is not dataclasses.MISSING else None
            flag = meta.get("flag") or "--" + f.name.replace("_", "-")
            tp = _plain(hints[f.name])
            if tp is bool:
                if "/" not in flag:
                    fn = click.option(flag, f.name, is_flag=True, default=default, help=meta["doc"])(fn)
                else:
                    fn = click.option(flag, f.name, default=default, show_default=True, help=meta["doc"])(fn)
                continue
            fn = click.option(
                flag,
                f.name,
                type=_option_type(tp, meta),
                default=default,
                show_default=default is not None,
                help=meta["doc"],
            )(fn)
        return fn

    return decorate
