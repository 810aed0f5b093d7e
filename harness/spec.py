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

from harness.catalog import ModelRef
from harness.io import file_sha256, tree_sha256
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
    train: str = field(metadata=doc("Training examples, JSONL, path relative to the task file."))
    test: str = field(metadata=doc("Test examples, JSONL, path relative to the task file."))
    input: str = field(default="text", metadata=doc("JSONL field holding the input text."))
    target: str = field(
        default="label", metadata=doc("JSONL field holding the expected output (for extraction: a JSON object).")
    )
    id: str | None = field(
        default=None, metadata=doc("Optional JSONL field holding an example id (default: file:line).")
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
class Evaluation:
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
            "CUDA GPU: list it to run it)."
        ),
    )
    goals: Goals = field(default_factory=Goals, metadata=doc("What the team needs; used by the recommendation."))
    deployment: Deployment = field(
        default_factory=Deployment, metadata=doc("Where the result would be trained and served.")
    )
    evaluation: Evaluation = field(default_factory=Evaluation, metadata=doc("How runs are evaluated and timed."))
    data_cost: dict[str, Any] = field(
        default_factory=dict,
        metadata=doc(
            "How the training examples are made and what that costs (priced in the report): the keys under "
            "`data_cost` below, checked by the advisor."
        ),
    )
    seed: int = field(default=0, metadata=doc("Seed for shot selection, subsets and training.", min=0))


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    target: Any  # str, or a dict for extraction


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
        files = {"train": file_sha256(self.train_path), "test": file_sha256(self.test_path)}
        if self.knowledge_path:
            files["knowledge"] = tree_sha256(self.knowledge_path)
        spec = {
            k: v for k, v in asdict(self.spec).items() if k not in ("strategies", "goals", "deployment", "data_cost")
        }
        return {"spec": spec, "files": files, "metric": self.metric}


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
