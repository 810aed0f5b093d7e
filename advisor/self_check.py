"""A self-check after every measured run: the estimator's prediction for the run's own settings and hardware, beside
what the run measured (``harness.record.SelfCheck``; ratios measured / predicted).

Training runs (``predict_run``):
  peak memory   ``advisor.costs.training_memory`` with the run's settings as the harness trained them: its strategy's
                memory method and config (batch size, gradient accumulation, checkpointing, LoRA rank, targets and
                dropout, the 4-bit format), the precision it trained in, the widest padded micro-batch it recorded
                (``TrainInfo.padded_len_max``; else every batch at ``max_seq_len``) and the logit window its
                answer-window loss computed (``logits_to_keep``; ``TrainInfo.logit_window_max``), fused AdamW (the
                Trainer's default from torch 2.8); under FSDP one device's share (``sharded_peak``).
                Measured: on CUDA the training's ``torch.cuda.max_memory_allocated`` (weights included); on a CPU the
                growth of the run's resident memory over loading, training and evaluation, which reads high: glibc
                keeps memory torch frees resident (bench/memory_model.py measures both ways).
  time          the run's own FLOPs (``advisor.costs.compute.measured_training``: its tokens, its LM-head positions)
                at the catalog's default utilisation for its strategy, and at the utilisation calibrated from this
                compare's runs of the same utilisation key on the same hardware (``calibrate_utilisation``). A key
                with one run calibrates on that run alone, so its calibrated time is exact by construction.
  tokens        the estimator's token count (examples x max_seq_len x epochs, as ``advisor estimate`` takes them)
                against the tokens trained: how much taking every example at max_seq_len overstates the work.
Prompt and RAG runs (``INFERENCE``): the memory of serving the model (``advisor.costs.memory.inference_memory``) at
the evaluation's batch size, mean prompt and longest output, against the run's memory; no time prediction.

``annotate`` adds the checks to a compare's records and writes them back; ``advisor.report.publish`` calls it, so
every compare, resumed or not, and every ``advisor report`` leaves its records checked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from advisor.costs.compute import (
    SECONDS_PER_HOUR,
    calibrate_utilisation,
    catalog_gpu_for,
    gpu_hours,
    measured_training,
    training_utilisation,
)
from advisor.costs.inference_memory import inference_memory
from advisor.costs.memory import training_memory
from advisor.costs.settings import split_settings
from advisor.costs.training import sharded_peak
from harness import catalog
from harness.errors import UserError
from harness.record import CheckedPhase, Hardware, MemoryKind, RunRecord, SelfCheck
from harness.runstore import Comparison, save_record
from harness.strategies import STRATEGIES, TrainingConfig, traits
from harness.strategies.base import training_config
from harness.units import MIB

CUDA_TRAINING = "cuda max allocated during training, weights included (the process that used the most)"
CPU_RUN_GROWTH = (
    "cpu rss: growth of the run's process over loading, training and evaluation, weights included; glibc keeps "
    "freed memory resident, so it reads above what the tensors need"
)
CUDA_RUN = "cuda max allocated during the run (loading and evaluation), weights included"
CPU_RUN = "cpu rss: growth of the run's process over loading and evaluation, weights included"
FUSED_ADAMW_FROM_TORCH = (2, 8)  # transformers' Trainer defaults to adamw_torch_fused from torch 2.8


def ratio(measured: float | None, predicted: float | None) -> float | None:
    """measured / predicted, or None when either is missing or the prediction is zero."""
    if measured is None or not predicted:
        return None
    return measured / predicted


def _fused_adamw(record: RunRecord) -> bool:
    """Whether the Trainer's default optimizer was fused AdamW (torch >= 2.8); True when the version is unknown."""
    version = (record.meta_info.packages.get("torch") if record.meta_info else None) or ""
    try:
        major, minor = (int(part) for part in version.split("+")[0].split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= FUSED_ADAMW_FROM_TORCH


def _hardware(record: RunRecord) -> Hardware:
    return record.meta_info.hardware if record.meta_info else Hardware(device=record.run_info.device)


def predict_run(record: RunRecord, among: Sequence[RunRecord] = ()) -> SelfCheck | None:
    """The self-check of one finished run; ``among``: the compare's runs, for the calibrated utilisation (the run
    itself when empty). None for a failed run, an endpoint run, or a strategy this checkout does not know."""
    if not record.ok or record.endpoint is not None or record.run_info.strategy not in STRATEGIES:
        return None
    if record.train_info is not None:
        return _training_check(record, among or [record])
    return _inference_check(record)


def self_checks(records: Sequence[RunRecord]) -> list[SelfCheck | None]:
    """``predict_run`` for each of a compare's runs, calibrated over all of them."""
    return [predict_run(record, records) for record in records]


def annotate(out_dir: Path, comparison: Comparison) -> None:
    """Give each of ``comparison``'s records its self-check, and write back the records whose check changed."""
    for run, check in zip(comparison.runs, self_checks([run.record for run in comparison.runs]), strict=True):
        if run.record.self_check != check:
            run.record.self_check = check
            save_record(out_dir, run)


def _training_check(record: RunRecord, among: Sequence[RunRecord]) -> SelfCheck | None:
    info, train = record.run_info, record.train_info
    assert train is not None
    strategy = traits(info.strategy)
    config_type = STRATEGIES[info.strategy].config_type
    if strategy.memory_method is None or not issubclass(config_type, TrainingConfig):
        return None
    config, _ = training_config(config_type, dict(info.params))
    settings = config.memory_settings()
    if train.batch_size:  # the batch it trained with: the step minimum may have lowered the config's
        settings["batch_size"] = train.batch_size
    notes: list[str] = []
    if strategy.serving_method == "rag":  # a fine-tuned arm served with retrieval builds its index before training
        notes.append("the retriever's embedder and index are in the measured memory, not in the prediction")
    if train.padded_len_max:
        settings["seq_len"] = train.padded_len_max
    else:
        notes.append(f"the longest batch was not recorded: memory taken at max_seq_len ({config.max_seq_len})")
    rows = train.examples * train.epochs
    if train.logit_window_max:
        settings["loss_tokens_per_sequence"] = train.logit_window_max
    elif train.lm_head_positions and rows:
        settings["loss_tokens_per_sequence"] = math.ceil(train.lm_head_positions / rows)
        notes.append("the logit window was not recorded: taken as its mean over the rows (lm_head_positions)")
    cuda = train.memory.kind is MemoryKind.CUDA_MAX_ALLOCATED
    measured_bytes = train.memory.peak_mib * MIB if cuda else info.memory.growth_mib * MIB if info.memory else None
    check = SelfCheck(
        phase=CheckedPhase.TRAINING,
        memory_basis=CUDA_TRAINING if cuda else CPU_RUN_GROWTH,
        measured_peak_memory_bytes=measured_bytes,
        precision=train.precision,
        measured_train_seconds=train.train_seconds,
        measured_step_seconds=train.step_seconds_median,
        predicted_tokens=train.examples * config.max_seq_len * train.epochs,
        measured_tokens=train.tokens_trained,
        notes=notes,
    )
    check.tokens_ratio = ratio(check.measured_tokens, check.predicted_tokens)
    if info.model_shape is None:
        notes.append("the record has no model shape: no memory prediction")
    else:
        try:
            kwargs, recipe = split_settings(
                {**settings, "optimizer": "adamw-fused" if _fused_adamw(record) else "adamw"}
            )
            memory = training_memory(
                info.model_shape, strategy.memory_method, precision=train.precision, settings=recipe, **kwargs
            )
        except UserError as err:  # settings the estimator refuses (a rank it calls not low-rank, say)
            notes.append(f"no memory prediction: {err}")
        else:
            fsdp = train.sharding == "fsdp" and train.num_processes > 1
            check.predicted_peak_memory_bytes = sharded_peak(memory, train.num_processes) if fsdp else memory.peak
            check.peak_phase = memory.peak_phase
            check.memory_ratio = ratio(measured_bytes, check.predicted_peak_memory_bytes)
            if fsdp:
                notes.append(f"one device's share with {train.num_processes}-way FSDP")
    _add_times(check, record, among, strategy.utilisation_key)
    return check


def _add_times(check: SelfCheck, record: RunRecord, among: Sequence[RunRecord], key: str | None) -> None:
    """Train and step time at the default and at the calibrated utilisation (the run's own FLOPs)."""
    measured = measured_training(record)
    if measured is None or key is None:
        return
    if measured.gpu is None:
        check.notes.append("this hardware matches no data/catalog/gpus.yaml entry: no time prediction")
        return
    check.catalog_device = measured.gpu
    device = catalog.gpus()[measured.gpu]
    steps = record.train_info.optimizer_steps if record.train_info else 0

    def seconds(utilisation: float) -> float:
        # device-hours over the devices that trained at once: wall time
        return gpu_hours(measured.flops, device, measured.precision, utilisation) * SECONDS_PER_HOUR / measured.devices

    check.utilisation_default = training_utilisation(key, measured.tokens_per_step_per_gpu).value
    check.predicted_train_seconds_default = seconds(check.utilisation_default)
    calibrated = calibrate_utilisation(among, measured.gpu).get(key)
    if calibrated is not None:
        check.utilisation_calibrated = calibrated.value
        check.predicted_train_seconds_calibrated = seconds(calibrated.value)
        check.calibration_runs = sum(
            1 for run in map(measured_training, among) if run and run.gpu == measured.gpu and run.utilisation_key == key
        )
        if check.calibration_runs == 1:
            check.notes.append("calibrated on this run alone: its calibrated time matches by construction")
    if device.get("kind") == "cpu":
        check.notes.append("the default utilisation is a GPU figure (data/catalog/utilisation.yaml)")
    check.time_ratio_default = ratio(check.measured_train_seconds, check.predicted_train_seconds_default)
    check.time_ratio_calibrated = ratio(check.measured_train_seconds, check.predicted_train_seconds_calibrated)
    if steps:
        check.predicted_step_seconds_default = check.predicted_train_seconds_default / steps
        if check.predicted_train_seconds_calibrated is not None:
            check.predicted_step_seconds_calibrated = check.predicted_train_seconds_calibrated / steps
        check.step_ratio_default = ratio(check.measured_step_seconds, check.predicted_step_seconds_default)
        check.step_ratio_calibrated = ratio(check.measured_step_seconds, check.predicted_step_seconds_calibrated)


def _inference_check(record: RunRecord) -> SelfCheck | None:
    """A prompt or RAG run: the model serving the evaluation's batches, against the run's memory."""
    info, ev = record.run_info, record.eval_info
    if ev is None or info.memory is None or info.model_shape is None:
        return None
    hardware = _hardware(record)
    cuda = info.memory.kind is MemoryKind.CUDA_MAX_ALLOCATED
    precision = "bf16" if hardware.on_cuda and hardware.bf16 else "fp32"  # harness.models.torch_dtype
    memory = inference_memory(
        info.model_shape,
        batch_size=ev.eval_batch_size,
        prompt_tokens=max(1, round(ev.prompt_tokens_mean)),
        output_tokens=ev.max_new_tokens,
        precision=precision,
    )
    measured = (info.memory.peak_mib if cuda else info.memory.growth_mib) * MIB
    notes = ["batches taken at the mean prompt; batched generation pads to each batch's longest"]
    if traits(info.strategy).serving_method == "rag":
        notes.append("the retriever's embedder and index are in the measured memory, not in the prediction")
    return SelfCheck(
        phase=CheckedPhase.INFERENCE,
        memory_basis=CUDA_RUN if cuda else CPU_RUN,
        predicted_peak_memory_bytes=memory.total,
        measured_peak_memory_bytes=measured,
        memory_ratio=ratio(measured, memory.total),
        precision=precision,
        catalog_device=catalog_gpu_for(hardware),
        notes=notes,
    )
