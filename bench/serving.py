"""Throughput and latency of the llama.cpp server (``advisor serve``) and of the harness's transformers ``generate``,
on the same model, the same prompts and the same CPU, at 1 and 4 requests in flight.

    .venv/bin/python bench/serving.py [--requests N] [--rounds R] [--out PATH]

Advisor's local arms time transformers' ``generate`` at batch size 1 (harness.evaluate); a deployment would serve
the model with an engine. This bench shows how far apart the two are here: the packaged smollm2-135m-instruct, the
first N test messages of data/tasks/support-intents.yaml as the prompt strategy builds them (0-shot: the task's
instruction as system message, the message as user turn), greedy, the task's max_new_tokens (16).

- server: ``advisor serve`` (llama_cpp.server, harness.serve.start_server) on the package's Q4_1 GGUF, with
  streamed chat completions through harness.endpoints.EndpointClient.stream and harness.load_test.level: exactly
  what advisor's load test of an endpoint does. Concurrency c = c client threads, each with one request in flight.
- generate: harness.evaluate.Generator (transformers ``generate``, greedy, left-padded batches) on the same GGUF
  dequantised to fp32 (harness.models.load_model), in this process. Concurrency c = batches of c prompts, as the
  harness's quality pass batches; every request in a batch waits for the whole batch, so each request's latency is
  its batch's wall time (chat template, tokenising, generate, decoding).

Both sides get 2 CPU threads (llama.cpp n_threads, torch.set_num_threads) and never run at once. The server and the
model are both loaded, each side answers one untimed warm-up request, then each level's N requests are split into R
rounds that alternate between the sides (the same prompts on both, the side going first alternating too), so that
the load of this shared machine weighs on both sides alike; a level's figures pool its rounds (throughput = requests
/ the rounds' summed wall time; p50/p95 over all requests). The output is one table per side and the ratios
server / generate. Output tokens are the answer's tokens without the end-of-turn token on both sides
(llama_cpp.server 0.3.36 streams no usage: its tokens are counted as content chunks, which the bench checks against
the answers re-tokenised). About 2 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing

from harness import catalog, prompts
from harness.meters import percentile
from harness.record import LoadLevel
from harness.spec import Datasets, Task

MODEL = "smollm2-135m-instruct"
TASK = ROOT / "data" / "tasks" / "support-intents.yaml"
THREADS = 2  # per side: llama.cpp's n_threads, torch's intra-op threads
LEVELS = (1, 4)
SETTLE_S = 0.5  # a pause before each side's round, so that neither side's spinning threads overlap the other's
DEFAULT_OUT = ROOT / "reports" / "bench" / "serving.txt"

Messages = list[dict[str, str]]
# a batch of prompts -> (answer text, output tokens without the end-of-turn token) per prompt
SendBatch = Callable[[list[Messages]], list[tuple[str, int]]]


@dataclass
class Samples:
    """What one side measured at one level, over all its rounds."""

    latencies_ms: list[float] = field(default_factory=list)  # per answered request: sent -> last token
    ttfts_ms: list[float] = field(default_factory=list)  # per answered request that streamed a token
    tokens: list[int] = field(default_factory=list)  # output tokens per answered request
    wall_s: float = 0.0  # the rounds' wall times, summed
    errors: int = 0


@dataclass(frozen=True)
class Row:
    """One concurrency level of one side."""

    side: str
    level: LoadLevel
    tokens_per_request: float  # mean output tokens of the answered requests


def summarise(side: str, concurrency: int, samples: Samples, tokens_from: str) -> Row:
    """A level's figures from its pooled rounds, rounded as harness.load_test.level rounds them."""
    answered = len(samples.latencies_ms)
    p50, p95 = percentile(samples.latencies_ms, 50), percentile(samples.latencies_ms, 95)
    ttft = percentile(samples.ttfts_ms, 50)
    wall = samples.wall_s or float("inf")
    level = LoadLevel(
        concurrency=concurrency,
        requests=answered + samples.errors,
        requests_per_s=round(answered / wall, 3),
        output_tokens_per_s=round(sum(samples.tokens) / wall, 2),
        latency_ms_p50=round(p50, 1) if p50 is not None else None,
        latency_ms_p95=round(p95, 1) if p95 is not None else None,
        ttft_ms_p50=round(ttft, 1) if ttft is not None else None,
        errors=samples.errors,
        output_tokens_from=tokens_from,
    )
    return Row(side, level, sum(samples.tokens) / answered if answered else 0.0)


def round_sizes(requests: int, rounds: int, concurrency: int) -> list[int]:
    """``requests`` split into at most ``rounds`` rounds of whole batches of ``concurrency`` (the last batch may be
    short), as evenly as possible."""
    batches = -(-requests // concurrency)
    per_round = [batches // rounds + (r < batches % rounds) for r in range(min(rounds, batches))]
    sizes = [b * concurrency for b in per_round]
    sizes[-1] -= sum(sizes) - requests
    return sizes


def generate_round(send_batch: SendBatch, chats: list[Messages], concurrency: int, samples: Samples) -> None:
    """``chats`` in batches of ``concurrency``, one batch after another: harness.load_test.level's analogue for a
    model that answers a batch at once. Each request's latency is its batch's wall time."""
    start = time.perf_counter()
    for b in range(0, len(chats), concurrency):
        group = chats[b : b + concurrency]
        t0 = time.perf_counter()
        answers = send_batch(group)
        samples.latencies_ms += [(time.perf_counter() - t0) * 1000] * len(group)
        samples.tokens += [n for _, n in answers]
    samples.wall_s += time.perf_counter() - start


def ratio(a: float | None, b: float | None) -> str:
    """a / b to 2 decimals, '-' when either is missing or b is 0."""
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def side_table(rows: list[Row]) -> str:
    """One line per side and concurrency level."""
    lines = [
        f"{'side':<10}{'conc':>5}{'requests':>9}{'errors':>7}{'req/s':>8}{'out tok/s':>10}{'tok/req':>8}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'TTFT p50 ms':>12}"
    ]
    for row in rows:
        lv = row.level
        lines.append(
            f"{row.side:<10}{lv.concurrency:>5}{lv.requests:>9}{lv.errors:>7}{lv.requests_per_s:>8.2f}"
            f"{lv.output_tokens_per_s:>10.1f}{row.tokens_per_request:>8.2f}{_num(lv.latency_ms_p50, '.0f'):>9}"
            f"{_num(lv.latency_ms_p95, '.0f'):>9}{_num(lv.ttft_ms_p50, '.0f'):>12}"
        )
    return "\n".join(lines)


def ratio_table(server: list[Row], generate: list[Row]) -> str:
    """server / generate at each concurrency both sides measured (throughput: above 1 = the server serves more;
    latency: below 1 = the server answers sooner), then each side at each level / at its lowest level."""
    by_level = {row.level.concurrency: row.level for row in generate}
    lines = [
        "server / generate (throughput > 1: the server serves more; latency < 1: the server answers sooner)",
        f"{'conc':>5}{'req/s':>8}{'out tok/s':>10}{'p50':>8}{'p95':>8}",
    ]
    for row in server:
        s, g = row.level, by_level.get(row.level.concurrency)
        if g is None:
            continue
        lines.append(
            f"{s.concurrency:>5}{ratio(s.requests_per_s, g.requests_per_s):>8}"
            f"{ratio(s.output_tokens_per_s, g.output_tokens_per_s):>10}"
            f"{ratio(s.latency_ms_p50, g.latency_ms_p50):>8}{ratio(s.latency_ms_p95, g.latency_ms_p95):>8}"
        )
    lines += [
        "",
        "each side at concurrency c / at its lowest concurrency",
        f"{'side':<10}{'conc':>5}{'req/s':>8}{'p50':>8}",
    ]
    for rows in (server, generate):
        if not rows:
            continue
        base = min(rows, key=lambda r: r.level.concurrency).level
        for row in rows:
            if row.level is base:
                continue
            lv = row.level
            lines.append(
                f"{row.side:<10}{lv.concurrency:>5}{ratio(lv.requests_per_s, base.requests_per_s):>8}"
                f"{ratio(lv.latency_ms_p50, base.latency_ms_p50):>8}"
            )
    return "\n".join(lines)


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def task_prompts(n: int) -> tuple[list[Messages], int, Task, Datasets]:
    """The first ``n`` test messages as the 0-shot prompt strategy builds them, the task's max_new_tokens, the task
    and its data (to parse answers)."""
    from harness.task import load_examples, load_task

    task = load_task(TASK)
    data = load_examples(task)
    instruction = prompts.render_instruction(task, data)
    chats = [prompts.messages(instruction, example) for example in data.test[:n]]
    return chats, task.max_new_tokens, task, data


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run(requests: int, rounds: int) -> str:
    import torch

    from harness.endpoints import Budget, Completion, EndpointClient, RequestCache
    from harness.evaluate import Generator, render_prompt
    from harness.load_test import level
    from harness.meters import hardware
    from harness.models import load_model, load_tokenizer
    from harness.serve import start_server
    from harness.spec import Endpoint, EndpointSpec

    started_load = os.getloadavg()[0]
    torch.set_num_threads(THREADS)
    chats, max_tokens, task, data = task_prompts(requests + 1)
    # the warm-up asks a message the timed requests do not: llama.cpp would answer a repeat of the prompt it has
    # just evaluated from its KV cache
    warm_up = chats.pop() if len(chats) > requests else chats[0]
    index = {id(chat): i for i, chat in enumerate(chats)}
    ref = catalog.resolve_model(MODEL)
    assert ref.gguf_file is not None
    gguf = Path(ref.location) / ref.gguf_file

    tokenizer = load_tokenizer(ref)
    model = load_model(ref, "cpu")
    fp32_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    generator = Generator(model, tokenizer, max_tokens, "cpu")
    generated: list[tuple[int, str]] = []

    def send_batch(group: list[Messages]) -> list[tuple[str, int]]:
        texts = [render_prompt(tokenizer, chat) for chat in group]
        # Generator counts the end-of-turn token when it stopped on one (n below the cap); the server never
        # streams it. (Off by one only when the end-of-turn token is exactly the cap-th token.)
        out = [(text, n - 1 if n < max_tokens else n) for text, _, n in generator(texts)]
        generated.extend((index[id(chat)], text) for chat, (text, _) in zip(group, out, strict=True))
        return out

    samples = {(side, c): Samples() for side in ("server", "generate") for c in LEVELS}
    answers: dict[str, dict[int, str]] = {"server": {}, "generate": {}}
    tokens_from = "stream chunks"
    cpu = {"server_while_generate": 0.0, "client_while_server": 0.0}
    with start_server(MODEL, n_threads=THREADS) as server:
        pid = server.process.pid
        endpoint = Endpoint("bench", EndpointSpec(base_url=server.base_url, model=server.model), price=None)
        client = EndpointClient(endpoint, max_tokens=max_tokens, cache=RequestCache(None), budget=Budget(None))
        streamed: list[tuple[int, Completion, float | None]] = []

        def send(chat: Messages) -> tuple[Completion, float | None, bool]:
            completion, ttft, from_usage = client.stream(chat)
            streamed.append((index[id(chat)], completion, ttft))
            return completion, ttft, from_usage

        def server_round(chunk: list[Messages], concurrency: int, into: Samples) -> str:
            streamed.clear()
            own, t0 = _own_cpu_seconds(), time.perf_counter()
            result = level(send, chunk, concurrency, len(chunk))  # what advisor's load test runs
            into.wall_s += time.perf_counter() - t0
            cpu["client_while_server"] += _own_cpu_seconds() - own
            for i, completion, ttft in streamed:
                if completion.failed:
                    into.errors += 1
                    continue
                into.latencies_ms.append(completion.latency_ms)
                into.tokens.append(completion.output_tokens)
                if ttft is not None:
                    into.ttfts_ms.append(ttft)
                if concurrency == 1:
                    answers["server"][i] = completion.text
            return result.output_tokens_from

        def generate_timed(chunk: list[Messages], concurrency: int, into: Samples) -> None:
            generated.clear()
            served = _cpu_seconds(pid)
            generate_round(send_batch, chunk, concurrency, into)
            cpu["server_while_generate"] += _cpu_seconds(pid) - served
            if concurrency == 1:
                answers["generate"].update(generated)

        try:
            client.stream(warm_up)  # untimed
            generator([render_prompt(tokenizer, warm_up)])
            turn = 0
            for concurrency in LEVELS:
                start = 0
                for size in round_sizes(requests, rounds, concurrency):
                    chunk = [chats[i % len(chats)] for i in range(start, start + size)]  # the same on both sides
                    start += size
                    for side in ("server", "generate") if turn % 2 == 0 else ("generate", "server"):
                        time.sleep(SETTLE_S)
                        if side == "server":
                            tokens_from = server_round(chunk, concurrency, samples["server", concurrency])
                        else:
                            generate_timed(chunk, concurrency, samples["generate", concurrency])
                    turn += 1
                print(f"measured concurrency {concurrency}", file=sys.stderr)
        finally:
            client.close()

    rows = {
        "server": [summarise("server", c, samples["server", c], tokens_from) for c in LEVELS],
        "generate": [summarise("generate", c, samples["generate", c], "generate") for c in LEVELS],
    }
    wall = {side: sum(samples[side, c].wall_s for c in LEVELS) for side in ("server", "generate")}

    # the server's token count (content chunks) against its answers re-tokenised
    server_texts = answers["server"]
    n = len(server_texts)
    retokenised = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in server_texts.values())
    chunks = sum(samples["server", 1].tokens)

    same_text = sum(answers["generate"].get(i) == text for i, text in server_texts.items())
    labels = {side: {i: prompts.parse_output(task, data, t) for i, t in got.items()} for side, got in answers.items()}
    same_label = sum(labels["generate"].get(i) == label for i, label in labels["server"].items())
    unparsed = sum(labels["generate"].get(i) is None and label is None for i, label in labels["server"].items())
    examples = data.test[: len(chats)]
    correct = {side: sum(got.get(i) == ex.target for i, ex in enumerate(examples)) for side, got in labels.items()}

    # llama.cpp keeps the last prompt's KV cache and evaluates only what differs: the shared prefix (chat
    # template and system instruction) is not recomputed; transformers' generate recomputes every prompt
    prompt_ids = [tokenizer(render_prompt(tokenizer, chat), add_special_tokens=False)["input_ids"] for chat in chats]
    shared = min(common_prefix(prompt_ids[0], ids) for ids in prompt_ids) if len(prompt_ids) > 1 else 0
    prompt_tokens = sum(map(len, prompt_ids)) / len(prompt_ids)

    hw = hardware("cpu")
    lines = [
        (
            f"{MODEL}, server Q4_1 GGUF vs generate fp32, cpu ({hw.cpu}, {hw.cpu_count} cores), "
            f"llama.cpp {THREADS} threads, torch {hw.torch_threads} threads, {dt.date.today()}, "
            f"load average {started_load:.1f} at start, {os.getloadavg()[0]:.1f} at end"
        ),
        (
            f"llama_cpp_python {_version('llama_cpp_python')}, torch {torch.__version__}, "
            f"transformers {_version('transformers')}, openai {_version('openai')}"
        ),
        (
            f"prompts: the first {len(chats)} test messages of {TASK.name}, 0-shot (system = the task's instruction); "
            f"greedy, max_tokens {max_tokens}; {requests} requests per side and level (prompts cycled) in up to "
            f"{rounds} rounds alternating server / generate, after 1 untimed warm-up per side"
        ),
        (
            f"prompt tokens: {prompt_tokens:.1f} per request, the first {shared} the same in every prompt (template "
            "and instruction): llama.cpp reuses them from its KV cache, generate recomputes them"
        ),
        (
            f"server: advisor serve (llama_cpp.server) on {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB), "
            "streamed chat completions (EndpointClient.stream, load_test.level): c client threads in flight"
        ),
        (
            "generate: harness.evaluate.Generator (transformers generate) on the same weights dequantised to fp32 "
            f"({fp32_bytes / 2**20:.0f} MiB): batches of c prompts, a request's latency = its batch's wall time"
        ),
        (
            f"output tokens: the answer's without the end-of-turn token (server: {tokens_from}, no usage sent; at "
            f"c=1 {chunks / max(n, 1):.2f} chunks vs {retokenised / max(n, 1):.2f} tokens re-tokenised per answer)"
        ),
        "",
        side_table(rows["server"] + rows["generate"]),
        "",
        ratio_table(rows["server"], rows["generate"]),
        "",
        (
            f"answers at c=1 (Q4_1 llama.cpp vs fp32 transformers, both greedy): {same_text}/{n} identical text, "
            f"{same_label}/{n} same parsed label ({unparsed} of them no label on either side); correct labels: "
            f"server {correct['server']}/{n}, generate {correct['generate']}/{n}"
        ),
        (
            f"CPU check: server process {cpu['server_while_generate']:.1f} CPU s during generate's "
            f"{wall['generate']:.1f} s; this process (the HTTP client threads) {cpu['client_while_server']:.1f} "
            f"CPU s during the server's {wall['server']:.1f} s"
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=24, help="timed requests per side and level (default 24)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per level, alternating the sides (default 3)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="also write the output here (default %(default)s)"
    )
    args = parser.parse_args()
    if args.requests < 1 or args.rounds < 1:
        parser.error("--requests and --rounds: at least 1")
    text = run(args.requests, args.rounds)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
