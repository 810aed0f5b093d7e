"""The ``advisor`` command line. Heavy work is imported lazily so ``validate``/``report`` start fast."""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path

import click

from harness.errors import UserError


def _terminate(signum, frame):
    """SIGTERM (a scheduler or `kill`) stops like Ctrl-C: finished runs kept, worker stopped, one line."""
    raise KeyboardInterrupt


def user_errors(fn):
    """A user's mistake is one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        signal.signal(signal.SIGTERM, _terminate)
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            click.echo(f"advisor: error: {err}", err=True)
            sys.exit(2)
        except KeyboardInterrupt as err:
            kept = f"{err}; " if str(err) else "finished runs are kept in the output folder; "
            click.echo(f"advisor: interrupted: {kept}run the same command again to resume", err=True)
            sys.exit(130)

    return wrapper


class _Commands(click.Group):
    """Every subcommand reports a bad option value in one line (exit 2), as ``advisor estimate`` does."""

    @property
    def command_class(self):
        from advisor.estimate_cli import OneLineUsageErrors

        return OneLineUsageErrors


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="advisor")
def main() -> None:
    """Compare prompting, RAG, LoRA and full fine-tuning on one task, measured; report which to use."""


@main.command()
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: reports/<task name>/).")
@click.option("--device", default="auto", show_default=True, help="auto | cpu | cuda (or cuda:N).")
@click.option("--only", default=None, help="Comma-separated strategies to run, e.g. prompt,rag.")
@click.option("--skip", default=None, help="Comma-separated strategies to leave out, e.g. qlora on a CPU machine.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Quick look: at most N test and 5*N training examples; learning-curve runs are skipped.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the task's seed.")
@click.option("--fresh", is_flag=True, help="Recompute runs even when a finished record matches.")
@click.option("--no-progress", is_flag=True, help="Hide progress bars.")
@click.option("--num-processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes per fine-tuning run (one GPU each), started by accelerate launch.")
@click.option("--sharding", type=click.Choice(["auto", "ddp", "fsdp"]), default="auto", show_default=True,
              help="With several processes: data parallel, FSDP (full fine-tuning on GPUs), or auto = FSDP "
                   "only when the memory model says one GPU cannot hold a replica.")
@click.option("--accelerate-config", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="An `accelerate config` file for the launcher (multi-node, custom FSDP/DeepSpeed plan).")
@user_errors
def compare(task_file: Path, out_dir: Path | None, device: str, only: str | None, skip: str | None,
            limit: int | None, seed: int | None, fresh: bool, no_progress: bool, num_processes: int, sharding: str,
            accelerate_config: Path | None) -> None:
    """Run TASK_FILE four ways, measure every run, write results.json and report.html."""
    from harness.compare import CompareOptions, run_compare
    from harness.task import load_task

    task = load_task(task_file)
    out_dir = out_dir or Path("reports") / task.name
    from advisor.preflight import memory_preflight, sharding_planner

    options = CompareOptions(out_dir=out_dir, device=device, only=_names(only), skip=_names(skip), limit=limit,
                             seed=seed, fresh=fresh, progress=not no_progress, preflight=memory_preflight(task),
                             num_processes=num_processes, sharding=sharding, accelerate_config=accelerate_config,
                             plan_sharding=sharding_planner(task))
    run_compare(task_file, options, log=lambda line: click.echo(line, err=True))
    from advisor.pricing import price_results_dir
    from advisor.recommend import store_recommendation
    from advisor.report import write_report

    results = store_recommendation(out_dir, price_results_dir(out_dir, task.spec.data_cost))
    report = write_report(out_dir)
    click.echo(results["recommendation"]["verdict"])
    click.echo(f"wrote {out_dir / 'results.json'} and {report}")


def _names(option: str | None) -> list[str] | None:
    return [s.strip() for s in option.split(",") if s.strip()] if option else None


@main.command()
@click.argument("task_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@user_errors
def validate(task_files: tuple[Path, ...]) -> None:
    """Check task files and their data without running anything."""
    from harness.strategies import STRATEGIES
    from harness.task import load_examples, load_task

    for task_file in task_files:
        task = load_task(task_file)
        data = load_examples(task)
        if task.knowledge_path:
            from harness.corpus import read_corpus

            n_docs = len(read_corpus(task.knowledge_path))
        runs = [f"{v.strategy} {v.name}" for name, cfg in task.strategy_configs.items()
                for v in STRATEGIES[name].variants(cfg)]
        parts = [f"{task.kind}", f"model {task.model_ref.name} ({task.model_ref.source})",
                 f"{len(data.train)} train / {len(data.test)} test", f"metric {task.metric}"]
        if data.labels:
            parts.append(f"{len(data.labels)} labels")
        if task.knowledge_path:
            parts.append(f"knowledge {n_docs} documents")
        click.echo(f"{task_file}: ok — {task.name}: " + ", ".join(parts) + f"; runs: {', '.join(runs)}")


@main.command()
@click.argument("results_dir", type=click.Path(file_okay=False, path_type=Path))
@user_errors
def report(results_dir: Path) -> None:
    """Re-render report.html (and the recommendation in results.json) from RESULTS_DIR without running anything."""
    from advisor.recommend import store_recommendation
    from advisor.report import load_results, write_report

    store_recommendation(results_dir, load_results(results_dir))
    click.echo(f"wrote {write_report(results_dir)}")


@main.command()
def schema() -> None:
    """Print every task-file key with its type, default and meaning (Markdown)."""
    from advisor.schema_doc import task_schema_markdown

    click.echo(task_schema_markdown(), nl=False)


from advisor.estimate_cli import estimate  # noqa: E402  (registered here; it imports nothing heavy)
main.add_command(estimate)

if __name__ == "__main__":
    main()
