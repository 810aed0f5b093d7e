"""Loading a task file: ``load_task(path)`` parses YAML with ``yaml.safe_load`` only, builds ``TaskSpec``
(``harness.spec``), resolves paths relative to the YAML file and checks every reference (files, model, GPU,
metric, strategies). ``load_examples`` reads and checks the datasets (JSONL, CSV, TSV, Parquet or a Hugging Face
datasets folder: ``harness.datafiles``), the knowledge corpus and the instruction template. Every problem is a
one-line ``UserError`` naming the file and key or line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import catalog
from harness.corpus import read_corpus
from harness.datafiles import Table, read_table, split_suffix
from harness.endpoint_checks import check_base_url, check_key_env, check_no_keys
from harness.errors import UserError
from harness.io import read_yaml
from harness.overrides import apply_overrides, blame
from harness.prompts import render_instruction
from harness.schema import build, closest
from harness.spec import (
    DEFAULT_METRIC,
    NAME_PATTERN,
    Datasets,
    Endpoint,
    EndpointSpec,
    Example,
    Task,
    TaskSpec,
    validation_size,
)
from harness.strategies import STRATEGIES, default_strategies


def _resolve(base: Path, rel: str, key: str, file: Path) -> Path:
    path = (base / rel).resolve()
    if not path.exists():
        raise UserError(
            f"{file}: {key}: path '{rel}' does not exist (looked for {path}); fix the path, relative to the task file"
        )
    return path


def load_task(path: str | Path, overrides: Sequence[str] = ()) -> Task:
    """Parse and check a task file (not its datasets: see ``load_examples``); ``overrides`` (``--set KEY=VALUE``,
    ``harness.overrides``) are merged into it first, so they are checked as the file is."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise UserError(
            f"{path}: top level: expected a mapping of keys (name, kind, data, ...), got {type(raw).__name__}"
        )
    if not overrides:
        return _checked(path, raw)
    try:
        return _checked(path, apply_overrides(raw, overrides))
    except UserError as err:
        raise blame(err, overrides, str(path)) from None


def _checked(path: Path, raw: dict[str, Any]) -> Task:
    check_no_keys(raw, str(path))  # before anything could repeat a value
    spec: TaskSpec = build(TaskSpec, raw, file=str(path))
    if not NAME_PATTERN.match(spec.name):
        raise UserError(
            f"{path}: name: {spec.name!r} is not a safe name for output paths; use letters, digits, '.', '_' and '-'"
        )

    base = path.resolve().parent
    train_path = _resolve(base, split_suffix(spec.data.train)[0], "data.train", path)
    test_path = _resolve(base, split_suffix(spec.data.test)[0], "data.test", path)
    knowledge_path = None
    if spec.knowledge:
        knowledge_path = _resolve(base, spec.knowledge, "knowledge", path)

    validation = spec.evaluation.validation
    if validation is not None and validation >= 1 and validation != int(validation):
        raise UserError(
            f"{path}: evaluation.validation: {validation:g} is neither a fraction below 1 nor a whole count of examples"
        )
    metric = spec.metric or DEFAULT_METRIC[spec.kind]
    if spec.kind == "extraction" and metric == "accuracy":
        raise UserError(f"{path}: metric: accuracy compares labels; for extraction use json_match or exact_match")

    strategies_raw = spec.strategies if spec.strategies is not None else dict.fromkeys(default_strategies(), {})
    if not strategies_raw:
        raise UserError(f"{path}: strategies: no strategy listed; list at least one of: {', '.join(STRATEGIES)}")
    configs = {}
    for name, overrides in strategies_raw.items():
        if name not in STRATEGIES:
            raise UserError(
                f"{path}: strategies.{name}: unknown strategy{closest(str(name), STRATEGIES)}; "
                f"choose from: {', '.join(STRATEGIES)}"
            )
        configs[name] = build(STRATEGIES[name].config_type, overrides, file=str(path), prefix=f"strategies.{name}")

    endpoints = _endpoints(spec, path)
    for name, config in configs.items():
        for endpoint in getattr(config, "endpoints", None) or []:
            if endpoint not in endpoints:
                declared = ", ".join(endpoints) or "none"
                raise UserError(
                    f"{path}: strategies.{name}.endpoints: '{endpoint}' is not declared under endpoints"
                    f"{closest(endpoint, endpoints)} (declared: {declared}); add it there or fix the name"
                )
    model_ref = catalog.resolve_model(spec.model, base_dir=base, where=f"{path}: model")
    catalog.check_gpu(spec.deployment.gpu, where=f"{path}: deployment.gpu")
    return Task(
        spec=spec,
        path=path,
        train_path=train_path,
        test_path=test_path,
        knowledge_path=knowledge_path,
        metric=metric,
        strategy_configs=configs,
        model_ref=model_ref,
        endpoints=endpoints,
    )


def _endpoints(spec: TaskSpec, path: Path) -> dict[str, Endpoint]:
    """The task's endpoints, checked (URL, names, price or self-hosting for a cap), each with its price."""
    endpoints = {}
    for name, raw in spec.endpoints.items():
        where = f"{path}: endpoints.{name}"
        if not NAME_PATTERN.match(str(name)) or "@" in str(name):
            raise UserError(f"{where}: not a safe name for variant names; use letters, digits, '.', '_' and '-'")
        endpoint_spec: EndpointSpec = build(EndpointSpec, raw, file=str(path), prefix=f"endpoints.{name}")
        check_base_url(endpoint_spec.base_url, f"{where}.base_url")
        price: catalog.TokenPrice | None
        if endpoint_spec.price is not None:
            price = catalog.TokenPrice(
                endpoint_spec.price.input_usd_per_mtok, endpoint_spec.price.output_usd_per_mtok, source="task file"
            )
        else:
            price = catalog.api_price(endpoint_spec.model)
        if endpoint_spec.self_hosted is not None:
            catalog.check_gpu(endpoint_spec.self_hosted.gpu, where=f"{where}.self_hosted.gpu")
        elif endpoint_spec.max_usd is not None and price is None:
            raise UserError(
                f"{where}.max_usd: no price is known for model {endpoint_spec.model} (not in "
                f"data/catalog/api_prices.yaml), so spending cannot be capped; add price: {{input_usd_per_mtok: ..., "
                f"output_usd_per_mtok: ...}}"
            )
        endpoints[name] = Endpoint(name, endpoint_spec, price)
    return endpoints


def check_endpoint_keys(task: Task, names: list[str] | None = None) -> None:
    """Each endpoint the planned runs use (``names``; default: every endpoint a strategy lists) has its key's
    environment variable set: checked before anything runs."""
    used = (
        names
        if names is not None
        else [e for config in task.strategy_configs.values() for e in getattr(config, "endpoints", None) or []]
    )
    for name in dict.fromkeys(used):
        check_key_env(task.endpoints[name], f"{task.path}: endpoints.{name}")


def _examples_from(path: Path, spec: TaskSpec, split: str, task_file: Path, data_split: str | None) -> list[Example]:
    table = read_table(path, f"{split} dataset", data_split)
    _check_columns(table, path, spec, task_file)
    examples = []
    for row in table.rows:
        obj, where = row.values, row.where
        for key, field_name in (("data.input", spec.data.input), ("data.target", spec.data.target)):
            if field_name not in obj:
                raise UserError(
                    f"{where}: field '{field_name}' (set by {key} in {task_file.name}) is missing; "
                    f"fields here: {', '.join(obj) or 'none'}"
                )
        value, target = obj[spec.data.input], obj[spec.data.target]
        if not isinstance(value, str) or not value.strip():
            raise UserError(f"{where}: field '{spec.data.input}' must be a non-empty string")
        if spec.kind == "extraction":
            if isinstance(target, str) and table.columns is not None:
                target = _json_cell(target)  # a CSV cell holds the object as JSON text
            if not isinstance(target, dict):
                raise UserError(f"{where}: field '{spec.data.target}' must be a JSON object for an extraction task")
        elif not isinstance(target, (str, int, float)) or isinstance(target, bool) or not str(target).strip():
            raise UserError(f"{where}: field '{spec.data.target}' must be a non-empty string")
        else:
            target = str(target).strip()
        raw_id = obj.get(spec.data.id) if spec.data.id else None
        ex_id = "" if raw_id is None else str(raw_id)
        examples.append(Example(id=ex_id or f"{split}:{row.number}", input=value, target=target))
    return examples


def _check_columns(table: Table, path: Path, spec: TaskSpec, task_file: Path) -> None:
    """A table's columns hold the named fields: one error naming the columns found, before any row."""
    if table.columns is None:
        return
    for key, name in (("data.input", spec.data.input), ("data.target", spec.data.target)):
        if name not in table.columns:
            raise UserError(
                f"{path}: column '{name}' (set by {key} in {task_file.name}) is missing; "
                f"columns here: {', '.join(table.columns) or 'none'}"
            )


def _json_cell(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # not JSON: reported as not an object, naming the row


def load_examples(task: Task) -> Datasets:
    spec = task.spec
    train = _examples_from(task.train_path, spec, "train", task.path, split_suffix(spec.data.train)[1])
    test = _examples_from(task.test_path, spec, "test", task.path, split_suffix(spec.data.test)[1])
    held = validation_size(spec.evaluation.validation, len(train))
    if held >= len(train):
        raise UserError(
            f"{task.path}: evaluation.validation: holding out {held} of {len(train)} training examples leaves none to "
            f"train on; use a fraction below 1 (e.g. 0.15) or a smaller count"
        )
    labels = fields = None
    if spec.kind == "classification":
        labels = list(spec.labels) if spec.labels else sorted({ex.target for ex in train})
        for examples, path in ((train, task.train_path), (test, task.test_path)):
            for ex in examples:
                if ex.target not in labels:
                    raise UserError(
                        f"{path}: example {ex.id}: label {ex.target!r} is not in labels "
                        f"({', '.join(labels)}){closest(ex.target, labels)}; fix the label or add it to labels in "
                        f"{task.path.name}"
                    )
    if spec.kind == "extraction":
        fields = sorted({key for ex in train for key in ex.target})
    if task.knowledge_path:
        read_corpus(task.knowledge_path)  # an empty or unreadable corpus fails here, before any run
    datasets = Datasets(train=train, test=test, labels=labels, fields=fields)
    render_instruction(task, datasets)  # a broken or unsafe template fails here too
    return datasets
