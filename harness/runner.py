"""One run: a strategy variant prepared, evaluated and measured, turned into one record, written once.

``execute(job)`` is what runs a job, in a worker process (``harness.worker``) or in the compare's own process
(tests): it runs the variant and writes the record to ``job.record_path``. In a multi-process run only the main
process evaluates and writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import set_seed
from transformers.utils import logging as hf_logging

from harness import distributed, models, prompts
from harness.endpoints import Budget, BudgetExceeded, EndpointClient, EndpointError, RequestCache
from harness.errors import UserError
from harness.evaluate import evaluate, validate
from harness.io import atomic_write_json
from harness.job import Job
from harness.load_test import run_load_test
from harness.meters import PeakMemory, hardware, package_versions
from harness.record import (
    EndpointUse,
    EvalInfo,
    LoadLevel,
    MetaInfo,
    PhaseSeconds,
    Prediction,
    RunInfo,
    RunRecord,
    RunStatus,
    StrategyInfo,
)
from harness.shapes import ModelShape
from harness.spec import Datasets, Example, Task
from harness.strategies import STRATEGIES, Prepared, Variant


@dataclass
class RunContext:
    """What a strategy may use. The tokenizer is loaded once; the model once per run (``load_model``)."""

    task: Task
    data: Datasets
    train: list[Example]  # without the validation split
    test: list[Example]
    device: str
    seed: int
    validation: list[Example] = field(default_factory=list)
    progress: bool = True
    sharding: str = "none"  # several processes (harness.distributed): "ddp" or "fsdp"; "none" = one process
    model_shape: ModelShape | None = None  # set when the base model is loaded; the cost models price runs with it
    api_cache: Path | None = None  # endpoint variants: the request cache's folder
    api_cache_read: bool = True  # False with --fresh: ask again (and store the new answers)
    api_budget_usd: float | None = None  # endpoint variants: what this run may spend
    endpoint_client: EndpointClient | None = None  # set when an endpoint variant is prepared
    model_load_seconds: float | None = None  # every load_model of the run, summed
    save_checkpoint: Path | None = None  # a fine-tuning trial: keep the trained weights here (harness.checkpoints)
    load_checkpoint: Path | None = None  # a tuned arm's final run: the chosen trial's weights, not trained again
    executor: str = "local"  # what placed the run, and on which node (None: this host): for the record
    node: str | None = None
    _tokenizer: Any = field(default=None, repr=False)

    @property
    def instruction(self) -> str:
        return prompts.render_instruction(self.task, self.data)

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = models.load_tokenizer(self.task.model_ref)
        return self._tokenizer

    def load_model(self, quantization: Any = None) -> Any:
        """The base model; ``quantization`` (a transformers BitsAndBytesConfig) loads it quantised (qlora)."""
        # FSDP shards the model from host memory onto the GPUs; a whole copy on each GPU first would
        # defeat it for exactly the models that need it
        start = time.perf_counter()
        model = models.load_model(
            self.task.model_ref,
            self.device,
            place_on="cpu" if self.sharding == "fsdp" else None,
            quantization=quantization,
        )
        self.model_load_seconds = (self.model_load_seconds or 0.0) + time.perf_counter() - start
        self.model_shape = ModelShape.from_hf_config(self.task.model_ref.name, model.config.to_dict())
        return model

    def base_predictor(
        self, variant: Variant, build_messages: Callable[[Example], list[dict[str, str]]], info: StrategyInfo
    ) -> Prepared:
        """The base model as it is, answering ``build_messages``'s chats: loaded here, or - for an endpoint
        variant - the endpoint's client (nothing loads)."""
        endpoint = self.task.endpoint_of(variant.params)
        if endpoint is None:
            return Prepared(model=self.load_model(), tokenizer=self.tokenizer, build_messages=build_messages, info=info)
        self.endpoint_client = EndpointClient(
            endpoint,
            max_tokens=self.task.max_new_tokens,
            cache=RequestCache(self.api_cache, read=self.api_cache_read),
            budget=Budget(self.api_budget_usd),
        )
        return Prepared(
            model=None, tokenizer=None, build_messages=build_messages, endpoint=self.endpoint_client, info=info
        )

    def redact(self, text: str) -> str:
        """``text`` without the endpoint's key (a traceback, an error)."""
        return self.endpoint_client.redact(text) if self.endpoint_client else text


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; quiet the libraries' loading bars and deprecation chatter (kept with
    ``advisor compare --verbose``, which sets ADVISOR_VERBOSE for its workers)."""
    hf_logging.disable_progress_bar()
    if not os.environ.get("ADVISOR_VERBOSE"):
        hf_logging.set_verbosity_error()
        warnings.filterwarnings("ignore", category=FutureWarning)
    set_seed(seed)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def first_line(err: BaseException) -> str:
    return str(err).splitlines()[0] if str(err) else type(err).__name__


def run_variant(ctx: RunContext, variant: Variant, run_info: RunInfo) -> RunRecord | None:
    """Run one variant and return its record; a failure is recorded, not raised (except Ctrl-C).

    In a multi-process run only the main process evaluates and records: the others return None once
    training is done, and raise what fails (``harness.worker`` reports it)."""
    run_info = dataclasses.replace(run_info, started_at=now())
    host = socket.gethostname()
    meta = MetaInfo(
        packages=package_versions(),
        hardware=hardware(ctx.device),
        executor=ctx.executor,
        node=ctx.node or host,
        host=host,
    )
    start = time.perf_counter()
    ctx.model_load_seconds = None  # this run's loads only
    try:
        seed_everything(ctx.seed)
        with PeakMemory(ctx.device) as memory:
            prepared = STRATEGIES[variant.strategy].prepare(ctx, variant)
            if not distributed.is_main_process():
                return None
            evaluating = time.perf_counter()
            validation = (
                validate(prepared, ctx.task, ctx.data, ctx.validation, device=ctx.device, progress=ctx.progress)
                if ctx.validation
                else None
            )
            eval_info: EvalInfo | None = None
            predictions: list[Prediction] = []
            load_test = None
            if run_info.role == "final":
                eval_info, predictions = evaluate(
                    prepared, ctx.task, ctx.data, ctx.test, device=ctx.device, progress=ctx.progress
                )
            eval_seconds = time.perf_counter() - evaluating  # the splits scored, not an endpoint's load test
            if run_info.role == "final":
                load_test = _load_test(ctx, prepared)
        # an endpoint run's memory is the client's, not the model's: none is recorded
        run_info.memory = memory.use() if prepared.endpoint is None else None
        run_info.model_shape = ctx.model_shape
        load = ctx.model_load_seconds
        run_info.phases = PhaseSeconds(
            model_load=round(load, 2) if load is not None else None, evaluation=round(eval_seconds, 2)
        )
        record = RunRecord(
            run_info=run_info,
            status=RunStatus.OK,
            train_info=prepared.train_info,
            eval_info=eval_info,
            validation=validation,
            strategy_info=prepared.info,
            meta_info=meta,
            endpoint=prepared.endpoint.use() if prepared.endpoint else None,
            load_test=load_test,
            predictions=predictions,
        )
    except KeyboardInterrupt:
        raise
    except BudgetExceeded as err:  # stopped before the cap; the answers so far are in the request cache
        record = RunRecord.failed(
            run_info, str(err), meta_info=meta, endpoint=_use(ctx), status=RunStatus.STOPPED_BUDGET
        )
    except EndpointError as err:  # refused key, unknown model, unreachable, timeout: one line, no key in it
        record = RunRecord.failed(run_info, ctx.redact(str(err)), meta_info=meta, endpoint=_use(ctx))
    except Exception as err:  # one failing arm must not sink the comparison: record it
        if not distributed.is_main_process():
            raise  # the worker reports it beside the record
        if isinstance(err, UserError):  # a user's mistake: its one line says it all
            record = RunRecord.failed(run_info, str(err), meta_info=meta)
        elif isinstance(err, (torch.OutOfMemoryError, MemoryError)):
            record = RunRecord.failed(
                run_info, f"out of memory: {type(err).__name__}: {first_line(err)}", meta_info=meta
            )
        else:
            record = RunRecord.failed(
                run_info,
                ctx.redact(f"{type(err).__name__}: {first_line(err)}"),
                traceback=ctx.redact(traceback.format_exc(limit=8)),
                meta_info=meta,
                endpoint=_use(ctx),
            )
    finally:
        if ctx.endpoint_client:
            ctx.endpoint_client.close()
    record.run_info.ended_at = now()
    record.run_info.wall_seconds = round(time.perf_counter() - start, 2)
    return record


def _use(ctx: RunContext) -> EndpointUse | None:
    return ctx.endpoint_client.use() if ctx.endpoint_client else None


def _load_test(ctx: RunContext, prepared: Prepared) -> list[LoadLevel] | None:
    """An endpoint variant's load test, on the run's test prompts (``evaluation.load_test``; off: None)."""
    settings = ctx.task.spec.evaluation.load_test
    if prepared.endpoint is None or settings is None:
        return None
    return run_load_test(prepared.endpoint, [prepared.build_messages(ex) for ex in ctx.test], settings)


def execute(job: Job) -> RunRecord | None:
    """Run ``job`` in this process and write its record (the main process of a multi-process run only)."""
    device = distributed.process_device(job.run_info.device)
    if device.startswith("cuda:"):
        torch.cuda.set_device(device)  # this process's GPU: its memory counters, its NCCL device
    ctx = RunContext(
        task=job.task,
        data=job.data,
        train=job.train,
        test=job.test,
        device=device,
        seed=job.run_info.seed,
        validation=job.validation,
        progress=job.progress and distributed.is_main_process(),
        sharding=job.run_info.sharding,
        api_cache=job.api_cache,
        api_cache_read=job.api_cache_read,
        api_budget_usd=job.api_budget_usd,
        save_checkpoint=job.save_checkpoint,
        load_checkpoint=job.load_checkpoint,
        executor=job.executor,
        node=job.node,
    )
    record = run_variant(ctx, job.variant, job.run_info)
    if record is not None:
        atomic_write_json(job.record_path, record.to_json())
    return record
