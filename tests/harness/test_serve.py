"""``advisor serve``: llama.cpp's OpenAI-compatible server on the packaged GGUF model, driven by the openai client;
its one-line errors; Ctrl-C. The unit tests (MODEL resolution, a missing extra) start no server."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest

from harness.errors import UserError
from harness.serve import DEFAULT_MODEL, free_port, gguf_path, serve, start_server
from tests.conftest import ROOT

integration = pytest.mark.integration


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "advisor.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("advisor: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""  # nothing started


# --- MODEL: what is served (no server) ---


def test_a_catalog_name_serves_its_packaged_gguf_under_that_name():
    path, name = gguf_path(DEFAULT_MODEL)
    assert path.is_file() and path.suffix == ".gguf"
    assert name == DEFAULT_MODEL


def test_a_gguf_file_or_a_folder_holding_one_serves_it_under_its_stem(tmp_path):
    file = tmp_path / "tiny-model.Q4_0.gguf"
    file.write_bytes(b"GGUF")
    assert gguf_path(str(file)) == (file.resolve(), "tiny-model.Q4_0")
    assert gguf_path(str(tmp_path)) == (file.resolve(), "tiny-model.Q4_0")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda d: "smollm2-135m-instrukt", "did you mean 'smollm2-135m-instruct'"),
        (lambda d: str(d / "absent.gguf"), "no such file or folder"),
        (lambda d: str(d), "a folder without a .gguf file"),
        (lambda d: (d / "notes.txt").write_text("x") and str(d / "notes.txt"), "is not a .gguf file"),
        (lambda d: [(d / n).write_bytes(b"GGUF") for n in ("a.gguf", "b.gguf")] and str(d), "2 .gguf files"),
        (lambda d: "qwen2.5-0.5b", "has no GGUF file"),  # a catalog entry with shapes only
    ],
    ids=["unknown-name", "missing-file", "empty-folder", "not-gguf", "two-ggufs", "catalog-without-gguf"],
)
def test_a_model_that_cannot_be_served_is_a_one_line_user_error(tmp_path, make, fragment):
    with pytest.raises(UserError, match="MODEL") as err:
        gguf_path(make(tmp_path))
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_without_the_server_extra_serve_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    with pytest.raises(UserError, match=r"pip install 'llama-cpp-python\[server\]==0.3.36'"):
        serve(DEFAULT_MODEL, host="127.0.0.1", port=free_port(), api_key=None, n_threads=1, n_ctx=512)


# --- a real server (one per session, with a key) ---


def client(server, api_key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=api_key or server.api_key, max_retries=0, timeout=120)


@integration
def test_the_openai_client_gets_a_chat_completion_with_token_usage(llama_server):
    ask = dict(
        model=llama_server.model,
        messages=[{"role": "user", "content": "Name one colour."}],
        temperature=0,
        max_tokens=8,
    )
    first = client(llama_server).chat.completions.create(**ask)
    assert first.choices[0].message.content
    assert first.usage is not None and first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    again = client(llama_server).chat.completions.create(**ask)
    assert again.choices[0].message.content == first.choices[0].message.content  # temperature 0: the same answer


@integration
def test_models_lists_the_catalog_name(llama_server):
    assert [m.id for m in client(llama_server).models.list()] == [DEFAULT_MODEL]


@integration
def test_a_wrong_or_missing_key_is_refused_and_the_key_is_nowhere_in_sight(llama_server):
    with pytest.raises(openai.AuthenticationError) as err:
        client(llama_server, api_key="sk-wrong").models.list()
    assert err.value.status_code == 401
    with pytest.raises(urllib.error.HTTPError) as no_key:
        urllib.request.urlopen(f"{llama_server.base_url}/models", timeout=30)
    assert no_key.value.code == 401
    key = llama_server.api_key
    assert key and key.startswith("sk-canary-")
    assert key not in Path(f"/proc/{llama_server.process.pid}/cmdline").read_bytes().decode(errors="replace")
    assert key not in llama_server.stdout() + llama_server.stderr() + repr(llama_server)
    assert f"${llama_server.api_key_env}" in llama_server.stdout()  # says a key is required, and where it is kept


@integration
def test_an_unset_key_variable_is_a_one_line_error_and_nothing_starts():
    env = {k: v for k, v in os.environ.items() if k != "ADVISOR_TEST_UNSET_VAR"}
    result = run_cli("serve", DEFAULT_MODEL, "--api-key-env", "ADVISOR_TEST_UNSET_VAR", env=env)
    assert_one_line_error(result, "ADVISOR_TEST_UNSET_VAR")
    result = run_cli(
        "serve", DEFAULT_MODEL, "--api-key-env", "ADVISOR_TEST_UNSET_VAR", env={**env, "ADVISOR_TEST_UNSET_VAR": ""}
    )
    assert_one_line_error(result, "ADVISOR_TEST_UNSET_VAR")


@integration
def test_an_unknown_model_is_a_one_line_error():
    assert_one_line_error(run_cli("serve", "smollm2-135m-instrukt"), "smollm2-135m-instrukt", "did you mean")


@integration
def test_a_port_in_use_is_a_one_line_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", DEFAULT_MODEL, "--port", str(port), "--threads", "1")
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use", "--port")


@integration
def test_ctrl_c_stops_the_server_cleanly_even_with_a_request_in_flight_and_the_environment_is_ignored():
    def long_request(server) -> None:
        with contextlib.suppress(openai.APIError):  # cut off by the stop
            client(server, api_key="none").chat.completions.create(
                model=server.model,
                messages=[{"role": "user", "content": "Write a long story."}],
                max_tokens=1000,
                extra_body={"min_tokens": 1000},  # longer than the server's grace period, on one thread
            )

    # variables llama_cpp.server's settings would read, were they read: the server takes only its arguments
    unrelated = {"API_KEY": "sk-from-env", "CONFIG_FILE": "/nonexistent.yaml", "CACHE": "maybe", "N_CTX": "-3"}
    with start_server(n_threads=1, env={**os.environ, **unrelated}) as server:
        in_flight = threading.Thread(target=long_request, args=(server,), daemon=True)
        in_flight.start()
        threading.Event().wait(1.0)
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(15) == 0
        assert "Traceback" not in server.stderr(), server.stderr()
        assert server.stdout().strip().splitlines()[-1] == "advisor: stopped serving"
        assert "no API key required" in server.stdout()
