"""Endpoint arms: URL and key checks, the cost bound, the budget, the request cache, the client against a real
(scripted) HTTP server, and the task file's ``endpoints:``."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.catalog import TokenPrice
from harness.compare import plan
from harness.endpoint_checks import check_base_url, check_key_env, check_no_keys, plain_http_remote, redact
from harness.endpoints import (
    TEMPLATE_TOKENS_PER_MESSAGE,
    TEMPLATE_TOKENS_PER_REQUEST,
    Budget,
    BudgetExceeded,
    Completion,
    EndpointClient,
    EndpointError,
    RequestCache,
    request_cost_bound,
)
from harness.errors import UserError
from harness.load_test import run_load_test
from harness.prompts import Passage, messages
from harness.runstore import config_hash
from harness.spec import Endpoint, EndpointSpec, Example, LoadTest
from harness.task import check_endpoint_keys, load_task
from tests.conftest import CLASSIFICATION_TEST, CLASSIFICATION_TRAIN, HANDBOOK, smollm2_tokenizer_dir

KEY_ENV = "ADVISOR_TEST_ENDPOINT_KEY"
PRICE = TokenPrice(2.0, 8.0)  # USD per million input / output tokens
HI = [{"role": "system", "content": "Answer with one word."}, {"role": "user", "content": "hello"}]


def fake_key() -> str:
    return "sk-test-" + secrets.token_hex(16)


# --- a scripted OpenAI-compatible server ------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    text: str = "billing"
    prompt_tokens: int = 11
    completion_tokens: int = 2
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None  # an error body (default: the OpenAI error shape)
    delay_s: float = 0.0
    stream_usage: bool = True  # streamed: send a final usage chunk


@dataclass
class Script:
    """Replies in order; the last one repeats. ``seen``: every request (path, headers, JSON body)."""

    replies: list[Reply]
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, path: str, headers: dict[str, str], body: dict[str, Any]) -> Reply:
        with self.lock:
            self.seen.append((path, headers, body))
            return self.replies[min(len(self.seen) - 1, len(self.replies) - 1)]


def completion_json(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": reply.text}, "finish_reason": "stop"},
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


def stream_events(reply: Reply, model: str) -> bytes:
    def chunk(delta: dict[str, Any] | None, usage: dict[str, int] | None = None) -> str:
        choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": None}]
        data = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model, "choices": choices}
        if usage is not None:
            data["usage"] = usage
        return f"data: {json.dumps(data)}\n\n"

    words = reply.text.split(" ")
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
    if reply.stream_usage:
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        events.append(chunk(None, usage))
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


class Handler(BaseHTTPRequestHandler):
    script: Script  # set on a subclass per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        reply = self.script.next(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if self.path != "/v1/chat/completions":
            reply = Reply(404, body={"error": {"message": "no such path", "type": "invalid_request_error"}})
        if reply.status != 200:
            payload = reply.body or {"error": {"message": f"status {reply.status}", "type": "server_error"}}
            data, content_type = json.dumps(payload).encode(), "application/json"
        elif body.get("stream"):
            data, content_type = stream_events(reply, body.get("model", "")), "text/event-stream"
        else:
            data, content_type = json.dumps(completion_json(reply, body.get("model", ""))).encode(), "application/json"
        self.send_response(reply.status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (the timeout test)
            self.wfile.write(data)


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Any]:
    """``serve(*replies) -> (base_url, script)``: a real HTTP server on 127.0.0.1 speaking just enough of
    POST /v1/chat/completions."""
    servers: list[QuietServer] = []

    def start(*replies: Reply) -> tuple[str, Script]:
        script = Script(list(replies) or [Reply()])
        handler = type("ScriptedHandler", (Handler,), {"script": script})
        server = QuietServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1", script

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def make_endpoint(
    base_url: str, *, price: TokenPrice | None = PRICE, max_retries: int = 2, timeout_s: float = 5.0, **spec: Any
) -> Endpoint:
    return Endpoint(
        "remote",
        EndpointSpec(base_url=base_url, model="test-model", max_retries=max_retries, timeout_s=timeout_s, **spec),
        price,
    )


def make_client(
    endpoint: Endpoint, *, cache: RequestCache | None = None, cap: float | None = None, max_tokens: int = 8
) -> EndpointClient:
    return EndpointClient(endpoint, max_tokens=max_tokens, cache=cache or RequestCache(None), budget=Budget(cap))


FAST_RETRY = {"retry-after-ms": "1"}  # the openai client honours it (0 < delay <= 60 s) instead of its backoff


# --- URLs ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["https://api.openai.com/v1", "http://localhost:8000/v1", "http://127.0.0.1:8080/v1", "http://[::1]:8/v1"]
)
def test_http_and_https_urls_with_a_host_pass(url):
    check_base_url(url, "endpoints.x.base_url")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/v1", "not an http(s) URL"),
        ("file:///etc/passwd", "not an http(s) URL"),
        ("api.openai.com/v1", "not an http(s) URL"),
        ("https:///v1", "not an http(s) URL"),
        ("https://user:hunter2@example.com/v1", "credentials"),
        ("https://example.com/v1?api_key=abc", "credentials or a query string"),
    ],
)
def test_other_urls_are_one_line_errors_that_never_repeat_credentials(url, fragment):
    with pytest.raises(UserError) as info:
        check_base_url(url, "endpoints.x.base_url")
    message = str(info.value)
    assert fragment in message and "endpoints.x.base_url" in message and "\n" not in message
    assert "hunter2" not in message and "abc" not in message


@pytest.mark.parametrize(
    ("url", "remote"),
    [
        ("http://10.0.0.7:8000/v1", True),
        ("http://gpu-box.internal/v1", True),
        ("http://127.0.0.1:8000/v1", False),
        ("http://127.8.9.10/v1", False),
        ("http://localhost:11434/v1", False),
        ("http://[::1]:8000/v1", False),
        ("https://api.openai.com/v1", False),
        ("https://10.0.0.7/v1", False),
    ],
)
def test_plain_http_remote_is_plain_http_to_another_machine(url, remote):
    assert plain_http_remote(url) is remote


# --- keys ------------------------------------------------------------------------------------------------------

KEYS = [
    "sk-" + "a1B2" * 12,
    "sk-proj-" + "Zx9_" * 10,
    "gsk_" + "q" * 40,
    "xai-" + "k" * 30,
    "hf_" + "AbCd" * 8,
    "r8_" + "9" * 30,
    "pplx-" + "m" * 40,
    "AIza" + "S" * 35,
    "0123456789abcdef" * 3,  # a long hex token (Together and others)
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "shape",
    [
        lambda k: {"endpoints": {"x": {"base_url": "https://e.com/v1", "model": "m", "api_key_env": k}}},
        lambda k: {"endpoints": {"x": {"headers": [{"name": "X-Extra", "value": f"Bearer {k}"}]}}},
        lambda k: {"instruction": f"use {k} for lookups"},
        lambda k: {"strategies": {"prompt": {"shots": [0, k]}}},
    ],
    ids=["api_key_env", "nested list", "free text", "a list value"],
)
def test_a_value_shaped_like_a_key_anywhere_is_rejected_without_repeating_it(key, shape):
    with pytest.raises(UserError) as info:
        check_no_keys(shape(key), "task.yaml")
    message = str(info.value)
    assert key not in message and key[:12] not in message
    assert message.startswith("task.yaml: ") and "looks like an API key" in message and "\n" not in message


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "apiKey", "api-key", "token", "secret", "password", "bearer"])
def test_a_key_named_setting_is_rejected_whatever_its_value(name):
    raw = {"endpoints": {"x": {"base_url": "https://e.com/v1", name: "short"}}}
    with pytest.raises(UserError) as info:
        check_no_keys(raw, "task.yaml")
    message = str(info.value)
    assert f"endpoints.x.{name}" in message and "api_key_env" in message and "short" not in message


def test_ordinary_task_files_pass_the_key_check():
    check_no_keys(
        {
            "name": "support-intents",
            "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "endpoints": {"gpt": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"}},
            "strategies": {"prompt": {"shots": [0, 4], "endpoints": ["gpt"]}},
            "evaluation": {"max_new_tokens": 16},
            "api_key_env": "OPENAI_API_KEY",
            "token": None,  # a key-named setting left empty holds nothing
            "instruction": "Classify the ticket; answer with the skeleton key label only.",
        },
        "task.yaml",
    )


def test_key_env_must_name_a_variable_and_the_variable_must_be_set(monkeypatch):
    def check(var: str | None) -> None:
        endpoint = make_endpoint("https://e.com/v1", api_key_env=var)
        check_key_env(endpoint, "task.yaml: endpoints.remote")

    check(None)  # a server without keys
    for not_a_name in ["my key", "1ABC", "sk-proj-" + "x" * 30, "sk_live_" + "A" * 24]:
        with pytest.raises(UserError) as info:
            check(not_a_name)
        assert "looks like a key" in str(info.value) and not_a_name not in str(info.value)
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(UserError) as info:
        check(KEY_ENV)
    assert f"environment variable {KEY_ENV} is not set" in str(info.value)
    monkeypatch.setenv(KEY_ENV, "")
    with pytest.raises(UserError):
        check(KEY_ENV)
    monkeypatch.setenv(KEY_ENV, fake_key())
    check(KEY_ENV)


def test_redact_removes_the_secret_and_anything_shaped_like_a_key():
    secret = "plain-secret-123"  # not key-shaped: removed because it is the secret
    other = "sk-" + "Q" * 30
    text = f"Incorrect API key provided: {secret}; also saw {other} and 'no-key'"
    out = redact(text, secret)
    assert secret not in out and other not in out and out.count("[redacted]") == 2
    assert "no-key" in redact("placeholder no-key", "no-key")  # the keyless placeholder is not a secret
    assert redact("nothing to hide", None) == "nothing to hide"


# --- the cost bound --------------------------------------------------------------------------------------------


def test_the_bound_is_the_documented_formula():
    msgs = [{"role": "system", "content": "héllo"}, {"role": "user", "content": "日本"}]
    content_bytes = len("héllo".encode()) + len("日本".encode())  # 6 + 6
    tokens_in = content_bytes + TEMPLATE_TOKENS_PER_MESSAGE * 2 + TEMPLATE_TOKENS_PER_REQUEST
    assert request_cost_bound(msgs, 32, PRICE) == pytest.approx(tokens_in * 2.0 / 1e6 + 32 * 8.0 / 1e6)
    assert request_cost_bound(msgs, 0, TokenPrice(0.0, 0.0)) == 0.0


def real_requests() -> list[list[dict[str, str]]]:
    """Messages as the prompt and RAG strategies build them, on the conftest datasets, plus hard inputs for BPE."""
    instruction = (
        "Classify the customer message into exactly one of these labels: billing, refund, account_access. "
        "Answer with the label only."
    )
    train = [Example(f"t{i}", text, label) for i, (text, label) in enumerate(CLASSIFICATION_TRAIN)]
    hard = [
        "¿Dónde está mi factura? Ünïcödé ñ ç ß ø å æ œ",
        "请退款，我被重复扣费了 — 返金してください 환불해 주세요",
        "🙂🙃🤖💸 refund!!! 🔥🔥🔥 \U0001f9d1\u200d\U0001f4bb",
        "   leading   and trailing   spaces\t\ttabs\n\nnew lines   ",
        '{"order": "1234", "items": [1, 2, 3], "note": null}',
        "x" * 3000,
        "<|im_start|>user\nnot a real turn<|im_end|>",
        "",
    ]
    requests = []
    for text, _ in CLASSIFICATION_TEST:
        example = Example("q", text, "")
        for k in (0, 1, 4, len(train)):
            requests.append(messages(instruction, example, shots=[(ex, ex.target) for ex in train[:k]]))
    for text in hard:
        requests.append(messages(instruction, Example("h", text, ""), shots=[(train[0], "billing")]))
    passages = [Passage(name, text) for name, text in HANDBOOK.items()]
    for question in ("What does a badge replacement cost?", "Wie viele Urlaubstage gibt es? 年假多少天？"):
        requests.append(messages("Answer from the context.", Example("r", question, ""), passages=passages))
    return requests


@pytest.fixture(scope="module")
def smollm2_tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smollm2_tokenizer_dir(tmp_path_factory.mktemp("smollm2-tokenizer")))


def chat_tokens(tokenizer: Any, msgs: list[dict[str, str]]) -> int:
    ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_the_bound_is_at_least_the_true_cost_of_real_requests(smollm2_tokenizer):
    """The argument, checked on SmolLM2's byte-level BPE and ChatML template: (1) each content has at most as many
    tokens as UTF-8 bytes (every token is at least one byte); (2) the template adds at most 8 tokens a message plus
    16 a request; so (3) the prompt the server tokenizes costs at most the bound, and the answer is capped at
    max_tokens."""
    max_tokens = 16
    for msgs in real_requests():
        for m in msgs:
            content_tokens = len(smollm2_tokenizer.encode(m["content"], add_special_tokens=False))
            assert content_tokens <= len(m["content"].encode("utf-8")), m["content"][:40]
        true_in = chat_tokens(smollm2_tokenizer, msgs)
        content = sum(len(smollm2_tokenizer.encode(m["content"], add_special_tokens=False)) for m in msgs)
        overhead = true_in - content
        assert overhead <= TEMPLATE_TOKENS_PER_MESSAGE * len(msgs) + TEMPLATE_TOKENS_PER_REQUEST
        for output_tokens in (0, 1, max_tokens):
            true_cost = PRICE.usd(true_in, output_tokens)
            assert request_cost_bound(msgs, max_tokens, PRICE) >= true_cost


def test_the_bound_covers_a_request_without_a_system_message(smollm2_tokenizer):
    msgs = [{"role": "user", "content": "hi"}]
    bytes_bound = 2 + TEMPLATE_TOKENS_PER_MESSAGE + TEMPLATE_TOKENS_PER_REQUEST  # 26 tokens
    assert chat_tokens(smollm2_tokenizer, msgs) <= bytes_bound  # 31 tokens with the default system prompt


# --- the budget ------------------------------------------------------------------------------------------------


def test_the_budget_refuses_a_reservation_that_could_pass_the_cap():
    budget = Budget(1.0)
    budget.reserve(0.6)
    with pytest.raises(BudgetExceeded) as info:
        budget.reserve(0.5)  # 0.6 in flight + 0.5 > 1.0, even though nothing is spent yet
    assert info.value.cap_usd == 1.0 and info.value.spent_usd == 0.0 and "$1.0000 cap" in str(info.value)
    budget.settle(0.6, 0.1)  # the first cost less than its bound: its reservation is released
    budget.reserve(0.9)  # 0.1 spent + 0.9 == the cap: allowed
    budget.settle(0.9, 0.9)
    assert budget.spent_usd == pytest.approx(1.0)
    with pytest.raises(BudgetExceeded):
        budget.reserve(1e-9)


def test_no_cap_never_refuses():
    budget = Budget(None)
    for _ in range(100):
        budget.reserve(1e6)
    assert budget.spent_usd == 0.0


def test_the_budget_is_never_passed_by_many_threads_at_once():
    cap, bound = 1.0, 0.03
    budget = Budget(cap)
    granted, refused = [], []
    start = threading.Barrier(16)

    def worker(seed: int) -> None:
        start.wait()
        for i in range(20):
            try:
                budget.reserve(bound)
            except BudgetExceeded:
                refused.append(seed)
                return
            time.sleep(0.0005 * ((seed + i) % 3))
            actual = bound * (0.5 + 0.5 * ((seed * 7 + i) % 2))  # each costs at most its bound
            granted.append(actual)
            budget.settle(bound, actual)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.spent_usd == pytest.approx(sum(granted))
    assert budget.spent_usd <= cap + 1e-12
    assert refused  # 320 requests at up to $0.03 do not fit under $1
    assert budget.spent_usd > cap - 2 * bound * 16  # and it did not stop far from the cap
    assert budget._reserved == pytest.approx(0.0)


# --- the request cache -----------------------------------------------------------------------------------------

BASE = ("https://api.example.com/v1", "m-1", [{"role": "user", "content": "q"}], {"temperature": 0, "max_tokens": 8})


def test_the_cache_key_is_stable_and_changes_with_every_input():
    url, model, msgs, params = BASE
    key = RequestCache.key(*BASE)
    assert key == RequestCache.key(url, model, [dict(m) for m in msgs], dict(params))
    assert key == RequestCache.key(url + "/", model, msgs, params)  # the same endpoint
    assert key == RequestCache.key(url, model, msgs, {"max_tokens": 8, "temperature": 0})  # order of params
    assert len(key) == 64 and int(key, 16) >= 0
    changed = [
        RequestCache.key("https://api.other.com/v1", model, msgs, params),
        RequestCache.key("http://api.example.com/v1", model, msgs, params),
        RequestCache.key(url, "m-2", msgs, params),
        RequestCache.key(url, model, [{"role": "user", "content": "q "}], params),
        RequestCache.key(url, model, [{"role": "system", "content": "q"}], params),
        RequestCache.key(url, model, [*msgs, {"role": "user", "content": "q"}], params),
        RequestCache.key(url, model, msgs, {"temperature": 0, "max_tokens": 9}),
        RequestCache.key(url, model, msgs, {"temperature": 0.5, "max_tokens": 8}),
        RequestCache.key(url, model, msgs, {**params, "stream": True}),
    ]
    assert len({key, *changed}) == len(changed) + 1


def test_the_cache_round_trips_a_completion_and_marks_it_cached(tmp_path):
    cache = RequestCache(tmp_path)
    key = RequestCache.key(*BASE)
    assert cache.get(key) is None
    cache.put(key, Completion("refund — ünï", 42, 3, 123.4))
    assert cache.get(key) == Completion("refund — ünï", 42, 3, 123.4, cached=True)
    assert RequestCache(tmp_path).get(key) == Completion("refund — ünï", 42, 3, 123.4, cached=True)


def test_read_false_bypasses_reads_but_still_writes(tmp_path):
    key = RequestCache.key(*BASE)
    RequestCache(tmp_path).put(key, Completion("old", 1, 1, 1.0))
    fresh = RequestCache(tmp_path, read=False)
    assert fresh.get(key) is None
    fresh.put(key, Completion("new", 2, 2, 2.0))
    assert RequestCache(tmp_path).get(key) == Completion("new", 2, 2, 2.0, cached=True)


def test_no_folder_caches_nothing_and_a_broken_entry_is_a_miss(tmp_path):
    key = RequestCache.key(*BASE)
    none = RequestCache(None)
    none.put(key, Completion("x", 1, 1, 1.0))
    assert none.get(key) is None
    (tmp_path / f"{key}.json").write_text("{not json", encoding="utf-8")
    assert RequestCache(tmp_path).get(key) is None
    (tmp_path / f"{key}.json").write_text('{"text": "x"}', encoding="utf-8")
    assert RequestCache(tmp_path).get(key) is None


# --- the client against a real HTTP server ---------------------------------------------------------------------


def test_a_completion_reads_text_and_usage_and_spends_its_cost(serve, monkeypatch):
    key = fake_key()
    monkeypatch.setenv(KEY_ENV, key)
    url, script = serve(Reply(text="refund", prompt_tokens=30, completion_tokens=2))
    client = make_client(make_endpoint(url, api_key_env=KEY_ENV))
    completion = client.complete(HI)
    assert (completion.text, completion.input_tokens, completion.output_tokens) == ("refund", 30, 2)
    assert not completion.cached and not completion.failed and completion.latency_ms > 0
    path, headers, body = script.seen[0]
    assert path == "/v1/chat/completions"
    assert headers.get("authorization") == f"Bearer {key}"
    assert body["model"] == "test-model" and body["messages"] == HI
    assert body["temperature"] == 0 and body["max_tokens"] == 8
    use = client.use()
    assert (use.requests, use.retries, use.errors, use.cache_hits) == (1, 0, 0, 0)
    assert (use.input_tokens, use.output_tokens) == (30, 2)
    assert use.usd_spent == pytest.approx(PRICE.usd(30, 2))
    assert key not in json.dumps(use.__dict__)
    client.close()


def test_429_twice_then_200_is_answered_and_the_two_retries_are_counted(serve):
    url, script = serve(Reply(429, headers=FAST_RETRY), Reply(429, headers=FAST_RETRY), Reply(text="billing"))
    client = make_client(make_endpoint(url, max_retries=2))
    completion = client.complete(HI)
    assert completion.text == "billing" and not completion.failed
    assert len(script.seen) == 3
    use = client.use()
    assert (use.requests, use.retries, use.errors) == (1, 2, 0)
    assert use.usd_spent == pytest.approx(PRICE.usd(11, 2))


@pytest.mark.parametrize("status", [429, 500, 503])
def test_still_failing_after_the_retries_is_a_failed_completion_counted_in_errors(serve, tmp_path, status):
    url, script = serve(Reply(status, headers=FAST_RETRY))
    client = make_client(make_endpoint(url, max_retries=2), cache=RequestCache(tmp_path), cap=1.0)
    first = client.complete(HI)
    assert first.failed and first.text == "" and (first.input_tokens, first.output_tokens) == (0, 0)
    assert len(script.seen) == 3  # the first try and two retries
    second = client.complete(HI)  # a failure is not cached: asked again, it goes out again
    assert second.failed and len(script.seen) == 6
    use = client.use()
    assert (use.requests, use.retries, use.errors, use.cache_hits) == (2, 4, 2, 0)
    assert use.usd_spent == 0.0 and client.budget._reserved == pytest.approx(0.0)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_key_ends_the_run_with_one_line_that_never_holds_the_key(serve, monkeypatch):
    key = fake_key()
    monkeypatch.setenv(KEY_ENV, key)
    echo = {"error": {"message": f"Incorrect API key provided: {key}", "type": "invalid_request_error"}}
    url, script = serve(Reply(401, body=echo))
    client = make_client(make_endpoint(url, api_key_env=KEY_ENV), cap=1.0)
    with pytest.raises(EndpointError) as info:
        client.complete(HI)
    message = str(info.value)
    assert "refused the key (HTTP 401)" in message and f"${KEY_ENV}" in message and "'remote'" in message
    assert key not in message and key[8:] not in message and "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert len(script.seen) == 1  # 401 is not retried
    assert client.budget.spent_usd == 0.0 and client.budget._reserved == pytest.approx(0.0)


def test_any_other_refusal_is_an_endpoint_error_with_the_key_redacted_from_the_server_text(serve, monkeypatch):
    key = "not-key-shaped-but-secret"
    monkeypatch.setenv(KEY_ENV, key)
    echo = {"error": {"message": f"bad request from key {key}", "type": "invalid_request_error"}}
    url, _ = serve(Reply(400, body=echo))
    with pytest.raises(EndpointError) as info:
        make_client(make_endpoint(url, api_key_env=KEY_ENV)).complete(HI)
    assert "HTTP 400" in str(info.value) and key not in str(info.value) and "[redacted]" in str(info.value)


def test_an_unknown_path_or_model_is_an_endpoint_error(serve):
    url, _ = serve(Reply())
    with pytest.raises(EndpointError) as info:
        make_client(make_endpoint(url.replace("/v1", "/nope"))).complete(HI)
    assert "HTTP 404" in str(info.value) and "endpoints.remote.model" in str(info.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_an_endpoint_error():
    client = make_client(make_endpoint(f"http://127.0.0.1:{free_port()}/v1", max_retries=0))
    with pytest.raises(EndpointError) as info:
        client.complete(HI)
    assert "cannot connect" in str(info.value) and "\n" not in str(info.value)
    assert client.budget._reserved == pytest.approx(0.0)


def test_a_server_slower_than_the_timeout_is_an_endpoint_error(serve):
    url, _ = serve(Reply(delay_s=1.0))
    with pytest.raises(EndpointError) as info:
        make_client(make_endpoint(url, max_retries=0, timeout_s=0.2)).complete(HI)
    assert "no response within 0.2 s" in str(info.value)


def test_a_cached_request_is_not_sent_again_and_costs_nothing(serve, tmp_path):
    url, script = serve(Reply(text="refund", prompt_tokens=20, completion_tokens=1))
    client = make_client(make_endpoint(url), cache=RequestCache(tmp_path))
    live = client.complete(HI)
    spent = client.budget.spent_usd
    again = client.complete(HI)
    assert len(script.seen) == 1
    assert again == Completion("refund", 20, 1, live.latency_ms, cached=True)  # the latency it was fetched with
    assert client.budget.spent_usd == spent
    use = client.use()
    assert (use.requests, use.cache_hits, use.input_tokens) == (1, 1, 20)
    other = [*HI[:1], {"role": "user", "content": "hello!"}]
    client.complete(other)  # other messages: another request
    assert len(script.seen) == 2
    refresh = make_client(make_endpoint(url), cache=RequestCache(tmp_path, read=False))
    assert not refresh.complete(HI).cached and len(script.seen) == 3


def bound_tokens(msgs: list[dict[str, str]]) -> int:
    content = sum(len(m["content"].encode()) for m in msgs)
    return content + TEMPLATE_TOKENS_PER_MESSAGE * len(msgs) + TEMPLATE_TOKENS_PER_REQUEST


def test_the_client_stops_before_a_request_could_pass_the_cap(serve):
    # each response reports exactly the bound's tokens, so each request costs its whole bound
    max_tokens = 8
    url, script = serve(Reply(prompt_tokens=bound_tokens(HI), completion_tokens=max_tokens))
    bound = request_cost_bound(HI, max_tokens, PRICE)
    client = make_client(make_endpoint(url), cap=2.5 * bound, max_tokens=max_tokens)
    client.complete(HI)
    client.complete(HI)
    with pytest.raises(BudgetExceeded):
        client.complete(HI)  # 2 bounds spent + 1 > 2.5
    assert len(script.seen) == 2
    use = client.use()
    assert use.requests == 2 and use.budget_usd == pytest.approx(2.5 * bound)
    assert use.usd_spent == pytest.approx(2 * bound, abs=1e-6) and client.budget.spent_usd <= 2.5 * bound


def test_a_request_whose_bound_exceeds_the_cap_is_never_sent(serve):
    url, script = serve(Reply())
    client = make_client(make_endpoint(url), cap=0.5 * request_cost_bound(HI, 8, PRICE))
    with pytest.raises(BudgetExceeded):
        client.complete(HI)
    assert script.seen == [] and client.use().requests == 0


def test_an_unpriced_endpoint_spends_nothing_it_can_count_and_reports_no_cost(serve):
    url, _ = serve(Reply())
    client = make_client(make_endpoint(url, price=None), cap=None)
    client.complete(HI)
    assert client.use().usd_spent is None and client.use().input_tokens == 11


def test_a_stream_reads_chunks_time_to_first_token_and_usage(serve):
    url, script = serve(Reply(text="account access please", prompt_tokens=25, completion_tokens=4))
    client = make_client(make_endpoint(url))
    completion, first_ms, from_usage = client.stream(HI)
    assert completion.text == "account access please"
    assert (completion.input_tokens, completion.output_tokens, from_usage) == (25, 4, True)
    assert first_ms is not None and 0 < first_ms <= completion.latency_ms
    body = script.seen[0][2]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert client.budget.spent_usd == pytest.approx(PRICE.usd(25, 4))


def test_a_stream_without_usage_counts_chunks_and_is_charged_its_bound(serve):
    url, _ = serve(Reply(text="a b c", stream_usage=False))
    client = make_client(make_endpoint(url))
    completion, _, from_usage = client.stream(HI)
    assert not from_usage and not completion.usage_known and completion.output_tokens == 3
    assert client.budget.spent_usd == pytest.approx(request_cost_bound(HI, 8, PRICE))


def test_a_stream_without_usage_takes_its_prompt_tokens_from_the_same_request_answered_before(serve, tmp_path):
    url, _ = serve(Reply(text="a b c", prompt_tokens=25, completion_tokens=3, stream_usage=False))
    client = make_client(make_endpoint(url), cache=RequestCache(tmp_path, read=False))  # --fresh: still its own
    client.complete(HI)  # the quality pass: usage says 25 prompt tokens
    spent = client.budget.spent_usd
    completion, _, from_usage = client.stream(HI)
    assert not from_usage and completion.usage_known and (completion.input_tokens, completion.output_tokens) == (25, 3)
    assert client.budget.spent_usd - spent == pytest.approx(PRICE.usd(25, 3))


def test_the_load_test_streams_every_level_live_even_with_a_cache(serve, tmp_path):
    url, script = serve(Reply(text="billing", prompt_tokens=10, completion_tokens=1))
    client = make_client(make_endpoint(url), cache=RequestCache(tmp_path))
    prompts = [HI, [HI[0], {"role": "user", "content": "bye"}]]
    levels = run_load_test(client, prompts, LoadTest(concurrency=[4, 1, 4], requests=6))
    assert [level.concurrency for level in levels] == [1, 4]
    assert len(script.seen) == 12 and all(body["stream"] for _, _, body in script.seen)
    assert all(level.errors == 0 and level.requests_per_s > 0 for level in levels)
    assert all(level.output_tokens_from == "usage" for level in levels)
    assert client.use().requests == 12 and list(tmp_path.iterdir()) == []


# --- endpoints in a task file ----------------------------------------------------------------------------------

TASK = """
name: t
kind: classification
data: {train: train.jsonl, test: test.jsonl}
labels: [a, b]
"""

ENDPOINTS = """
endpoints:
  gpt:
    base_url: https://api.openai.com/v1
    model: gpt-4o-mini
    api_key_env: ADVISOR_TEST_OPENAI_KEY
    max_usd: 2.0
  box:
    base_url: http://127.0.0.1:8000/v1
    model: my-finetune
    price: {input_usd_per_mtok: 0.5, output_usd_per_mtok: 1.5}
"""

STRATEGIES = """
strategies:
  prompt: {shots: [0, 4], endpoints: [gpt, box]}
  rag: {top_k: 3, endpoints: [gpt]}
  lora: {}
"""


def load(folder: Path, body: str):
    path = folder / "task.yaml"
    path.write_text(body, encoding="utf-8")
    return load_task(path)


def error_of(folder: Path, body: str) -> str:
    with pytest.raises(UserError) as info:
        load(folder, body)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_endpoints_load_with_catalog_and_task_prices(folder):
    task = load(folder, TASK + ENDPOINTS + STRATEGIES)
    gpt, box = task.endpoints["gpt"], task.endpoints["box"]
    assert gpt.price is not None and (gpt.price.input_usd_per_mtok, gpt.price.output_usd_per_mtok) == (0.15, 0.60)
    assert box.price == TokenPrice(0.5, 1.5, source="task file")
    assert gpt.spec.max_usd == 2.0 and gpt.spec.api_key_env == "ADVISOR_TEST_OPENAI_KEY"
    assert (gpt.spec.max_retries, gpt.spec.timeout_s, gpt.spec.max_concurrency) == (3, 60.0, 4)


def test_a_task_price_overrides_the_catalog(folder):
    body = ENDPOINTS.replace("max_usd: 2.0", "price: {input_usd_per_mtok: 9, output_usd_per_mtok: 10}")
    task = load(folder, TASK + body + STRATEGIES)
    assert task.endpoints["gpt"].price == TokenPrice(9.0, 10.0, source="task file")


def test_variants_run_locally_and_on_each_endpoint(folder):
    task = load(folder, TASK + ENDPOINTS + STRATEGIES)
    names = [(v.strategy, v.name) for v in plan(task, None)]
    assert names == [
        ("prompt", "0-shot"),
        ("prompt", "4-shot"),
        ("prompt", "0-shot@gpt"),
        ("prompt", "4-shot@gpt"),
        ("prompt", "0-shot@box"),
        ("prompt", "4-shot@box"),
        ("rag", "top-3"),
        ("rag", "top-3@gpt"),
        ("lora", "r8-lr0.0003"),  # LoRA's default grid, in priority order
        ("lora", "r8-lr0.001"),
        ("lora", "r16-lr0.0003"),
        ("lora", "r8-lr0.0001"),
        ("lora", "r16-lr0.001"),
        ("lora", "r16-lr0.0001"),
    ]
    by_name = {v.name: v for v in plan(task, None)}
    assert by_name["4-shot@box"].params == {"shots": 4, "instruction": None, "endpoint": "box"}
    assert "endpoint" not in by_name["4-shot"].params and "endpoint" not in by_name["top-3"].params
    assert by_name["top-3@gpt"].params == {**by_name["top-3"].params, "endpoint": "gpt"}


def test_adding_endpoints_leaves_the_local_runs_reusable(folder):
    plain = load(folder, TASK + "strategies:\n  prompt: {shots: [0, 4]}\n  rag: {top_k: 3}\n")
    with_endpoints = load(
        folder, TASK + ENDPOINTS + STRATEGIES + "evaluation: {load_test: {concurrency: [1, 2], requests: 8}}\n"
    )
    assert plain.fingerprint() == with_endpoints.fingerprint()
    local = {v.name: v for v in plan(plain, None)}

    def digest(task, variant):
        return config_hash(
            task.fingerprint(),
            variant,
            seed=0,
            limit=None,
            device="cpu",
            model=task.model_ref,
            endpoint=task.endpoint_identity(variant.params),
        )

    for variant in plan(with_endpoints, None):
        if variant.name in local:
            assert with_endpoints.endpoint_identity(variant.params) is None
            assert digest(with_endpoints, variant) == digest(plain, local[variant.name])


def test_endpoint_identity_tells_endpoints_and_load_tests_apart_and_leaves_out_price_and_cap(folder):
    task = load(folder, TASK + ENDPOINTS + STRATEGIES)
    gpt = task.endpoint_identity({"shots": 4, "endpoint": "gpt"})
    box = task.endpoint_identity({"shots": 4, "endpoint": "box"})
    assert gpt is not None and box is not None and gpt != box
    assert gpt["model"] == "gpt-4o-mini" and gpt["base_url"] == "https://api.openai.com/v1"
    assert gpt["load_test"] == {"concurrency": [1, 4, 16], "requests": 64}
    assert task.endpoint_identity({"shots": 4}) is None
    repriced = ENDPOINTS.replace("max_usd: 2.0", "max_usd: 5.0").replace(
        "output_usd_per_mtok: 1.5", "output_usd_per_mtok: 3"
    )
    changed = load(folder, TASK + repriced + STRATEGIES)
    assert changed.endpoint_identity({"endpoint": "gpt"}) == task.endpoint_identity({"endpoint": "gpt"})
    assert changed.endpoint_identity({"endpoint": "box"}) == task.endpoint_identity({"endpoint": "box"})
    no_load_test = load(folder, TASK + ENDPOINTS + STRATEGIES + "evaluation: {load_test: null}\n")
    assert no_load_test.endpoint_identity({"endpoint": "gpt"}) == {**gpt, "load_test": None}
    assert no_load_test.fingerprint() == task.fingerprint()


@pytest.mark.parametrize("strategy", ["prompt", "rag"])
def test_an_unknown_endpoint_name_in_a_strategy_is_named(folder, strategy):
    body = TASK + ENDPOINTS + f"strategies:\n  {strategy}: {{endpoints: [gtp]}}\n"
    message = error_of(folder, body)
    assert f"strategies.{strategy}.endpoints" in message and "'gtp'" in message
    assert "gpt" in message and "box" in message  # the declared ones (and the closest)


def test_an_endpoint_named_in_a_strategy_with_none_declared(folder):
    message = error_of(folder, TASK + "strategies:\n  prompt: {endpoints: [gpt]}\n")
    assert "'gpt'" in message and "declared: none" in message


def test_an_api_key_in_a_task_file_is_rejected(folder):
    key = "sk-" + secrets.token_hex(20)
    body = TASK + f"endpoints:\n  gpt: {{base_url: 'https://api.openai.com/v1', model: gpt-4o-mini, api_key: {key}}}\n"
    message = error_of(folder, body)
    assert "endpoints.gpt.api_key" in message and key not in message and key[:10] not in message


def test_a_key_in_place_of_the_variable_name_is_rejected_without_repeating_it(folder):
    key = "sk-proj-" + secrets.token_hex(24)
    body = TASK + ENDPOINTS.replace("api_key_env: ADVISOR_TEST_OPENAI_KEY", f"api_key_env: {key}") + STRATEGIES
    message = error_of(folder, body)
    assert "endpoints.gpt.api_key_env" in message and "looks like an API key" in message
    assert key not in message and key[8:] not in message


@pytest.mark.parametrize("url", ["ftp://example.com/v1", "file:///tmp/x", "api.openai.com/v1"])
def test_a_non_http_base_url_is_rejected(folder, url):
    message = error_of(folder, TASK + f"endpoints:\n  e: {{base_url: '{url}', model: m}}\n")
    assert "endpoints.e.base_url" in message and "http(s)" in message


def test_a_cap_on_an_unpriced_model_needs_a_price(folder):
    body = TASK + "endpoints:\n  e: {base_url: 'https://x.example/v1', model: unlisted-model-7b, max_usd: 1}\n"
    message = error_of(folder, body)
    assert "endpoints.e.max_usd" in message and "unlisted-model-7b" in message and "price:" in message
    priced = body.replace("max_usd: 1", "max_usd: 1, price: {input_usd_per_mtok: 1, output_usd_per_mtok: 2}")
    assert load(folder, priced).endpoints["e"].price == TokenPrice(1.0, 2.0, source="task file")
    unpriced = load(folder, body.replace(", max_usd: 1", ""))
    assert unpriced.endpoints["e"].price is None  # missing, never 0
    self_hosted = load(folder, body.replace("max_usd: 1", "max_usd: 1, self_hosted: {gpu: a10g}"))
    assert self_hosted.endpoints["e"].price is None


def test_an_endpoint_name_must_be_safe_for_variant_names(folder):
    message = error_of(folder, TASK + "endpoints:\n  'a@b': {base_url: 'https://x.example/v1', model: m}\n")
    assert "endpoints.a@b" in message


def test_an_unknown_self_hosted_gpu_is_rejected(folder):
    message = error_of(
        folder, TASK + "endpoints:\n  e: {base_url: 'http://127.0.0.1:8/v1', model: m, self_hosted: {gpu: a99}}\n"
    )
    assert "endpoints.e.self_hosted.gpu" in message


def test_check_endpoint_keys_names_an_unset_variable(folder, monkeypatch):
    task = load(folder, TASK + ENDPOINTS + STRATEGIES)
    monkeypatch.delenv("ADVISOR_TEST_OPENAI_KEY", raising=False)
    with pytest.raises(UserError) as info:
        check_endpoint_keys(task)
    assert "ADVISOR_TEST_OPENAI_KEY" in str(info.value) and "endpoints.gpt.api_key_env" in str(info.value)
    check_endpoint_keys(task, ["box"])  # only what the planned runs use: box needs no key
    monkeypatch.setenv("ADVISOR_TEST_OPENAI_KEY", fake_key())
    check_endpoint_keys(task)


def test_paths_and_hashes_inside_words_are_not_taken_for_keys():
    check_no_keys(
        {"data": {"train": "data/hf_cached_training_examples.jsonl", "test": "runs/" + "ab12" * 10 + ".jsonl"}},
        "task.yaml",
    )
