"""The task file (schema v1) as types: ``TaskSpec`` (what the YAML says; its field docs are the documentation, see
``docs/task-schema.md``), ``Task`` (the spec with every reference resolved), ``Example`` and ``Datasets``.

Loading and checking a task file is ``harness.task``; this module holds only the types, so that everything
that works with a task (prompts, strategies, the evaluator) can import them without the loader.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.catalog import ModelRef, TokenPrice
from harness.io import tree_sha256
from harness.metrics import METRICS
from harness.schema import doc

KINDS = ("classification", "qa", "extraction")
DEFAULT_METRIC = {"classification": "accuracy", "qa": "token_f1", "extraction": "json_match"}
DEFAULT_MAX_NEW_TOKENS = {"classification": 16, "qa": 32, "extraction": 128}
DEFAULT_INSTRUCTION = {
    "classification": "Classify the message into exactly one of these labels: {{ labels | join(', ') }}. "
    "Answer with the label only.",
    "qa": "Answer the question with a short answer: a few words, a number, a name or a date. "
    "Answer with the answer only.",
    "extraction": "Extract these fields from the text as a JSON object: {{ fields | join(', ') }}. "
    "Answer with the JSON object only.",
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class DataSpec:
    train: str = field(
        metadata=doc(
            "Training examples, path relative to the task file: .jsonl, .csv, .tsv, .parquet, or a Hugging Face "
            "datasets folder (save_to_disk; of a DatasetDict its `train` split, or the one FOLDER:SPLIT names)."
        )
    )
    test: str = field(
        metadata=doc("Test examples, the same formats (of a DatasetDict folder its `test` split, or FOLDER:SPLIT).")
    )
    input: str = field(default="text", metadata=doc("Field (column) holding the input text."))
    target: str = field(
        default="label",
        metadata=doc(
            "Field (column) holding the expected output (for extraction: a JSON object; in a CSV/TSV cell, as JSON)."
        ),
    )
    id: str | None = field(
        default=None, metadata=doc("Optional field (column) holding an example id (default: split:line or row).")
    )


@dataclass
class Goals:
    quality: float | None = field(
        default=None,
        metadata=doc("Quality the task needs on the test split, in the metric's 0..1 scale.", min=0, max=1),
    )
    p95_latency_ms: float | None = field(
        default=None, metadata=doc("Latency budget per request at the 95th percentile, ms.", gt=0)
    )
    monthly_requests: int | None = field(default=None, metadata=doc("Expected serving volume per month.", min=0))
    training_budget_usd: float | None = field(
        default=None, metadata=doc("What the team can spend on training, USD.", min=0)
    )
    horizon_months: int = field(
        default=12,
        metadata=doc(
            "Months over which training and data costs are weighed against serving costs (total cost, break-even).",
            min=1,
        ),
    )


@dataclass
class Deployment:
    gpu: str = field(
        default="a10g", metadata=doc("GPU (a name in data/catalog/gpus.yaml) used to price training and serving.")
    )


@dataclass
class LoadTest:
    concurrency: list[int] = field(
        default_factory=lambda: [1, 4, 16],
        metadata=doc(
            "Requests in flight at once, one level each (streamed, so time to first token is measured).", min=1
        ),
    )
    requests: int = field(default=64, metadata=doc("Requests sent at each level (test prompts, cycled).", min=1))


@dataclass
class Evaluation:
    validation: float | None = field(
        default=0.15,
        metadata=doc(
            "Validation split carved from train (seeded; test is never touched): a fraction below 1, or a count of "
            "examples. Each arm's settings are chosen on it from its grid (`tuning`), and only the chosen setting is "
            "scored on test. 0 or null: no validation split; each arm runs its first grid point.",
            min=0,
        ),
    )
    seeds: int = field(
        default=1,
        metadata=doc(
            "Fine-tuning arms run this many times with different seeds (data order, adapter initialisation, "
            "dropout): the report gives the mean, the standard deviation and each seed's score (`--seeds`).",
            min=1,
        ),
    )
    batch_size: int = field(default=16, metadata=doc("Test examples generated together in the quality pass.", min=1))
    max_new_tokens: int | None = field(
        default=None,
        metadata=doc("Generation cap per answer (default: classification 16, qa 32, extraction 128).", min=1),
    )
    latency_requests: int = field(
        default=20,
        metadata=doc(
            "The first N test examples are served one at a time (batch size 1, end to end, after one warm-up) for "
            "p50/p95 latency; the rest in batches.",
            min=1,
        ),
    )
    load_test: LoadTest | None = field(
        default_factory=LoadTest,
        metadata=doc(
            "Endpoint variants only: after the quality pass, a load test at each concurrency level measures "
            "requests/s, output tokens/s, p50/p95 end-to-end latency, p50 time to first token and errors "
            "(`load_test: null` turns it off). Its requests are live (never cached) and count against the budget."
        ),
    )


@dataclass
class Tuning:
    trials: int = field(
        default=2,
        metadata=doc(
            "Settings tried on the validation split by each fine-tuning arm: the first N points of its grid in "
            "priority order (each list's first value first), so every fine-tuning arm gets the same budget. "
            "Prompting and RAG try their whole grid (evaluation only). `--limit` tries one.",
            min=1,
        ),
    )


@dataclass
class TokenPriceSpec:
    input_usd_per_mtok: float = field(metadata=doc("USD per million input (prompt) tokens.", min=0))
    output_usd_per_mtok: float = field(metadata=doc("USD per million output (completion) tokens.", min=0))


@dataclass
class SelfHostedSpec:
    gpu: str = field(metadata=doc("The GPU (a name in data/catalog/gpus.yaml) each replica of the server runs on."))
    replicas: int = field(
        default=1, metadata=doc("Replicas behind the base_url (the load test measures them all).", min=1)
    )


@dataclass
class EndpointSpec:
    """An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, TGI, llama.cpp, Ollama, ...)."""

    base_url: str = field(metadata=doc("The API's base URL, e.g. https://api.openai.com/v1 (http or https only)."))
    model: str = field(metadata=doc("The model id the endpoint takes in each request's `model` field."))
    api_key_env: str | None = field(
        default=None,
        metadata=doc(
            "The NAME of the environment variable holding the API key (never the key itself: a task file holding a "
            "key is rejected). Unset for a server without keys."
        ),
    )
    price: TokenPriceSpec | None = field(
        default=None,
        metadata=doc(
            "USD per million tokens; default: the model's entry in data/catalog/api_prices.yaml. Without either the "
            "endpoint is priced as missing (never 0)."
        ),
    )
    self_hosted: SelfHostedSpec | None = field(
        default=None,
        metadata=doc(
            "A server you run yourself: priced per GPU-hour from its measured capacity at the p95 goal (load test), "
            "not per token."
        ),
    )
    max_concurrency: int = field(
        default=4,
        metadata=doc("Requests in flight at once in the quality pass (after the timed single requests).", min=1),
    )
    timeout_s: float = field(default=60.0, metadata=doc("Seconds to wait for one response.", gt=0))
    max_retries: int = field(
        default=3,
        metadata=doc(
            "Retries (with the client's exponential backoff) of a request that hit 429, 5xx or a dropped connection.",
            min=0,
        ),
    )
    max_usd: float | None = field(
        default=None,
        metadata=doc(
            "Spending cap for this endpoint over the whole compare: each request's cost is bounded before it is sent "
            "and the run stops before the cap would be passed.",
            min=0,
        ),
    )


@dataclass
class TaskSpec:
    """A task: what to learn, from which data, with which model, judged how."""

    name: str = field(metadata=doc("Task name, used in output paths (letters, digits, '.', '_', '-')."))
    kind: str = field(metadata=doc("What the model must produce.", choices=KINDS))
    data: DataSpec = field(metadata=doc("The datasets and their fields."))
    model: str = field(
        default="smollm2-135m-instruct",
        metadata=doc(
            "Base model: a name from data/catalog/models.yaml, a local model dir, or a Hugging Face model id."
        ),
    )
    labels: list[str] | None = field(
        default=None, metadata=doc("Classification labels (default: the distinct targets in train).")
    )
    instruction: str | None = field(
        default=None,
        metadata=doc(
            "Instruction (system prompt), a jinja2 template; may use {{ labels }}, {{ fields }} (extraction) and "
            "{{ name }}. Default: one per kind."
        ),
    )
    knowledge: str | None = field(
        default=None,
        metadata=doc(
            "RAG corpus: a folder of .md/.txt files or a .jsonl with a `text` field, relative to the task file."
        ),
    )
    metric: str | None = field(
        default=None,
        metadata=doc(
            "Quality metric (default: classification accuracy, qa token_f1, extraction json_match).",
            choices=tuple(METRICS),
        ),
    )
    strategies: dict[str, Any] | None = field(
        default=None,
        metadata=doc(
            "Which arms run (the strategies below), each with overrides of its defaults (see the per-strategy keys "
            "below). Default: every strategy that runs on any machine - prompt, rag, lora and full (qlora needs a "
            "CUDA GPU; lora+rag and full+rag combine fine-tuning with retrieval: list them to run them)."
        ),
    )
    goals: Goals = field(default_factory=Goals, metadata=doc("What the team needs; used by the recommendation."))
    deployment: Deployment = field(
        default_factory=Deployment, metadata=doc("Where the result would be trained and served.")
    )
    evaluation: Evaluation = field(default_factory=Evaluation, metadata=doc("How runs are evaluated and timed."))
    tuning: Tuning = field(
        default_factory=Tuning, metadata=doc("How each arm's settings are chosen on the validation split.")
    )
    data_cost: dict[str, Any] = field(
        default_factory=dict,
        metadata=doc(
            "How the training examples are made and what that costs (priced in the report): the keys under "
            "`data_cost` below, checked by the advisor."
        ),
    )
    endpoints: dict[str, Any] = field(
        default_factory=dict,
        metadata=doc(
            "Hosted or served models, name -> settings (the keys under `endpoints.NAME` below). "
            "strategies.prompt.endpoints and strategies.rag.endpoints run their variants there too."
        ),
    )
    seed: int = field(default=0, metadata=doc("Seed for shot selection, subsets and training.", min=0))


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    target: Any  # str, or a dict for extraction


@dataclass(frozen=True)
class Endpoint:
    """An endpoint of the task, checked, with its price resolved."""

    name: str
    spec: EndpointSpec
    price: TokenPrice | None  # the task's price, else the catalog's; None: missing (self-hosted: priced per GPU-hour)

    def identity(self) -> dict[str, Any]:
        """What determines an endpoint run's answers (its config hash); not the price, the cap or the key."""
        return {"name": self.name, "base_url": self.spec.base_url.rstrip("/"), "model": self.spec.model}


@dataclass
class Task:
    """A validated task: the spec plus everything resolved from it."""

    spec: TaskSpec
    path: Path
    train_path: Path
    test_path: Path
    knowledge_path: Path | None
    metric: str
    strategy_configs: dict[str, Any]  # strategy name -> its config dataclass
    model_ref: ModelRef
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def max_new_tokens(self) -> int:
        return self.spec.evaluation.max_new_tokens or DEFAULT_MAX_NEW_TOKENS[self.kind]

    def fingerprint(self) -> dict:
        """What determines results: spec plus content hashes of every file it reads."""
        # a file's hash, or a datasets folder's (every file in it); equal to file_sha256 for a file
        files = {"train": tree_sha256(self.train_path), "test": tree_sha256(self.test_path)}
        if self.knowledge_path:
            files["knowledge"] = tree_sha256(self.knowledge_path)
        # endpoints and the load test decide only the endpoint variants' results: their config hashes hold them
        spec = {
            k: v
            for k, v in asdict(self.spec).items()
            if k not in ("strategies", "goals", "deployment", "data_cost", "endpoints", "tuning")
        }
        # each run's seed is in its own hash: how many seeds a compare repeats changes no run
        spec["evaluation"] = {k: v for k, v in spec["evaluation"].items() if k not in ("load_test", "seeds")}
        return {"spec": spec, "files": files, "metric": self.metric}

    def endpoint_of(self, params: dict[str, Any]) -> Endpoint | None:
        """The endpoint a variant runs on (its params' ``endpoint``), or None for a local variant."""
        name = params.get("endpoint")
        return self.endpoints[name] if name else None

    def endpoint_identity(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """An endpoint variant's part of its config hash: the endpoint and the load test."""
        endpoint = self.endpoint_of(params)
        if endpoint is None:
            return None
        load_test = self.spec.evaluation.load_test
        return {**endpoint.identity(), "load_test": asdict(load_test) if load_test else None}


def validation_size(validation: float | None, n_train: int) -> int:
    """How many training examples ``evaluation.validation`` holds out: a count, or a fraction below 1 (rounded, at
    least one, never the last training example: a one-example train set gets no validation split)."""
    if not validation:
        return 0
    return min(max(1, round(validation * n_train)), n_train - 1) if validation < 1 else int(validation)


def carve_validation(train: list[Example], validation: float | None, seed: int) -> tuple[list[Example], list[Example]]:
    """(train without the validation split, the validation split): a seeded random subset, both in file order."""
    n = validation_size(validation, len(train))
    held = set(random.Random(f"validation:{seed}").sample(range(len(train)), n)) if n else set()
    return [ex for i, ex in enumerate(train) if i not in held], [ex for i, ex in enumerate(train) if i in held]


@dataclass
class Datasets:
    train: list[Example]
    test: list[Example]
    labels: list[str] | None  # classification only
    fields: list[str] | None  # extraction only

    def limited(self, limit: int | None, seed: int) -> tuple[list[Example], list[Example]]:
        """``--limit N``: at most N test and 5·N train examples, a seeded random subset of each."""
        if not limit:
            return list(self.train), list(self.test)
        rng = random.Random(seed)
        train = rng.sample(self.train, min(5 * limit, len(self.train)))
        test = rng.sample(self.test, min(limit, len(self.test)))
        return train, test
