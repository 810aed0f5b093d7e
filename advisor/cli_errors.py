"""How the command line fails: a user's mistake is one line on stderr and exit code 2, never a traceback;
Ctrl-C and SIGTERM stop with one line saying what was kept (exit 130). Every command uses these."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

import click

from harness.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


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
            click.echo(f"advisor: error: {err}", err=True)
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
                f"advisor: error: {info_name}: {err.format_message().rstrip('.')}; see 'advisor {info_name} --help'",
                err=True,
            )
            sys.exit(2)


class Commands(click.Group):
    """A command group whose every subcommand reports a bad option value in one line (exit 2)."""

    command_class = OneLineUsageErrors
