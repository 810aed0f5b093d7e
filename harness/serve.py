"""An OpenAI-compatible server on a GGUF model: llama.cpp's (``llama_cpp.server``, the ``serve`` extra), run in
this process by ``advisor serve``; ``start_server`` runs that command as a subprocess for tests and benchmarks.

The API key reaches the server only in memory (``ServerSettings.api_key``): never argv, a file or a log line.
llama_cpp.server and uvicorn load only in ``serve``: they add most of a second to every other command's start.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from harness.catalog import models, resolve_model
from harness.errors import UserError
from harness.schema import closest

DEFAULT_MODEL = "smollm2-135m-instruct"
GRACE_S = 5  # seconds a stopping server gives the requests in flight
INSTALL_HINT = "pip install 'llama-cpp-python[server]==0.3.36' (or pip install -e '.[serve]')"


def gguf_path(model: str) -> tuple[Path, str]:
    """(the .gguf file, the name it is served under): a catalog name that ships a GGUF file (served under that
    name), a .gguf file or a folder holding one (served under the file's stem)."""
    where = f"MODEL '{model}'"
    entries = models()
    servable = [name for name, entry in entries.items() if entry.get("gguf_file")]
    if model in entries:
        ref = resolve_model(model, where=where)
        if not ref.gguf_file:
            raise UserError(
                f"{where} has no GGUF file in data/catalog/models.yaml; give a .gguf file, a folder holding one, "
                f"or one of: {', '.join(servable)}"
            )
        file = Path(ref.location) / ref.gguf_file
        if not file.is_file():
            raise UserError(f"{where}: {file} is missing; reinstall the model's package or give a .gguf file")
        return file, model
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UserError(f"{where} is not a .gguf file; give a GGUF model file, a folder holding one, or a name")
        return path.resolve(), path.stem
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        if not files:
            raise UserError(f"{where} is a folder without a .gguf file; give a .gguf file or a folder holding one")
        if len(files) > 1:
            raise UserError(f"{where} is a folder with {len(files)} .gguf files; give the .gguf file to serve")
        return files[0].resolve(), files[0].stem
    if model.endswith(".gguf") or os.sep in model:
        raise UserError(f"{where}: no such file or folder; give a .gguf file, a folder holding one, or a model name")
    raise UserError(
        f"{where} is not a model in data/catalog/models.yaml{closest(model, entries)}, a file or a folder; "
        f"give one of: {', '.join(servable)}, a .gguf file or a folder holding one"
    )


def all_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_loopback(host: str) -> bool:
    """This machine: localhost or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to HOST:PORT (uvicorn listens on it): the port is checked and held before the model loads."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise UserError(f"--host {host}: not an address of this machine ({err.strerror}); use 127.0.0.1") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closed port's TIME_WAIT is free
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use; pick another with --port") from None
        raise UserError(f"--host {host} --port {port}: cannot listen there ({err.strerror}); use 127.0.0.1") from None
    return sock


def _no_cancelled_tracebacks(record: logging.LogRecord) -> bool:
    """Drop the traceback uvicorn logs for each request it cancels at shutdown: a stop, not an error."""
    asyncio = sys.modules.get("asyncio")  # uvicorn runs on it; not imported here, so `advisor --help` skips it
    return not (record.exc_info and asyncio and isinstance(record.exc_info[1], asyncio.CancelledError))


def serve(
    model: str,
    *,
    host: str,
    port: int,
    api_key: str | None,
    n_threads: int | None,
    n_ctx: int,
    on_ready: Callable[[str, str], None] | None = None,
) -> None:
    """Serve MODEL at http://HOST:PORT/v1 until SIGINT or SIGTERM; ``on_ready(base_url, served name)`` once the
    port is held and the model loaded. ``api_key``: the bearer key every request must carry (None: none).
    ``n_threads``: CPU threads for generation and prompt processing (None: all cores). Ends by re-raising the
    stopping signal once the server has shut down (KeyboardInterrupt under Python's SIGINT handler), as uvicorn does."""
    path, name = gguf_path(model)
    try:
        import uvicorn
        from llama_cpp.server.app import create_app
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as err:
        raise UserError(f"serve needs {err.name or err}, which is not installed; run: {INSTALL_HINT}") from None

    threads = n_threads or all_cores()
    sock = _bind(host, port)
    with sock:
        os.environ.pop("CONFIG_FILE", None)  # create_app would replace every setting here, the key included, by it
        # model_construct: the arguments and the defaults alone (pydantic-settings' constructors would also read
        # MODEL, SEED, CACHE, API_KEY, ... from the environment)
        app = create_app(
            server_settings=ServerSettings.model_construct(
                host=host,
                port=port,
                api_key=api_key,
                # a new request would otherwise cut a streaming response short: concurrent clients get whole answers
                interrupt_requests=False,
            ),
            model_settings=[
                ModelSettings.model_construct(
                    model=str(path),
                    model_alias=name,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_ctx=n_ctx,
                    verbose=False,
                )
            ],
        )
        # on Ctrl-C, requests in flight get GRACE_S to finish, then are cancelled (uvicorn says so in one line)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=GRACE_S))
        logging.getLogger("uvicorn.error").addFilter(_no_cancelled_tracebacks)
        if on_ready is not None:
            on_ready(base_url(host, port), name)
        server.run(sockets=[sock])


@dataclass
class RunningServer:
    """A server ``start_server`` started: its base URL (ending in /v1), process, served model name and key."""

    base_url: str
    process: subprocess.Popen[bytes]
    model: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    stdout_file: IO[bytes] | None = field(default=None, repr=False)
    stderr_file: IO[bytes] | None = field(default=None, repr=False)

    def headers(self) -> dict[str, str]:
        """The Authorization header its clients send (none without a key)."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def stdout(self) -> str:
        """What the server has printed so far."""
        return _read(self.stdout_file)

    def stderr(self) -> str:
        return _read(self.stderr_file)

    def stop(self, timeout_s: float = 15) -> int:
        """SIGINT (Ctrl-C), then SIGKILL after ``timeout_s``: the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait()


def _read(file: IO[bytes] | None) -> str:
    """A file the server writes to, read without moving the offset it shares with the server."""
    if file is None:
        return ""
    fd = file.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


def _models_status(url: str, headers: dict[str, str]) -> int | None:
    """GET URL's status, or None while nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@contextlib.contextmanager
def start_server(
    model: str = DEFAULT_MODEL,
    *,
    port: int | None = None,
    api_key_env: str | None = None,
    env: dict[str, str] | None = None,
    n_threads: int = 1,
    ready_timeout_s: float = 120,
) -> Iterator[RunningServer]:
    """``advisor serve MODEL`` as a subprocess on 127.0.0.1 (a free port unless given), yielded once
    ``GET /v1/models`` answers 200 and stopped on exit (``RunningServer.stop``). The key, if any, is
    ``env[api_key_env]`` (``env`` defaults to this process's environment) and reaches the server only in that
    variable. A server that exits, refuses the key or does not answer within ``ready_timeout_s`` raises RuntimeError
    with the end of its stderr."""
    env = dict(os.environ if env is None else env)
    api_key = None
    if api_key_env is not None:
        api_key = env.get(api_key_env)
        if not api_key:
            raise ValueError(f"start_server: {api_key_env} is not set (or empty) in env")
    _, served = gguf_path(model)  # a bad MODEL fails here, in one line
    port = free_port() if port is None else port
    command = [sys.executable, "-m", "advisor.cli", "serve", model, "--port", str(port), "--host", "127.0.0.1"]
    command += ["--threads", str(n_threads)] + (["--api-key-env", api_key_env] if api_key_env else [])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        server = RunningServer(base_url("127.0.0.1", port), process, served, api_key, api_key_env, out, err)
        try:
            deadline = time.monotonic() + ready_timeout_s
            while (status := _models_status(f"{server.base_url}/models", server.headers())) != 200:
                if status is not None:
                    why = f"answered GET /v1/models with HTTP {status}"
                elif process.poll() is not None:
                    why = f"exited with code {process.returncode}"
                elif time.monotonic() > deadline:
                    why = f"did not answer within {ready_timeout_s:.0f} s"
                else:
                    time.sleep(0.2)
                    continue
                tail = "\n".join(server.stderr().splitlines()[-20:])
                raise RuntimeError(f"advisor serve {model} {why}; its stderr ends:\n{tail}")
            yield server
        finally:
            server.stop()
