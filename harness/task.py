"""The task file (schema v1): its typed spec, its loader, and its datasets.

``load_task(path)`` parses YAML with ``yaml.safe_load`` only, builds ``TaskSpec`` (whose field docs
are the documentation, see ``docs/task-schema.md``), resolves paths relative to the YAML file and
checks every reference (files, model, GPU, metric, strategies). ``load_examples`` reads and checks
the JSONL datasets. Every problem is a one-line ``UserError`` naming the file and key or line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness import catalog
from harness.errors import UserError
from harness.schema import build, closest, doc

KINDS = ("classification", "qa", "extraction")
METRICS = ("accuracy", "exact_match", "token_f1", "json_match")
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
DEFAULT_STRATEGIES = {"prompt": {}, "rag": {}, "lora": {}, "full": {}}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class DataSpec:
    train: str = field(metadata=doc("Training examples, JSONL, path relative to the task file."))
    test: str = field(metadata=doc("Test examples, JSONL, path relative to the task file."))
    input: str = field(default="text", metadata=doc("JSONL field holding the input text."))
    target: str = field(default="label", metadata=doc("JSONL field holding the expected output (for extraction: a JSON object)."))
    id: str | None = field(default=None, metadata=doc("Optional JSONL field holding an example id (default: file:line)."))


@dataclass
class Goals:
    quality: float | None = field(default=None, metadata=doc("Quality the task needs on the test split, in the metric's 0..1 scale.", min=0, max=1))
    p95_latency_ms: float | None = field(default=None, metadata=doc("Latency budget per request at the 95th percentile, ms.", gt=0))
    monthly_requests: int | None = field(default=None, metadata=doc("Expected serving volume per month.", min=0))
    training_budget_usd: float | None = field(default=None, metadata=doc("What the team can spend on training, USD.", min=0))
    horizon_months: int = field(default=12, metadata=doc("Months over which training and data costs are weighed against serving costs (total cost, break-even).", min=1))


@dataclass
class Deployment:
    gpu: str = field(default="a10g", metadata=doc("GPU (a name in data/catalog/gpus.yaml) used to price training and serving."))


@dataclass
class DataCostConfig:
    """The task file's ``data_cost:`` block: how its training examples are made, and what that costs."""

    minutes_per_example: float = field(default=5.0, metadata=doc(
        "Minutes a person spends writing or labelling one example. Default 5: the worked example in Learnixo, "
        "'What Is Fine-Tuning?' (2026-05-15); measure your own.", min=0))
    hourly_rate_usd: float = field(default=30.0, metadata=doc(
        "Cost of one hour of that person's time, USD. Default 30: the same worked example.", min=0))
    llm_generated_fraction: float = field(default=0.0, metadata=doc(
        "Share of the examples an LLM generates instead of a person (0..1).", min=0, max=1))
    llm_tokens_per_example: int = field(default=200, metadata=doc(
        "Tokens the LLM generates per example. Default 200: the same worked example.", min=0))
    llm_usd_per_million_tokens: float = field(default=10.0, metadata=doc(
        "Price of a million generated (output) tokens, USD. Default 10: GPT-4o output tokens, OpenAI API price "
        "list as quoted by chatgptpricing.com/api (2025-03; $2.50 per million input tokens). The worked example's "
        "$5 is GPT-4o's launch input price, not its output price.", min=0))
    review_fraction: float = field(default=1.0, metadata=doc(
        "Share of the LLM-generated examples a person reviews (0..1). Default 1: read everything a model wrote "
        "before training on it.", min=0, max=1))
    review_minutes_per_example: float = field(default=1.0, metadata=doc(
        "Minutes to review one generated example. Default 1: an assumption (reading and fixing a short example "
        "takes a fraction of writing it); measure your own.", min=0))


@dataclass
class Evaluation:
    batch_size: int = field(default=16, metadata=doc("Test examples generated together in the quality pass.", min=1))
    max_new_tokens: int | None = field(default=None, metadata=doc("Generation cap per answer (default: classification 16, qa 32, extraction 128).", min=1))
    latency_requests: int = field(default=20, metadata=doc("The first N test examples are served one at a time (batch size 1, end to end, after one warm-up) for p50/p95 latency; the rest in batches.", min=1))


@dataclass
class TaskSpec:
    """A task: what to learn, from which data, with which model, judged how."""

    name: str = field(metadata=doc("Task name, used in output paths (letters, digits, '.', '_', '-')."))
    kind: str = field(metadata=doc("What the model must produce.", choices=KINDS))
    data: DataSpec = field(metadata=doc("The datasets and their fields."))
    model: str = field(default="smollm2-135m-instruct", metadata=doc("Base model: a name from data/catalog/models.yaml, a local model dir, or a Hugging Face model id."))
    labels: list[str] | None = field(default=None, metadata=doc("Classification labels (default: the distinct targets in train)."))
    instruction: str | None = field(default=None, metadata=doc("Instruction (system prompt), a jinja2 template; may use {{ labels }}, {{ fields }} (extraction) and {{ name }}. Default: one per kind."))
    knowledge: str | None = field(default=None, metadata=doc("RAG corpus: a folder of .md/.txt files or a .jsonl with a `text` field, relative to the task file."))
    metric: str | None = field(default=None, metadata=doc("Quality metric (default: classification accuracy, qa token_f1, extraction json_match).", choices=METRICS))
    strategies: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_STRATEGIES), metadata=doc("Which arms run (prompt, rag, lora, qlora, full), each with overrides of its defaults (see the per-strategy keys below). Default: prompt, rag, lora and full (qlora needs a CUDA GPU: list it to run it)."))
    goals: Goals = field(default_factory=Goals, metadata=doc("What the team needs; used by the recommendation."))
    deployment: Deployment = field(default_factory=Deployment, metadata=doc("Where the result would be trained and served."))
    evaluation: Evaluation = field(default_factory=Evaluation, metadata=doc("How runs are evaluated and timed."))
    data_cost: DataCostConfig = field(default_factory=DataCostConfig, metadata=doc("How the training examples are made and what that costs (priced in the report)."))
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
    model_ref: catalog.ModelRef

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
        spec = {k: v for k, v in asdict(self.spec).items() if k not in ("strategies", "goals", "deployment", "data_cost")}
        return {"spec": spec, "files": files, "metric": self.metric}



def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_sha256(path: Path) -> str:
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(path)).encode())
        digest.update(file_sha256(f).encode())
    return digest.hexdigest()


def read_yaml(path: Path) -> Any:
    """``yaml.safe_load`` a file, turning every failure into a one-line UserError."""
    if not path.is_file():
        raise UserError(f"{path}: file not found; check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and start is not None and (mark is None or start.line != mark.line):
            problem += f" ({context} started at line {start.line + 1})"
        raise UserError(f"{path}{line}: YAML syntax error: {problem}; fix the YAML at that line")


def _resolve(base: Path, rel: str, key: str, file: Path, *, want_dir: bool | None = None) -> Path:
    path = (base / rel).resolve()
    if not path.exists():
        raise UserError(f"{file}: {key}: path '{rel}' does not exist (looked for {path}); fix the path, relative to the task file")
    if want_dir is False and not path.is_file():
        raise UserError(f"{file}: {key}: '{rel}' is not a file; point it at a JSONL file")
    return path


def load_task(path: str | Path) -> Task:
    """Parse and check a task file (not its datasets: see ``load_examples``)."""
    from harness.strategies import STRATEGIES

    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(f"{path}: top level: expected a mapping of keys (name, kind, data, ...), got {type(raw).__name__}")
    spec: TaskSpec = build(TaskSpec, raw, file=str(path))
    if not NAME_PATTERN.match(spec.name):
        raise UserError(f"{path}: name: {spec.name!r} is not a safe name for output paths; use letters, digits, '.', '_' and '-'")

    base = path.resolve().parent
    train_path = _resolve(base, spec.data.train, "data.train", path, want_dir=False)
    test_path = _resolve(base, spec.data.test, "data.test", path, want_dir=False)
    knowledge_path = None
    if spec.knowledge:
        knowledge_path = _resolve(base, spec.knowledge, "knowledge", path)

    metric = spec.metric or DEFAULT_METRIC[spec.kind]
    if spec.kind == "extraction" and metric == "accuracy":
        raise UserError(f"{path}: metric: accuracy compares labels; for extraction use json_match or exact_match")

    strategies_raw = spec.strategies if spec.strategies is not None else {}
    if not strategies_raw:
        raise UserError(f"{path}: strategies: no strategy listed; list at least one of: {', '.join(STRATEGIES)}")
    configs = {}
    for name, overrides in strategies_raw.items():
        if name not in STRATEGIES:
            raise UserError(f"{path}: strategies.{name}: unknown strategy{closest(str(name), STRATEGIES)}; "
                            f"choose from: {', '.join(STRATEGIES)}")
        configs[name] = build(STRATEGIES[name].config_type, overrides, file=str(path), prefix=f"strategies.{name}")

    model_ref = catalog.resolve_model(spec.model, base_dir=base, where=f"{path}: model")
    catalog.check_gpu(spec.deployment.gpu, where=f"{path}: deployment.gpu")
    return Task(spec=spec, path=path, train_path=train_path, test_path=test_path, knowledge_path=knowledge_path,
                metric=metric, strategy_configs=configs, model_ref=model_ref)


def read_jsonl(path: Path, what: str) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; one-line errors for malformed lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text (byte {err.start}); save the file as UTF-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: malformed JSON ({err.msg}); each line of a {what} file must be one JSON object")
        if not isinstance(obj, dict):
            raise UserError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
        rows.append((number, obj))
    if not rows:
        raise UserError(f"{path}: the {what} file is empty; add at least one JSON line")
    return rows


def _examples_from(path: Path, spec: TaskSpec, split: str, task_file: Path) -> list[Example]:
    examples = []
    for number, obj in read_jsonl(path, f"{split} dataset"):
        for key, field_name in (("data.input", spec.data.input), ("data.target", spec.data.target)):
            if field_name not in obj:
                raise UserError(f"{path}:{number}: field '{field_name}' (set by {key} in {task_file.name}) is missing; "
                                f"fields here: {', '.join(obj) or 'none'}")
        value, target = obj[spec.data.input], obj[spec.data.target]
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{path}:{number}: field '{spec.data.input}' must be a non-empty string")
        if spec.kind == "extraction":
            if not isinstance(target, dict):
                raise UserError(f"{path}:{number}: field '{spec.data.target}' must be a JSON object for an extraction task")
        elif not isinstance(target, (str, int, float)) or isinstance(target, bool) or not str(target).strip():
            raise UserError(f"{path}:{number}: field '{spec.data.target}' must be a non-empty string")
        else:
            target = str(target).strip()
        ex_id = str(obj.get(spec.data.id, "")) if spec.data.id else ""
        examples.append(Example(id=ex_id or f"{split}:{number}", input=value, target=target))
    return examples


@dataclass
class Datasets:
    train: list[Example]
    test: list[Example]
    labels: list[str] | None  # classification only
    fields: list[str] | None  # extraction only


def load_examples(task: Task) -> Datasets:
    spec = task.spec
    train = _examples_from(task.train_path, spec, "train", task.path)
    test = _examples_from(task.test_path, spec, "test", task.path)
    labels = fields = None
    if spec.kind == "classification":
        labels = list(spec.labels) if spec.labels else sorted({ex.target for ex in train})
        for examples, path in ((train, task.train_path), (test, task.test_path)):
            for ex in examples:
                if ex.target not in labels:
                    raise UserError(f"{path}: example {ex.id}: label {ex.target!r} is not in labels "
                                    f"({', '.join(labels)}){closest(ex.target, labels)}; fix the label or add it to labels in {task.path.name}")
    if spec.kind == "extraction":
        fields = sorted({key for ex in train for key in ex.target})
    if task.knowledge_path:
        from harness.corpus import read_corpus

        read_corpus(task.knowledge_path)  # an empty or unreadable corpus fails here, before any run
    datasets = Datasets(train=train, test=test, labels=labels, fields=fields)
    from harness.prompts import render_instruction

    render_instruction(task, datasets)  # a broken or unsafe template fails here too
    return datasets
