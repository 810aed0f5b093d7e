"""How ``advisor compare`` runs a task (``CompareOptions``): each field is one command-line option, and its doc is
the option's help."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness import distributed
from harness.schema import doc
from harness.spec import Task

EXECUTORS = ("local", "ray")
DEFAULT_OUT_ROOT = Path("runs")  # git-ignored; reports/ keeps the committed examples


def option(text: str, **checks: object) -> dict[str, object]:
    """Field metadata of a command-line setting: ``harness.schema.doc`` plus how the option is spelt."""
    return {**doc(text), **checks}


@dataclass
class CompareOptions:
    """How ``advisor compare`` runs a task: each field is one command-line option (its doc is the help)."""

    out_dir: Path | None = field(
        default=None,
        metadata=option(
            "Output folder (default: runs/<task name>/, git-ignored; the committed examples in reports/ were made "
            "with --out reports/<task name>).",
            flag="--out",
            path="dir",
        ),
    )
    device: str = field(default="auto", metadata=option("auto | cpu | cuda (or cuda:N)."))
    only: list[str] | None = field(default=None, metadata=option("Comma-separated strategies to run, e.g. prompt,rag."))
    skip: list[str] | None = field(
        default=None, metadata=option("Comma-separated strategies to leave out, e.g. qlora on a CPU machine.")
    )
    limit: int | None = field(
        default=None,
        metadata=option(
            "Quick look: at most N test and 5*N training examples; one setting per arm (no tuning trials), one seed, "
            "no learning-curve runs.",
            min=1,
        ),
    )
    seed: int | None = field(default=None, metadata=option("Override the task's seed.", min=0))
    seeds: int | None = field(
        default=None,
        metadata=option(
            "Run each fine-tuning arm's chosen setting with N seeds (default: the task's evaluation.seeds); the "
            "rows give the mean, the standard deviation and each seed's score.",
            min=1,
        ),
    )
    fresh: bool = field(default=False, metadata=option("Recompute runs even when a finished record matches."))
    progress: bool = field(default=True, metadata=option("Show progress bars.", flag="--progress/--no-progress"))
    num_processes: int = field(
        default=1, metadata=option("Processes per fine-tuning run (one GPU each), started by accelerate launch.", min=1)
    )
    sharding: str = field(
        default="auto",
        metadata=option(
            "With several processes: data parallel, FSDP (full fine-tuning on GPUs), or auto = FSDP only when the "
            "memory model says one GPU cannot hold a replica.",
            choices=distributed.SHARDING_CHOICES,
        ),
    )
    max_api_usd: float | None = field(
        default=None,
        metadata=option(
            "Spending cap for every endpoint request of this compare together, USD (each endpoint's own cap: "
            "endpoints.NAME.max_usd); a run stops before it would pass it.",
            min=0,
        ),
    )
    accelerate_config: Path | None = field(
        default=None,
        metadata=option(
            "An `accelerate config` file for the launcher (multi-node, custom FSDP/DeepSpeed plan).", path="file"
        ),
    )

    executor: str = field(
        default="local",
        metadata=option(
            "Where the runs go: local = one after another in worker processes on this machine; ray = Ray tasks on a "
            "Ray cluster, in parallel as its CPUs and GPUs allow (pip install -e '.[ray]').",
            choices=EXECUTORS,
        ),
    )
    ray_address: str | None = field(
        default=None,
        metadata=option(
            "With --executor ray: the cluster to join (auto = the one `ray start` made on this machine, or "
            "ray://HOST:PORT); without it a local Ray instance is started and shut down."
        ),
    )
    cpus_per_run: int = field(
        default=1,
        metadata=option("With --executor ray: CPUs each run's process asks Ray for (and the threads it uses).", min=1),
    )

    def folder(self, task: Task) -> Path:
        """Where the records, results.json and the report go: ``--out``, else ``runs/<task name>/`` (git-ignored, so
        a first compare never writes over the committed examples in ``reports/``)."""
        return Path(self.out_dir or DEFAULT_OUT_ROOT / task.name)
