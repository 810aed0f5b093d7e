"""``advisor view DIR`` (and ``advisor report DIR --open``): serve DIR's report.html, and the files beside it that
it links (run records), on 127.0.0.1 at a free port, open it in the browser, and keep serving until Ctrl-C.

Only loopback: the server is never reachable from another machine (over ssh, forward the port: ``ssh -L``). With
no display (Linux without DISPLAY or WAYLAND_DISPLAY, e.g. over ssh) or no browser, the URL is printed to open by
hand; it is printed in every case. A console browser (lynx, w3m) is never started in the terminal.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import webbrowser
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import click

from advisor.cli_errors import OneLineUsageErrors, user_errors
from harness.errors import UserError

HOST = "127.0.0.1"
REPORT = "report.html"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Files of one folder; no request log on stderr (the terminal shows the URL and nothing else)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ReportServer:
    """DIR served over http on 127.0.0.1 in a background thread; a context manager that stops it cleanly."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        self.folder = Path(folder)
        report = self.folder / REPORT
        if not report.is_file():
            raise UserError(f"{report}: no report here; write one with advisor compare TASK or advisor report DIR")
        handler = functools.partial(_QuietHandler, directory=str(self.folder.resolve()))
        try:
            self.server = ThreadingHTTPServer((HOST, port), handler)  # port 0: the system picks a free one
        except OSError as err:
            raise UserError(f"--port {port}: cannot listen on {HOST}: {err.strerror or err}") from None
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="advisor-view", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/{REPORT}"

    def start(self) -> ReportServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join()
        self.server.server_close()

    def wait(self) -> None:
        """Until Ctrl-C (KeyboardInterrupt) or SIGTERM (which the commands turn into one)."""
        while self.thread.is_alive():
            self.thread.join(0.5)

    def __enter__(self) -> ReportServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def has_display(environ: dict[str, str] | None = None, platform: str = sys.platform) -> bool:
    """Whether a graphical browser could show a page: on Linux and the BSDs, an X or Wayland display."""
    env = os.environ if environ is None else environ
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True  # macOS and Windows always have one


def open_browser(url: str, echo: Callable[[str], None], opener: Callable[[str], bool] = webbrowser.open) -> bool:
    """Open ``url`` when there is a display and a browser; otherwise say to open it by hand."""
    if has_display() and opener(url):
        return True
    echo(f"no browser here: open {url} (from another machine: ssh -L PORT:127.0.0.1:PORT, then the same URL)")
    return False


def view_report(folder: Path, port: int = 0, echo: Callable[[str], None] = click.echo) -> None:
    """Serve ``folder``'s report until Ctrl-C or SIGTERM, which stop it with one line on stderr and exit code 130,
    as every command stops (``advisor.cli_errors``)."""
    report = Path(folder) / REPORT
    with ReportServer(folder, port) as server:
        echo(f"serving {report} at {server.url} (Ctrl-C stops)")
        sys.stdout.flush()  # a parent reading a pipe sees the URL now
        open_browser(server.url, echo)
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            server.wait()  # serves until interrupted
    click.echo(f"advisor: interrupted: stopped serving {report}", err=True)
    sys.exit(130)


port_option = click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 to serve the report on (0: a free one).",
)


@click.command(
    cls=OneLineUsageErrors,
    epilog="""\b
Examples:
  advisor view reports/support-intents
  advisor view reports/support-intents --port 8765    # then, from a laptop: ssh -L 8765:127.0.0.1:8765 HOST""",
)
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@port_option
@user_errors
def view(results_dir: Path, port: int) -> None:
    """Serve RESULTS_DIR/report.html on 127.0.0.1 and open it in the browser (or print its URL) until Ctrl-C."""
    view_report(results_dir, port)
