"""The ``advisor`` command line. Nothing here loads torch: ``compare`` reaches it through the harness when it runs,
so ``estimate``, ``validate``, ``report`` and ``schema`` start fast (``bench/startup.py`` times them). The report
(matplotlib) loads only for the commands that write one.

Every command ends its ``--help`` with worked examples, takes ``--quiet``/``--verbose`` and respects ``NO_COLOR``
(``advisor.cli_errors.Commands``); ``compare``, ``validate`` and ``plan`` take ``--set KEY=VALUE`` overrides of the
task file (``harness.overrides``)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import click

from advisor.cli_errors import Commands, user_errors
from advisor.cli_options import (
    dataclass_options,
    overrides_option,
    progress_option,
    show_progress,
    verbosity,
    verbosity_params,
    version_option,
)
from advisor.costs.data_cost import data_cost_config
from advisor.estimate_cli import estimate
from advisor.plan_cli import plan
from advisor.preflight import memory_preflight, sharding_planner
from advisor.results_cli import results
from advisor.schema_doc import task_json_schema_text, task_schema_markdown
from advisor.tracking import check_tracking, log_comparison, mlflow_option
from advisor.view import view, view_report
from harness.compare import run_compare
from harness.compare_options import CompareOptions
from harness.corpus import read_corpus
from harness.errors import UserError
from harness.serve import is_loopback
from harness.serve import serve as serve_model
from harness.strategies import STRATEGIES
from harness.task import check_endpoint_keys, load_examples, load_task
from harness.typedjson import to_jsonable


def examples(*lines: str) -> str:
    """A command's epilog: worked examples, kept line by line (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=verbosity_params(),
    epilog=examples(
        "advisor validate data/tasks/support-intents.yaml",
        "advisor compare data/tasks/support-intents.yaml --limit 8 --only prompt,lora",
        "advisor estimate --model llama-3.1-8b --gpu a10g",
    )
    + "\n\n\b\nShell completion (bash; zsh and fish alike, see the README):\n"
    + '  eval "$(_ADVISOR_COMPLETE=bash_source advisor)"',
)
@version_option
def main() -> None:
    """Compare prompting, RAG, LoRA and full fine-tuning on one task, measured; report which to use."""


def _compare_log(line: str) -> None:
    """A compare's progress line: all of them, or with --quiet only a run that failed or stopped."""
    if verbosity() >= 0 or ": FAILED" in line or ": STOPPED" in line:
        click.echo(line, err=True)


@main.command(
    epilog=examples(
        "advisor compare data/tasks/support-intents.yaml",
        "advisor compare data/tasks/support-intents.yaml --limit 8 --only prompt,lora --out /tmp/quick",
        "advisor compare data/tasks/support-intents.yaml --set strategies.lora.rank=16 --mlflow   # then: mlflow ui",
    )
)
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@overrides_option
@progress_option
@dataclass_options(CompareOptions, skip=("progress",))
@mlflow_option
@user_errors
def compare(
    task_file: Path, overrides: tuple[str, ...], progress: bool | None, mlflow_uri: str | None, **settings: Any
) -> None:
    """Run TASK_FILE every way it lists, measure every run, write results.json and report.html."""
    from advisor.report import publish  # matplotlib: only for the commands that draw

    task = load_task(task_file, overrides)  # parsed once, here, with the --set overrides merged in
    data_cost = data_cost_config(task.spec.data_cost, file=str(task.path))  # checked before anything runs
    options = CompareOptions(**settings, progress=show_progress(progress))
    out_dir = options.folder(task)
    check_tracking(mlflow_uri)  # MLflow installed and its store reachable, before anything runs
    if verbosity() > 0:
        os.environ["ADVISOR_VERBOSE"] = "1"  # the workers keep their libraries' warnings and logs
        changed = {k: v for k, v in settings.items() if v not in (None, False, CompareOptions.__dict__.get(k))}
        click.echo(f"task {task.name} ({task.path}), output {out_dir}; settings {changed or 'defaults'}", err=True)
        for override in overrides:
            click.echo(f"--set {override}", err=True)
    comparison = run_compare(
        task,
        options,
        preflight=memory_preflight(task),
        plan_sharding=sharding_planner(task),
        log=_compare_log,
    )
    analysis, report = publish(out_dir, comparison, data_cost)
    if verbosity() > 0:
        for run in comparison.runs:
            for each in run.all_runs():
                click.echo(f"record {out_dir / each.path}: {each.record.status.value}", err=True)
    click.echo(analysis.recommendation.verdict)
    click.echo(f"wrote {out_dir / 'results.json'} and {report}")
    if mlflow_uri:
        click.echo(log_comparison(mlflow_uri, out_dir, analysis).line())


@main.command(
    epilog=examples(
        "advisor validate data/tasks/*.yaml",
        "advisor validate my-task.yaml --set strategies.lora.rank=16",
        "advisor validate my-task.yaml --verbose",
    )
)
@click.argument("task_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@overrides_option
@user_errors
def validate(task_files: tuple[Path, ...], overrides: tuple[str, ...]) -> None:
    """Check task files and their data without running anything."""
    for task_file in task_files:
        task = load_task(task_file, overrides)
        data = load_examples(task)
        data_cost_config(task.spec.data_cost, file=str(task.path))
        check_endpoint_keys(task)  # each endpoint's key variable is set (its value is never shown)
        runs = [
            f"{v.strategy} {v.name}"
            for name, cfg in task.strategy_configs.items()
            for v in STRATEGIES[name].variants(cfg)
        ]
        parts = [
            f"{task.kind}",
            f"model {task.model_ref.name} ({task.model_ref.source})",
            f"{len(data.train)} train / {len(data.test)} test",
            f"metric {task.metric}",
        ]
        if data.labels:
            parts.append(f"{len(data.labels)} labels")
        if task.knowledge_path:
            parts.append(f"knowledge {len(read_corpus(task.knowledge_path))} documents")
        click.echo(f"{task_file}: ok — {task.name}: " + ", ".join(parts) + f"; runs: {', '.join(runs)}")
        if verbosity() > 0:
            click.echo(
                f"  data: {task.train_path}, {task.test_path}"
                + (f"; endpoints: {', '.join(task.endpoints)}" if task.endpoints else "")
            )
            for name, config in task.strategy_configs.items():
                click.echo(f"  strategies.{name}: {json.dumps(to_jsonable(config))}")


@main.command(
    epilog=examples(
        "advisor report reports/support-intents --open",
        "advisor report /tmp/quick --quiet",
        "advisor report reports/support-intents --mlflow sqlite:///mlflow.db",
    )
)
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@mlflow_option
@click.option("--open", "open_report", is_flag=True, help="Then serve the report and open it (as advisor view).")
@user_errors
def report(results_dir: Path, mlflow_uri: str | None, open_report: bool) -> None:
    """Re-price, re-recommend and re-render RESULTS_DIR from its run records, running nothing."""
    from advisor.report import republish  # matplotlib: only for the commands that draw

    check_tracking(mlflow_uri)
    analysis, written = republish(results_dir)
    click.echo(f"wrote {results_dir / 'results.json'} and {written}")
    if mlflow_uri:
        click.echo(log_comparison(mlflow_uri, results_dir, analysis).line())
    if open_report:
        view_report(results_dir)


@main.command(
    epilog=examples(
        "advisor schema > docs/task-schema.md",
        "advisor schema --format json > docs/task-schema.json",
        "# then start a task file with: # yaml-language-server: $schema=docs/task-schema.json",
    )
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["markdown", "json"]),
    default="markdown",
    show_default=True,
    help="markdown: the reference (docs/task-schema.md); json: a JSON Schema (draft 2020-12) editors check with.",
)
def schema(fmt: str) -> None:
    """Print every task-file key with its type, default and meaning (Markdown), or the JSON Schema."""
    click.echo(task_json_schema_text() if fmt == "json" else task_schema_markdown(), nl=False)


@main.command(
    epilog=examples(
        "advisor serve smollm2-135m-instruct --port 8000",
        "ADVISOR_SERVE_KEY=secret advisor serve smollm2-135m-instruct --api-key-env ADVISOR_SERVE_KEY",
    )
)
@click.argument("model")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True, help="TCP port to listen on.")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (plain http: keep it on loopback)."
)
@click.option(
    "--api-key-env",
    metavar="VAR",
    default=None,
    help="Name of an environment variable holding the key clients must send (Authorization: Bearer KEY).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for generation and prompts.  [default: all cores]",
)
@click.option("--ctx", type=click.IntRange(min=16), default=2048, show_default=True, help="Context window, in tokens.")
@user_errors
def serve(model: str, port: int, host: str, api_key_env: str | None, threads: int | None, ctx: int) -> None:
    """Serve MODEL (a catalog name, a .gguf file or a folder holding one) with an OpenAI-compatible API
    (llama.cpp's server) until Ctrl-C."""
    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise UserError(
                f"--api-key-env {api_key_env}: the environment variable {api_key_env} is not set or empty; "
                f"export it with the key clients must send, or leave out --api-key-env"
            )

    def ready(base_url: str, name: str) -> None:
        click.echo(f"serving {name} at {base_url} (Ctrl-C stops)")
        click.echo(
            f"clients must send the key in ${api_key_env} (Authorization: Bearer)"
            if api_key
            else "no API key required (--api-key-env VAR requires one)"
        )
        if not is_loopback(host):
            click.echo(
                f"advisor: warning: --host {host}: plain http is unencrypted (keys and prompts travel in clear)",
                err=True,
            )
        sys.stdout.flush()  # a parent reading a pipe sees it now

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: how a server is meant to stop
        serve_model(model, host=host, port=port, api_key=api_key, n_threads=threads, n_ctx=ctx, on_ready=ready)
    click.echo("advisor: stopped serving")
    if threading.active_count() > 1:  # a generation still running: llama.cpp cannot cancel it, Python would wait
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


main.add_command(estimate)
main.add_command(plan)
main.add_command(results)
main.add_command(view)

if __name__ == "__main__":
    main()
