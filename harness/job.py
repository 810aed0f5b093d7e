"""One run to make, as ``harness.compare`` hands it to the process that runs it (``harness.worker``, or itself).

The job carries the parsed task and its checked datasets, so a worker neither parses the task file again nor
re-reads the data: what the parent checked is what runs. It travels as a pickle in a private temporary file
(mode 0600) that only the worker of this compare reads.
"""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from harness.record import RunInfo
from harness.spec import Datasets, Example, Task
from harness.strategies import Variant


@dataclass
class Job:
    task: Task
    data: Datasets
    train: list[Example]  # after --limit, without the validation split
    test: list[Example]
    variant: Variant
    run_info: RunInfo  # what the record will say ran (config hash included)
    record_path: Path  # where the record is written, once, by the process that ran it
    progress: bool = True
    api_cache: Path | None = None  # endpoint variants: the request cache's folder
    api_cache_read: bool = True  # False with --fresh
    api_budget_usd: float | None = None  # endpoint variants: what this run may spend (None: no cap)
    validation: list[Example] = field(default_factory=list)  # scored when not empty (a trial; an untuned arm's run)
    save_checkpoint: Path | None = None  # a fine-tuning trial: where its trained weights are kept
    load_checkpoint: Path | None = None  # a tuned arm's final run: the chosen trial's weights
    executor: str = "local"  # what placed the run ("local", "ray"): its record says so (MetaInfo)
    node: str | None = None  # the Ray node it was placed on; None: this host

    def save(self) -> Path:
        """A temporary file holding this job; the caller removes it."""
        with tempfile.NamedTemporaryFile("wb", suffix=".job", delete=False) as f:
            pickle.dump(self, f)
        return Path(f.name)

    @staticmethod
    def load(path: str | Path) -> Job:
        with open(path, "rb") as f:
            job: Job = pickle.load(f)
        return job
