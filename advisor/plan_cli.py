"""``advisor plan``: what a compare of a task would take on a GPU cluster - every run, its GPUs, when it runs, its
GPU-hours and dollars - before running anything (``advisor.cluster_plan``; no torch)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from advisor.cli_errors import OneLineUsageErrors, user_errors
from advisor.cli_options import overrides_option
from advisor.cluster_plan import Cluster, ClusterPlan, plan_compare, resolve_gpu
from advisor.wording import usd
from harness.errors import UserError
from harness.task import load_task

BAR_WIDTH = 40  # characters for the longest wall time
EXAMPLES = """\b
Examples:
  advisor plan data/tasks/support-intents.yaml --gpu a10g --gpus 1
  advisor plan docs/examples/llama70b-support.yaml --gpu h100 --gpus 8 --nodes 2
  advisor plan tests/data/tasks/intents-8b.yaml --gpu h100-sxm --gpus 8 --seeds 5 --json
"""


def _names(value: str | None) -> list[str] | None:
    return [name.strip() for name in value.split(",") if name.strip()] if value else None


def _bar(start_h: float, end_h: float, wall_h: float) -> str:
    """The run's span as characters on a line of BAR_WIDTH for the whole wall time (at least one character)."""
    if wall_h <= 0:
        return ""
    first = min(BAR_WIDTH - 1, int(start_h / wall_h * BAR_WIDTH))
    last = max(first + 1, round(end_h / wall_h * BAR_WIDTH))
    return " " * first + "█" * (last - first)


def _hours(h: float) -> str:
    return f"{h:,.2f}" if h >= 0.01 else f"{h:.3f}"


def render_text(plan: ClusterPlan) -> str:
    """The Gantt-style table, the totals, the endpoints' spend and the assumptions."""
    c = plan.cluster
    header = ("arm", "variant", "kind", "seed", "GPUs", "start h", "end h", "GPU-h", "USD")
    rows = [
        (
            r.arm,
            r.variant,
            r.kind.value + (" (served trial)" if r.estimate.serves_trial else ""),
            str(r.seed),
            str(r.gpus) + (f" ({len(r.nodes)} nodes)" if len(r.nodes) > 1 else ""),
            _hours(r.start_h),
            _hours(r.end_h),
            _hours(r.gpu_hours),
            usd(r.usd),
        )
        for r in plan.runs
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    left = 4  # text columns: arm, variant, kind, seed

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.ljust(w) if i < left else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        )

    out = [
        f"{plan.task}: {plan.model} ({plan.model_params / 1e9:.3g}B params) on {c.nodes} node(s) x {c.gpus_per_node} "
        f"{c.gpu} (${plan.usd_per_gpu_hour}/h per GPU)",
        f"splits: {plan.splits['train']} train / {plan.splits['validation']} validation / {plan.splits['test']} test; "
        f"{len(plan.runs)} runs",
        "",
        line(header) + "  |" + "wall time".center(BAR_WIDTH) + "|",
    ]
    out += [
        line(row) + "  |" + _bar(r.start_h, r.end_h, plan.wall_hours).ljust(BAR_WIDTH) + "|"
        for row, r in zip(rows, plan.runs, strict=True)
    ]
    out += [
        "",
        f"wall clock {plan.wall_hours:,.2f} h; {plan.gpu_hours:,.2f} GPU-hours ({plan.busy_share:.0%} of the cluster's "
        f"{c.gpus} GPUs over that time); GPUs {usd(plan.gpu_usd)}"
        + (f" + endpoints {usd(plan.api_usd)}" if plan.endpoints else "")
        + f" = {usd(plan.usd)}",
    ]
    if plan.endpoints:
        out += ["", "Endpoints (per token, at the splits' sizes):"]
        out += [
            f"  {e.name} ({e.strategy}): {e.requests:,} requests, {e.input_tokens:,} input + "
            f"{e.output_tokens:,} output tokens: {usd(e.usd) if e.usd is not None else 'not priced'}"
            for e in plan.endpoints
        ]
    notes = [f"  - {r.strategy} {r.variant}: {n}" for r in plan.runs for n in r.estimate.notes]
    out += ["", "Assumptions:"] + [f"  - {a}" for a in plan.assumptions]
    return "\n".join(out + (["", "Notes:", *dict.fromkeys(notes)] if notes else []))


@click.command(cls=OneLineUsageErrors, epilog=EXAMPLES)
@click.argument("task_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--gpu", required=True, help="The GPU of every node: a name in data/catalog/gpus.yaml (h100 = h100-sxm).")
@click.option("--gpus", type=click.IntRange(min=1), required=True, help="GPUs per node.")
@click.option("--nodes", type=click.IntRange(min=1), default=1, show_default=True, help="Nodes.")
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Seeds per fine-tuning setting, as compare's --seeds (default: the task's evaluation.seeds).",
)
@click.option("--only", default=None, help="Comma-separated strategies to plan, as compare's --only.")
@click.option("--skip", default=None, help="Comma-separated strategies to leave out, as compare's --skip.")
@click.option(
    "--mean-seq-len",
    type=click.IntRange(min=1),
    default=None,
    help="Mean tokens per training example, for training time (default: every example at its max_seq_len, an "
    "upper bound).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
@overrides_option
@user_errors
def plan(
    task_file: Path,
    gpu: str,
    gpus: int,
    nodes: int,
    seeds: int | None,
    only: str | None,
    skip: str | None,
    mean_seq_len: int | None,
    as_json: bool,
    overrides: tuple[str, ...],
) -> None:
    """Plan a compare of TASK_FILE on NODES x GPUS GPUs: every run it would make (trials, finals, learning-curve
    and seed runs, endpoint arms), each run's GPUs and hours from the estimator on the task's model, a schedule
    (largest first, a run's GPUs on one node unless it needs more), GPU-hours and dollars. Runs nothing."""
    if not task_file.is_file():
        raise UserError(f"{task_file}: no such task file")
    task = load_task(task_file, overrides)
    cluster = Cluster(resolve_gpu(gpu), gpus, nodes)
    result = plan_compare(task, cluster, seeds=seeds, only=_names(only), skip=_names(skip), mean_seq_len=mean_seq_len)
    click.echo(json.dumps(result.as_dict()) if as_json else render_text(result))
