"""The ``advisor`` command line. Nothing here loads torch: ``compare`` reaches it through the harness when it runs,
so ``estimate``, ``validate``, ``report`` and ``schema`` start fast. The report (matplotlib) loads only for the
commands that write one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from advisor.cli_errors import Commands, user_errors
from advisor.cli_options import dataclass_options
from advisor.costs.data_cost import data_cost_config
from advisor.estimate_cli import estimate
from advisor.preflight import memory_preflight, sharding_planner
from advisor.schema_doc import task_schema_markdown
from harness.compare import CompareOptions, run_compare
from harness.corpus import read_corpus
from harness.strategies import STRATEGIES
from harness.task import load_examples, load_task


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="advisor")
def main() -> None:
    """Compare prompting, RAG, LoRA and full fine-tuning on one task, measured; report which to use."""


@main.command()
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@dataclass_options(CompareOptions)
@user_errors
def compare(task_file: Path, **settings: Any) -> None:
    """Run TASK_FILE every way it lists, measure every run, write results.json and report.html."""
    from advisor.report import publish  # matplotlib: only for the commands that draw

    task = load_task(task_file)  # parsed once, here
    data_cost = data_cost_config(task.spec.data_cost, file=str(task.path))  # checked before anything runs
    options = CompareOptions(**settings)
    out_dir = options.folder(task)
    comparison = run_compare(
        task,
        options,
        preflight=memory_preflight(task),
        plan_sharding=sharding_planner(task),
        log=lambda line: click.echo(line, err=True),
    )
    analysis, report = publish(out_dir, comparison, data_cost)
    click.echo(analysis.recommendation.verdict)
    click.echo(f"wrote {out_dir / 'results.json'} and {report}")


@main.command()
@click.argument("task_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@user_errors
def validate(task_files: tuple[Path, ...]) -> None:
    """Check task files and their data without running anything."""
    for task_file in task_files:
        task = load_task(task_file)
        data = load_examples(task)
        data_cost_config(task.spec.data_cost, file=str(task.path))
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


@main.command()
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@user_errors
def report(results_dir: Path) -> None:
    """Re-price, re-recommend and re-render RESULTS_DIR from its run records, running nothing."""
    from advisor.report import republish  # matplotlib: only for the commands that draw

    _, written = republish(results_dir)
    click.echo(f"wrote {results_dir / 'results.json'} and {written}")


@main.command()
def schema() -> None:
    """Print every task-file key with its type, default and meaning (Markdown)."""
    click.echo(task_schema_markdown(), nl=False)


main.add_command(estimate)

if __name__ == "__main__":
    main()
