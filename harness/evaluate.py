"""The shared evaluator: every strategy's predictor is judged and timed the same way (greedy decoding)."""

from __future__ import annotations

import time
from typing import Any

from tqdm.auto import tqdm

from harness import prompts
from harness.meters import PeakMemory, percentile, synchronize
from harness.metrics import METRICS
from harness.record import EvalInfo, Prediction
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


def evaluate(
    prepared: Prepared, task: Task, data: Datasets, examples: list[Example], *, device: str, progress: bool = True
) -> tuple[EvalInfo, list[Prediction]]:
    """(eval info, per-example predictions) for one prepared predictor.

    The first ``latency_requests`` examples are served one at a time, end to end (retrieval,
    prompt, tokenising, generation, decoding, parsing) after one warm-up request: their wall
    times give p50/p95 at batch size 1. The rest are generated in batches (sorted by length to
    waste little padding) and give the throughput. Every example is scored.
    """
    spec = task.spec.evaluation
    generate = Generator(prepared.model, prepared.tokenizer, task.max_new_tokens, device)
    score = METRICS[task.metric]
    n_single = min(spec.latency_requests, len(examples))
    outputs: list[Any] = [None] * len(examples)
    latencies: list[float] = []
    bar = tqdm(total=len(examples), desc="evaluate", unit="ex", disable=not progress, leave=False)

    with PeakMemory(device) as memory:
        for n, i in enumerate([0, *range(n_single)]):  # the first request is a warm-up, not timed
            synchronize(device)
            t0 = time.perf_counter()
            (result,) = generate([render_prompt(prepared.tokenizer, prepared.build_messages(examples[i]))])
            prompts.parse_output(task, data, result[0])
            synchronize(device)
            if n:
                latencies.append((time.perf_counter() - t0) * 1000)
                outputs[i] = result
                bar.update(1)

        start = time.perf_counter()
        rest = list(range(n_single, len(examples)))
        texts = {i: render_prompt(prepared.tokenizer, prepared.build_messages(examples[i])) for i in rest}
        rest.sort(key=lambda i: len(texts[i]), reverse=True)
        for b in range(0, len(rest), spec.batch_size):
            idx = rest[b : b + spec.batch_size]
            for i, result in zip(idx, generate([texts[i] for i in idx]), strict=True):
                outputs[i] = result
            bar.update(len(idx))
        synchronize(device)
        batched_seconds = time.perf_counter() - start
    bar.close()

    predictions = []
    for ex, (text, n_prompt, n_out) in zip(examples, outputs, strict=True):
        pred = prompts.parse_output(task, data, text)
        predictions.append(
            Prediction(
                id=ex.id,
                input=ex.input,
                target=ex.target,
                prediction=pred,
                output=text,
                score=score(pred, ex.target),
                prompt_tokens=n_prompt,
                output_tokens=n_out,
            )
        )
    n = len(predictions)
    if rest:  # throughput of the batched part; with no batched part, of the one-at-a-time requests
        throughput, throughput_batch = len(rest) / batched_seconds, spec.batch_size
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
