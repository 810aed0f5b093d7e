"""The shared evaluator: every strategy's predictor is judged and timed the same way (greedy decoding)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from tqdm.auto import tqdm

from harness import prompts
from harness.endpoints import EndpointClient
from harness.meters import PeakMemory, percentile, synchronize
from harness.metrics import METRICS
from harness.record import EvalInfo, Prediction, ValidationInfo
from harness.spec import Datasets, Example, Task
from harness.strategies.base import Prepared


def render_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def stop_token_ids(tokenizer: Any) -> list[int]:
    """End-of-sequence and end-of-turn ids (chat models end a turn with their own token)."""
    ids = {tokenizer.eos_token_id}
    for token in ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"):
        token_id = tokenizer.convert_tokens_to_ids(token)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return sorted(i for i in ids if i is not None)


class Generator:
    """Greedy generation with a fixed config; left padding for batches."""

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int, device: str):
        from transformers import GenerationConfig

        self.model, self.tokenizer, self.device = model, tokenizer, device
        tokenizer.padding_side = "left"
        self.stops = stop_token_ids(tokenizer)
        self.config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.stops,
            pad_token_id=tokenizer.pad_token_id,
        )

    def __call__(self, prompts_text: list[str]) -> list[tuple[str, int, int]]:
        """(output text, prompt tokens, output tokens) per prompt."""
        import torch

        enc = self.tokenizer(prompts_text, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with torch.inference_mode():
            out = self.model.generate(**enc, generation_config=self.config)
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        results = []
        for row, mask in zip(new, enc["attention_mask"].tolist(), strict=True):
            n = next((i + 1 for i, t in enumerate(row) if t in self.stops), len(row))
            text = self.tokenizer.decode(row[:n], skip_special_tokens=True)
            results.append((text, int(sum(mask)), n))
        return results


@dataclass(frozen=True)
class Output:
    text: str
    prompt_tokens: int
    output_tokens: int
    cached_latency_ms: float | None = None  # a request answered from the cache: its latency when it was fetched


class Backend(Protocol):
    """What answers chat messages: the local model, or an endpoint."""

    warm_up: bool  # time a first request untimed (local: first-call overheads)
    batch_size: int  # requests answered together after the timed ones (a batch, or requests in flight)

    def __call__(self, batch: list[list[dict[str, str]]]) -> list[Output]: ...


class LocalBackend:
    """The prepared model through transformers' ``generate``: greedy, left-padded batches."""

    warm_up = True

    def __init__(self, prepared: Prepared, max_new_tokens: int, device: str, batch_size: int):
        self.tokenizer, self.batch_size = prepared.tokenizer, batch_size
        self.generate = Generator(prepared.model, prepared.tokenizer, max_new_tokens, device)

    def __call__(self, batch: list[list[dict[str, str]]]) -> list[Output]:
        texts = [render_prompt(self.tokenizer, messages) for messages in batch]
        return [Output(*result) for result in self.generate(texts)]


class EndpointBackend:
    """An OpenAI-compatible endpoint: a batch is sent as that many requests in flight at once."""

    warm_up = False  # nothing loads on this side; a cached first answer would time nothing

    def __init__(self, client: EndpointClient):
        self.client, self.batch_size = client, client.endpoint.spec.max_concurrency

    def __call__(self, batch: list[list[dict[str, str]]]) -> list[Output]:
        def one(messages: list[dict[str, str]]) -> Output:
            c = self.client.complete(messages)
            return Output(c.text, c.input_tokens, c.output_tokens, c.latency_ms if c.cached else None)

        if len(batch) == 1:
            return [one(batch[0])]
        with ThreadPoolExecutor(max_workers=len(batch)) as pool:
            return list(pool.map(one, batch))


def backend_for(prepared: Prepared, task: Task, device: str) -> Backend:
    if prepared.endpoint is not None:
        return EndpointBackend(prepared.endpoint)
    return LocalBackend(prepared, task.max_new_tokens, device, task.spec.evaluation.batch_size)


def evaluate(
    prepared: Prepared, task: Task, data: Datasets, examples: list[Example], *, device: str, progress: bool = True
) -> tuple[EvalInfo, list[Prediction]]:
    """(eval info, per-example predictions) for one prepared predictor.

    The first ``latency_requests`` examples are served one at a time, end to end (retrieval,
    prompt, tokenising, generation or the endpoint's round trip, decoding, parsing), a local model after one
    warm-up request: their wall times give p50/p95 at batch size 1 (a request answered from the endpoint cache
    counts the latency measured when it was fetched). The rest are answered in batches - local: sorted by
    length to waste little padding; an endpoint: that many requests in flight - and give the throughput.
    Every example is scored.
    """
    backend = backend_for(prepared, task, device)
    n_single = min(task.spec.evaluation.latency_requests, len(examples))
    outputs: list[Output | None] = [None] * len(examples)
    latencies: list[float] = []
    bar = tqdm(total=len(examples), desc="evaluate", unit="ex", disable=not progress, leave=False)

    with PeakMemory(device) as memory:
        warm_ups = 1 if backend.warm_up else 0
        for n, i in enumerate([0] * warm_ups + list(range(n_single))):
            synchronize(device)
            t0 = time.perf_counter()
            (result,) = backend([prepared.build_messages(examples[i])])
            prompts.parse_output(task, data, result.text)
            synchronize(device)
            if n >= warm_ups:
                wall_ms = (time.perf_counter() - t0) * 1000
                latencies.append(wall_ms + (result.cached_latency_ms or 0.0))
                outputs[i] = result
                bar.update(1)

        start = time.perf_counter()
        live = _answer_in_batches(backend, prepared, examples, range(n_single, len(examples)), outputs, bar)
        synchronize(device)
        batched_seconds = time.perf_counter() - start
    bar.close()

    predictions = _scored(task, data, examples, outputs)
    n = len(predictions)
    if live:  # throughput of the batched part; without one (or all of it cached), of the one-at-a-time requests
        throughput, throughput_batch = live / batched_seconds, backend.batch_size
    else:
        throughput, throughput_batch = 1000 * len(latencies) / sum(latencies), 1
    info = EvalInfo(
        metric=task.metric,
        quality=sum(p.score for p in predictions) / n,
        n_examples=n,
        unparsed=sum(p.prediction is None for p in predictions),
        eval_batch_size=throughput_batch,
        throughput_examples_per_s=round(throughput, 3),
        latency_batch_size=1,
        latency_requests=len(latencies),
        latency_ms_p50=round(percentile(latencies, 50) or 0.0, 1),
        latency_ms_p95=round(percentile(latencies, 95) or 0.0, 1),
        latency_ms_mean=round(sum(latencies) / len(latencies), 1),
        prompt_tokens_mean=round(sum(p.prompt_tokens for p in predictions) / n, 1),
        output_tokens_mean=round(sum(p.output_tokens for p in predictions) / n, 1),
        max_new_tokens=task.max_new_tokens,
        memory=memory.use(),
    )
    return info, predictions


def _answer_in_batches(
    backend: Backend,
    prepared: Prepared,
    examples: list[Example],
    indices: range,
    outputs: list[Output | None],
    bar: tqdm,
) -> int:
    """Answer ``examples[i]`` for ``i`` in ``indices`` in batches - local: sorted by length to waste little
    padding; an endpoint: that many requests in flight - into ``outputs``; how many were answered live (not from
    the endpoint's request cache)."""
    rest = list(indices)
    messages = {i: prepared.build_messages(examples[i]) for i in rest}
    rest.sort(key=lambda i: sum(len(m["content"]) for m in messages[i]), reverse=True)
    live = 0
    for b in range(0, len(rest), backend.batch_size):
        idx = rest[b : b + backend.batch_size]
        for i, result in zip(idx, backend([messages[i] for i in idx]), strict=True):
            outputs[i] = result
            live += result.cached_latency_ms is None
        bar.update(len(idx))
    return live


def _scored(task: Task, data: Datasets, examples: list[Example], outputs: list[Output | None]) -> list[Prediction]:
    score = METRICS[task.metric]
    predictions = []
    for ex, output in zip(examples, outputs, strict=True):
        assert output is not None
        pred = prompts.parse_output(task, data, output.text)
        predictions.append(
            Prediction(
                id=ex.id,
                input=ex.input,
                target=ex.target,
                prediction=pred,
                output=output.text,
                score=score(pred, ex.target),
                prompt_tokens=output.prompt_tokens,
                output_tokens=output.output_tokens,
            )
        )
    return predictions


def validate(
    prepared: Prepared, task: Task, data: Datasets, examples: list[Example], *, device: str, progress: bool = True
) -> ValidationInfo:
    """The quality on the validation split: every example answered in batches and scored, nothing timed (a
    setting is chosen on quality; latency is measured once, on test)."""
    backend = backend_for(prepared, task, device)
    outputs: list[Output | None] = [None] * len(examples)
    bar = tqdm(total=len(examples), desc="validate", unit="ex", disable=not progress, leave=False)
    start = time.perf_counter()
    _answer_in_batches(backend, prepared, examples, range(len(examples)), outputs, bar)
    synchronize(device)
    seconds = time.perf_counter() - start
    bar.close()
    predictions = _scored(task, data, examples, outputs)
    return ValidationInfo(
        metric=task.metric,
        quality=sum(p.score for p in predictions) / len(predictions),
        n_examples=len(predictions),
        unparsed=sum(p.prediction is None for p in predictions),
        seconds=round(seconds, 2),
    )
