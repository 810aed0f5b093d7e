"""Endpoint arms: chat completions through any OpenAI-compatible server (OpenAI, vLLM, TGI, llama.cpp, Ollama, ...)
with the official ``openai`` client, priced per token, capped by a budget, cached per request.

- **Requests** are chat completions at temperature 0 with the task's ``max_tokens``; token counts come from each
  response's ``usage``, never from a local tokenizer. The client retries 429, 5xx and dropped connections itself,
  with exponential backoff; the extra HTTP attempts are counted (an httpx request hook) and recorded.
- **Failures.** A refused key (401/403), an unknown model or path (404), an unreachable server or a timeout ends the
  run: ``EndpointError``, one line, never the key. A request that still hits 429 or 5xx after the retries counts as
  an error and is scored as unanswered; the run goes on.
- **Budget.** Before each request its cost is bounded from above (``request_cost_bound``) and reserved; the run stops
  (``BudgetExceeded``) before a request could pass the cap. Each response then settles its actual cost.
- **Cache.** A completed request is stored under a hash of the endpoint's URL, model, the messages and the
  parameters (``RequestCache``); asking again (a resumed or repeated compare) reads it and pays nothing. The cache
  keeps the latency measured when it was fetched, so timings stay those of the endpoint.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.catalog import TokenPrice
from harness.endpoint_checks import read_key, redact
from harness.errors import UserError
from harness.io import atomic_write_text
from harness.record import EndpointUse, RunRecord
from harness.spec import Endpoint, Task

# per message: role and the chat template's markers, generous for every template seen (ChatML adds 5); per request:
# the generation prompt plus what a template inserts by itself - SmolLM2's default system prompt when there is none
# (about 19 tokens), Llama 3.1's knowledge-cutoff and date header (about 25)
TEMPLATE_TOKENS_PER_MESSAGE = 8
# what the openai client retries besides 5xx (timeouts, conflicts, throttling): a request that still gets one is an
# error of that request, not of the run
RETRIED_STATUS = (408, 409, 429)
TEMPLATE_TOKENS_PER_REQUEST = 64


class EndpointError(Exception):
    """The endpoint cannot serve this run (refused key, unknown model, unreachable, timeout): one line."""


class BudgetExceeded(Exception):
    """The next request could pass the spending cap: the run stops before sending it."""

    def __init__(self, spent_usd: float, cap_usd: float):
        super().__init__(
            f"stopped for budget: the next request could pass the ${cap_usd:.4f} cap; ${spent_usd:.4f} spent"
        )
        self.spent_usd, self.cap_usd = spent_usd, cap_usd


def request_cost_bound(messages: list[dict[str, str]], max_tokens: int, price: TokenPrice) -> float:
    """An upper bound of one request's cost, before it is sent. Every BPE token is at least one UTF-8 byte, so a
    message has at most as many tokens as bytes, plus its template markers; the answer at most ``max_tokens``:

        bound = (bytes + 8 * messages + 64) * input $/Mtok / 1e6 + max_tokens * output $/Mtok / 1e6
    """
    content_bytes = sum(len(m["content"].encode("utf-8")) for m in messages)
    input_bound = content_bytes + TEMPLATE_TOKENS_PER_MESSAGE * len(messages) + TEMPLATE_TOKENS_PER_REQUEST
    return price.usd(input_bound, max_tokens)


class Budget:
    """A spending cap shared by the threads of one run: reserve a request's bound before sending, settle after."""

    def __init__(self, cap_usd: float | None):
        self.cap_usd = cap_usd
        self.spent_usd = 0.0
        self._reserved = 0.0
        self._lock = threading.Lock()

    def reserve(self, bound_usd: float) -> None:
        with self._lock:
            if self.cap_usd is not None and self.spent_usd + self._reserved + bound_usd > self.cap_usd:
                raise BudgetExceeded(self.spent_usd, self.cap_usd)
            self._reserved += bound_usd

    def settle(self, bound_usd: float, actual_usd: float) -> None:
        with self._lock:
            self._reserved -= bound_usd
            self.spent_usd += actual_usd


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    latency_ms: float  # request sent -> response read (a cache hit: when it was fetched)
    cached: bool = False
    failed: bool = False  # still 429/5xx after the retries: scored as unanswered
    usage_known: bool = True  # False: tokens unknown (a stream without usage): its cost is taken at its bound


class RequestCache:
    """One JSON file per completed request, keyed by what determines the answer."""

    def __init__(self, folder: Path | None, *, read: bool = True):
        self.folder, self.read = folder, read

    @staticmethod
    def key(base_url: str, model: str, messages: list[dict[str, str]], params: dict[str, Any]) -> str:
        payload = {"base_url": base_url.rstrip("/"), "model": model, "messages": messages, "params": params}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str, *, even_when_fresh: bool = False) -> Completion | None:
        """The stored answer; with ``read`` off (--fresh) only when ``even_when_fresh`` (an answer this run
        stored itself)."""
        if self.folder is None or not (self.read or even_when_fresh):
            return None
        path = self.folder / f"{key}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return Completion(
                data["text"], int(data["input_tokens"]), int(data["output_tokens"]), float(data["latency_ms"]), True
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, completion: Completion) -> None:
        if self.folder is None:
            return
        record = {
            "text": completion.text,
            "input_tokens": completion.input_tokens,
            "output_tokens": completion.output_tokens,
            "latency_ms": completion.latency_ms,
        }
        atomic_write_text(self.folder / f"{key}.json", json.dumps(record, ensure_ascii=False))


def _why(err: Exception, endpoint: Endpoint, key: str) -> str:
    """A one-line, key-free reason for a failure that ends the run (openai's exceptions by type and status)."""
    import openai

    name, spec = endpoint.name, endpoint.spec
    where = f"endpoint '{name}' ({spec.base_url}, model {spec.model})"
    if isinstance(err, openai.APITimeoutError):
        return f"{where}: no response within {spec.timeout_s:g} s (endpoints.{name}.timeout_s), after the retries"
    if isinstance(err, openai.APIConnectionError):
        return f"{where}: cannot connect (is the server running, is the URL right?): {redact(str(err), key)}"
    if isinstance(err, (openai.AuthenticationError, openai.PermissionDeniedError)):
        var = spec.api_key_env or "api_key_env"
        return f"{where}: the endpoint refused the key (HTTP {err.status_code}); check the key in ${var}"
    if isinstance(err, openai.NotFoundError):
        return f"{where}: HTTP 404: unknown model or path; check endpoints.{name}.model and base_url"
    if isinstance(err, openai.APIStatusError):
        detail = redact(getattr(err, "message", "") or "", key)[:200]
        return f"{where}: HTTP {err.status_code}: {detail}"
    return f"{where}: {type(err).__name__}: {redact(str(err), key).splitlines()[0][:200] if str(err) else ''}"


class EndpointClient:
    """One endpoint, as one run uses it: requests, streaming (load test), the cache, the budget and the tally."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        max_tokens: int,
        cache: RequestCache,
        budget: Budget,
        client_factory: Callable[..., Any] | None = None,
    ):
        import openai

        self.endpoint, self.max_tokens, self.cache, self.budget = endpoint, max_tokens, cache, budget
        self._key = read_key(endpoint)
        self._attempts = 0
        self._lock = threading.Lock()
        self.requests = self.cache_hits = self.errors = self.input_tokens = self.output_tokens = 0
        spec = endpoint.spec
        self._client: Any  # openai.OpenAI (its overloads type each message; ours are plain dicts)
        http_client = openai.DefaultHttpxClient(event_hooks={"request": [self._count_attempt]})
        self._client = (client_factory or openai.OpenAI)(
            base_url=spec.base_url,
            api_key=self._key,
            timeout=spec.timeout_s,
            max_retries=spec.max_retries,
            http_client=http_client,
        )

    def _count_attempt(self, request: Any) -> None:
        with self._lock:
            self._attempts += 1

    @property
    def params(self) -> dict[str, Any]:
        return {"temperature": 0, "max_tokens": self.max_tokens}

    def _bound(self, messages: list[dict[str, str]]) -> float:
        price = self.endpoint.price
        return request_cost_bound(messages, self.max_tokens, price) if price else 0.0

    def _tally(self, completion: Completion) -> None:
        with self._lock:
            self.input_tokens += completion.input_tokens
            self.output_tokens += completion.output_tokens
            self.errors += completion.failed

    def _cost(self, completion: Completion) -> float:
        price = self.endpoint.price
        return price.usd(completion.input_tokens, completion.output_tokens) if price else 0.0

    def _send(self, messages: list[dict[str, str]], call: Callable[[], Completion]) -> Completion:
        """Reserve the request's bound, send it, settle its cost; map a run-ending failure to EndpointError."""
        import openai

        bound = self._bound(messages)
        self.budget.reserve(bound)
        with self._lock:
            self.requests += 1
        actual = 0.0
        try:
            completion = call()
            # without usage the tokens are unknown: charge the bound, never less than it could have cost
            actual = self._cost(completion) if completion.usage_known else bound
        except openai.APIStatusError as err:
            if err.status_code in RETRIED_STATUS or err.status_code >= 500:  # still failing after the retries
                completion = Completion("", 0, 0, 0.0, failed=True)
            else:
                raise EndpointError(_why(err, self.endpoint, self._key)) from None
        except openai.OpenAIError as err:
            raise EndpointError(_why(err, self.endpoint, self._key)) from None
        finally:
            self.budget.settle(bound, actual)
        self._tally(completion)
        return completion

    def complete(self, messages: list[dict[str, str]]) -> Completion:
        """One chat completion, from the cache when this exact request was answered before."""
        spec = self.endpoint.spec
        key = RequestCache.key(spec.base_url, spec.model, messages, self.params)
        cached = self.cache.get(key)
        if cached is not None:
            with self._lock:
                self.cache_hits += 1
            return cached

        def call() -> Completion:
            start = time.perf_counter()
            response = self._client.chat.completions.create(model=spec.model, messages=messages, **self.params)
            latency = (time.perf_counter() - start) * 1000
            usage = response.usage
            text = (response.choices[0].message.content or "") if response.choices else ""
            return Completion(
                text,
                usage.prompt_tokens if usage else 0,
                usage.completion_tokens if usage else 0,
                round(latency, 1),
            )

        completion = self._send(messages, call)
        if not completion.failed:
            self.cache.put(key, completion)
        return completion

    def stream(self, messages: list[dict[str, str]]) -> tuple[Completion, float | None, bool]:
        """One streamed, uncached request (the load test): (completion, ms to the first token, whether the output
        tokens came from usage rather than counted stream chunks)."""
        spec = self.endpoint.spec
        first: list[float] = []
        from_usage = [False]

        def call() -> Completion:
            start = time.perf_counter()
            stream = self._client.chat.completions.create(
                model=spec.model,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                **self.params,
            )
            parts: list[str] = []
            chunks = input_tokens = output_tokens = 0
            for chunk in stream:
                if chunk.usage:
                    input_tokens, output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                    from_usage[0] = True
                for choice in chunk.choices or []:
                    content = choice.delta.content if choice.delta else None
                    if content:
                        if not first:
                            first.append((time.perf_counter() - start) * 1000)
                        parts.append(content)
                        chunks += 1
            latency = (time.perf_counter() - start) * 1000
            if from_usage[0]:
                return Completion("".join(parts), input_tokens, output_tokens, latency)
            # a server that sends no usage when streaming (llama.cpp): the prompt's tokens as the same request
            # reported them unstreamed (the quality pass cached it), the output as its chunks, one token each
            asked = self.cache.get(
                RequestCache.key(spec.base_url, spec.model, messages, self.params), even_when_fresh=True
            )
            return Completion(
                "".join(parts),
                asked.input_tokens if asked else 0,
                chunks,
                latency,
                usage_known=asked is not None,
            )

        completion = self._send(messages, call)
        return completion, (first[0] if first else None), from_usage[0]

    def use(self) -> EndpointUse:
        spec = self.endpoint.spec
        with self._lock:
            retries = max(0, self._attempts - self.requests)
            return EndpointUse(
                name=self.endpoint.name,
                model=spec.model,
                base_url=spec.base_url,
                requests=self.requests,
                cache_hits=self.cache_hits,
                retries=retries,
                errors=self.errors,
                input_tokens=self.input_tokens,
                output_tokens=self.output_tokens,
                usd_spent=round(self.budget.spent_usd, 6) if self.endpoint.price or spec.self_hosted else None,
                budget_usd=self.budget.cap_usd,
            )

    def redact(self, text: str) -> str:
        return redact(text, self._key)

    def close(self) -> None:
        self._client.close()


class CompareBudgets:
    """What endpoint runs may still spend in this compare: each endpoint's max_usd and --max-api-usd together."""

    def __init__(self, task: Task, endpoint_names: list[str], total_usd: float | None):
        endpoints = [task.endpoints[n] for n in endpoint_names]
        unpriced = [e.name for e in endpoints if e.price is None and not e.spec.self_hosted]
        if total_usd is not None and unpriced:
            raise UserError(
                f"--max-api-usd: no price is known for endpoint(s) {', '.join(unpriced)} (model not in "
                f"data/catalog/api_prices.yaml), so their spending cannot be capped; add endpoints.NAME.price in "
                f"{task.path.name}"
            )
        self.caps = {n: task.endpoints[n].spec.max_usd for n in endpoint_names}
        self.total_usd = total_usd
        self.spent: dict[str, float] = dict.fromkeys(endpoint_names, 0.0)

    def left(self, endpoint: Endpoint | None) -> float | None:
        """What a run on ``endpoint`` may spend (None: no cap; a local run: None)."""
        if endpoint is None:
            return None
        caps = []
        if self.caps.get(endpoint.name) is not None:
            caps.append((self.caps[endpoint.name] or 0.0) - self.spent[endpoint.name])
        if self.total_usd is not None:
            caps.append(self.total_usd - sum(self.spent.values()))
        return max(0.0, min(caps)) if caps else None

    def spend(self, record: RunRecord) -> None:
        if record.endpoint and record.endpoint.usd_spent and record.endpoint.name in self.spent:
            self.spent[record.endpoint.name] += record.endpoint.usd_spent
