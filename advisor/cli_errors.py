"""How the command line fails: a user's mistake is one line on stderr and exit code 2, never a traceback;
Ctrl-C and SIGTERM stop with one line saying what was kept (exit 130). Every command uses these.

Colour: only the "error:" prefix, only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org:
the group's context turns colour off, and every ``click.echo`` under it strips styles)."""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import click

from advisor.cli_options import verbosity_params
from harness.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])
ERROR = click.style("error", fg="red", bold=True)


def no_color() -> bool:
    """NO_COLOR set to anything but the empty string (https://no-color.org)."""
    return bool(os.environ.get("NO_COLOR"))


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (a scheduler or `kill`) stops like Ctrl-C: finished runs kept, worker stopped, one line."""
    raise KeyboardInterrupt


def user_errors(fn: F) -> F:
    """Run a command: a UserError is one line on stderr and exit code 2; an interrupt, one line and 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        signal.signal(signal.SIGTERM, _terminate)
        # Ctrl-C (SIGINT) interrupts even when the shell that started us ignored it (`nohup advisor ... &`)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            click.echo(f"advisor: {ERROR}: {err}", err=True, color=False if no_color() else None)
            sys.exit(2)
        except KeyboardInterrupt as err:
            kept = f"{err}; " if str(err) else "finished runs are kept in the output folder; "
            click.echo(f"advisor: interrupted: {kept}run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


class OneLineUsageErrors(click.Command):
    """A bad option value is one line on stderr and exit code 2, like every other user mistake."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as err:
            click.echo(
                f"advisor: {ERROR}: {info_name}: {err.format_message().rstrip('.')}; see 'advisor {info_name} --help'",
                err=True,
                color=False if no_color() else None,
            )
            sys.exit(2)


class Commands(click.Group):
    """A command group whose every subcommand reports a bad option value in one line (exit 2) and takes
    ``--quiet``/``--verbose``; ``NO_COLOR`` turns colour off for all of them."""

    command_class = OneLineUsageErrors

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        if no_color():
            extra["color"] = False  # subcommands' contexts inherit it
        return super().make_context(info_name, args, parent=parent, **extra)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        have = {opt for param in cmd.params for opt in param.opts}
        cmd.params.extend(p for p in verbosity_params() if not have & set(p.opts))
        super().add_command(cmd, name)
