"""Command-line options made from a dataclass: one option per field, whose name, type, bounds, default and help
all come from the field (``harness.schema.doc`` metadata), so the dataclass stays the one source of truth.

Field metadata beyond ``doc``: ``flag`` (the option's spelling, e.g. ``--out`` or ``--progress/--no-progress``)
and ``path`` ("dir" or "file": a path option; a file must exist).

Also the options every command shares: ``--quiet``/``--verbose`` (``verbosity``), ``--set KEY=VALUE``
(``overrides_option``), whether progress bars show (``show_progress``) and ``advisor --version``
(``version_text``: package versions read from their metadata, nothing imported).
"""

from __future__ import annotations

import dataclasses
import platform
import sys
import types
import typing
from collections.abc import Callable
from importlib import metadata
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


# what advisor --version lists beside its own version, when installed (read from metadata, never imported)
KEY_PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "ray", "mlflow", "llama-cpp-python")
VERBOSITY = "advisor.verbosity"  # in the root context's meta: -1 quiet, 0 normal, 1 verbose


def version_text() -> str:
    """``advisor X`` and the versions of Python and the key packages."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    lines = [f"advisor {version('advisor') or 'unknown (not installed)'}", f"python {platform.python_version()}"]
    for name in KEY_PACKAGES:
        found = version(name)
        lines.append(f"{name} {found if found else '(not installed)'}")
    return "\n".join(lines)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(version_text())
        ctx.exit()


version_option = click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print advisor's version and the versions of Python and the key packages, then exit.",
)


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value:
        level = -1 if param.name == "quiet" else 1
        meta = ctx.find_root().meta
        if meta.get(VERBOSITY, 0) not in (0, level):
            raise click.UsageError("--quiet and --verbose contradict each other; give one")
        meta[VERBOSITY] = level


def verbosity_params() -> list[click.Parameter]:
    """``-q/--quiet`` and ``-v/--verbose``: on the group and on every command (``advisor -q compare`` or
    ``advisor compare ... -q``)."""
    return [
        click.Option(
            ["-q", "--quiet"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Print only the final lines and errors (no progress bars, no per-run lines).",
        ),
        click.Option(
            ["-v", "--verbose"],
            is_flag=True,
            expose_value=False,
            callback=_set_verbosity,
            help="Print more: the settings, each run's record, the workers' warnings and library logs.",
        ),
    ]


def verbosity() -> int:
    """-1 (--quiet), 0 or 1 (--verbose) for the running command."""
    ctx = click.get_current_context(silent=True)
    return int(ctx.find_root().meta.get(VERBOSITY, 0)) if ctx else 0


def show_progress(asked: bool | None) -> bool:
    """Progress bars: as asked (--progress / --no-progress); by default only on a terminal and never with --quiet
    (a log file or a pipe gets no bar redrawn in place)."""
    if asked is not None:
        return asked
    return verbosity() >= 0 and sys.stdout.isatty() and sys.stderr.isatty()


progress_option = click.option(
    "--progress/--no-progress",
    "progress",
    default=None,
    help="Show progress bars.  [default: when stdout is a terminal, and not with --quiet]",
)


overrides_option = click.option(
    "--set",
    "overrides",
    metavar="KEY=VALUE",
    multiple=True,
    help="Override a task-file key (repeatable; VALUE is YAML), e.g. --set strategies.lora.rank=16 --set "
    "'strategies.prompt.shots=[0]'. Checked like the file; the records keep the merged task.",
)
