"""One run: a strategy variant prepared, evaluated and measured, turned into one JSON record."""

from __future__ import annotations

import datetime as dt
import random
import time
import traceback
from dataclasses import dataclass, field

from harness import prompts
from harness.errors import UserError
from harness.meters import PeakMemory, hardware, package_versions
from harness.strategies import STRATEGIES, Variant
from harness.task import Datasets, Example, Task

RECORD_SCHEMA = 1


@dataclass
class RunContext:
    """What a strategy may use. The tokenizer is loaded once; the model once per run (``load_model``)."""

    task: Task
    data: Datasets
    train: list[Example]
    test: list[Example]
    device: str
    seed: int
    progress: bool = True
    sharding: str = "none"  # several processes (harness.distributed): "ddp" or "fsdp"; "none" = one process
    model_shape: dict | None = None  # set when the base model is loaded; the cost models price runs with it
    _tokenizer: object = field(default=None, repr=False)

    @property
    def instruction(self) -> str:
        return prompts.render_instruction(self.task, self.data)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from harness.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.task.model_ref)
        return self._tokenizer

    def load_model(self, quantization=None):
        """The base model; ``quantization`` (a transformers BitsAndBytesConfig) loads it quantised (qlora)."""
        from harness.models import load_model, model_shape

        # FSDP shards the model from host memory onto the GPUs; a whole copy on each GPU first would
        # defeat it for exactly the models that need it
        model = load_model(self.task.model_ref, self.device, place_on="cpu" if self.sharding == "fsdp" else None,
                           quantization=quantization)
        self.model_shape = model_shape(model, self.task.model_ref.name)
        return model


def limit_examples(data: Datasets, limit: int | None, seed: int) -> tuple[list[Example], list[Example]]:
    """``--limit N``: at most N test and 5·N train examples, a seeded random subset of each."""
    if not limit:
        return list(data.train), list(data.test)
    rng = random.Random(seed)
    train = rng.sample(data.train, min(5 * limit, len(data.train)))
    test = rng.sample(data.test, min(limit, len(data.test)))
    return train, test


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; quiet the libraries' loading bars and deprecation chatter."""
    import warnings

    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    set_seed(seed)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def run_variant(ctx: RunContext, variant: Variant, run_info: dict) -> dict | None:
    """Run one variant and return its record; a failure is recorded, not raised (except Ctrl-C).

    In a multi-process run only the main process evaluates and records: the others return None once
    training is done, and raise what fails (``harness.worker`` reports it)."""
    from harness import distributed

    record = {"schema": RECORD_SCHEMA, "run_info": {**run_info, "started_at": now()},
              "train_info": None, "eval_info": None, "strategy_info": None,
              "meta_info": {"packages": package_versions(), "hardware": hardware(ctx.device)},
              "status": "running", "error": None, "predictions": []}
    start = time.perf_counter()
    try:
        seed_everything(ctx.seed)
        with PeakMemory(ctx.device) as memory:
            prepared = STRATEGIES[variant.strategy].prepare(ctx, variant)
            if not distributed.is_main_process():
                return None
            from harness.evaluate import evaluate

            eval_info, predictions = evaluate(prepared, ctx.task, ctx.data, ctx.test, device=ctx.device,
                                              progress=ctx.progress)
        record.update(train_info=prepared.train_info, eval_info=eval_info, strategy_info=prepared.info,
                      predictions=predictions, status="ok")
        record["run_info"]["memory"] = memory.as_dict()
        record["run_info"]["model_shape"] = ctx.model_shape
    except KeyboardInterrupt:
        raise
    except Exception as err:  # one failing arm must not sink the comparison: record it
        if not distributed.is_main_process():
            raise  # the worker reports it beside the record
        if isinstance(err, UserError):  # a user's mistake: its one line says it all
            record.update(status="failed", error=str(err))
        else:
            message = str(err).splitlines()[0] if str(err) else ""
            if "out of memory" in message.lower() or isinstance(err, MemoryError):
                message = f"out of memory: {message or type(err).__name__}"
            record.update(status="failed", error=f"{type(err).__name__}: {message}",
                          traceback=traceback.format_exc(limit=8))
    record["run_info"]["ended_at"] = now()
    record["run_info"]["wall_seconds"] = round(time.perf_counter() - start, 2)
    return record
