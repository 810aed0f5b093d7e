"""Predicted vs measured peak memory and step time of LoRA and full fine-tuning of the packaged model.

    .venv/bin/python bench/memory_model.py [--steps N]

Fine-tunes smollm2-135m-instruct for a few optimizer steps per configuration - full and LoRA (r=8 on q, k, v, o),
batch 8 at 64 and at 256 tokens, and LoRA with gradient checkpointing - on CUDA when torch sees a GPU, else on the
CPU, with the harness's own loading and training code (harness.training.finetune), each run in a fresh process.
Each run becomes a run record as compare writes one, and is checked the way every compare run is
(advisor.self_check: the estimator's prediction for the run's own settings and hardware). Prints one table:
predicted peak memory and step time, the measured ones, measured / predicted. About 5 minutes on a 2-core CPU.

Measured peak memory is what the self-check compares: on CUDA torch.cuda.max_memory_allocated during training
(weights included); on CPU the growth of the process's resident memory ("rss") over loading the model and training
it. glibc's malloc keeps much of what torch frees resident, so on CPU every configuration runs a second time, with
MALLOC_MMAP_THRESHOLD_ fixed at 128 KiB (every tensor above that gets its own mapping, returned to the system when
freed): that RSS ("rss, mmap") is the memory the tensors need, which is what the model predicts. Step time is the
record's median optimizer step, the first (lazy Adam state, first-touch page faults) left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from advisor.self_check import predict_run, self_checks
from harness import catalog
from harness.record import MemoryKind, RunRecord, SelfCheck
from harness.units import GIB

MODEL = "smollm2-135m-instruct"
ANSWER_TOKENS = 6  # a short label and the end-of-turn tokens, as in the support-intents task
SEED = 0
# (method, batch size, tokens per sequence, gradient checkpointing)
CONFIGS = [
    ("full", 8, 64, False),
    ("lora", 8, 64, False),
    ("full", 8, 256, False),
    ("lora", 8, 256, False),
    ("lora", 8, 256, True),
]
# glibc raises its mmap threshold up to 32 MiB as large blocks are freed, after which activations come from the
# heap and freed ones stay resident; a fixed threshold keeps every tensor above it in its own mapping
RETURN_FREED_MEMORY = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}


def synthetic_items(vocab_size: int, batch: int, seq_len: int, steps: int):
    """``steps`` batches of sequences of exactly ``seq_len`` tokens with the loss on the last ANSWER_TOKENS: no
    padding, so the prediction's inputs (tokens per batch, logit positions) are exact."""
    import torch

    from harness.training import TrainItem

    generator = torch.Generator().manual_seed(SEED)
    items = []
    for _ in range(batch * steps):
        ids = torch.randint(1000, vocab_size, (seq_len,), generator=generator).tolist()
        items.append(TrainItem(input_ids=ids, labels=[-100] * (seq_len - ANSWER_TOKENS) + ids[-ANSWER_TOKENS:]))
    return items


def measure(method: str, batch: int, seq_len: int, checkpointing: bool, steps: int) -> RunRecord:
    """Train one configuration as the harness's lora / full strategy does, and record it as compare would (no
    evaluation); call in a fresh process."""
    import torch

    from harness.meters import PeakMemory, hardware, package_versions
    from harness.models import load_model, load_tokenizer
    from harness.record import MetaInfo, RunInfo, RunStatus
    from harness.runner import seed_everything
    from harness.shapes import ModelShape
    from harness.strategies import STRATEGIES
    from harness.strategies.lora import lora_adapter_config
    from harness.training import finetune

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = catalog.resolve_model(MODEL)
    tokenizer = load_tokenizer(ref)  # outside the measured phase: compare loads it once for all runs
    seed_everything(SEED)
    params: dict[str, Any] = {
        "epochs": 1,
        "batch_size": batch,
        "max_seq_len": seq_len,
        "gradient_checkpointing": checkpointing,
        "min_optimizer_steps": 0,  # exactly `steps` steps at `batch`
    }
    if method == "lora":  # the configuration measured in reports/bench/memory_model.txt (the default is all-linear)
        params["target_modules"] = ["q_proj", "k_proj", "v_proj", "o_proj"]
    cfg = STRATEGIES[method].config_type(**params)  # the harness's defaults otherwise (LoRA: r=8, alpha 16)
    items = synthetic_items(len(tokenizer), batch, seq_len, steps)
    with PeakMemory(device) as memory:
        model = load_model(ref, device)
        shape = ModelShape.from_hf_config(ref.name, model.config.to_dict())
        if method == "lora":
            import peft

            model = peft.get_peft_model(model, lora_adapter_config(cfg))  # as harness/strategies/lora.py does
        info, _ = finetune(model, tokenizer, items, cfg, device=device, seed=SEED, progress=False)
    if info.optimizer_steps != steps:
        raise RuntimeError(f"expected {steps} optimizer steps, the Trainer took {info.optimizer_steps}")
    run_info = RunInfo(
        task="bench-memory-model",
        strategy=method,
        variant=f"b{batch}-s{seq_len}" + ("-ckpt" if checkpointing else ""),
        params=params,
        config_hash="bench",
        seed=SEED,
        limit=None,
        device=device,
        model=ref,
        memory=memory.use(),
        model_shape=shape,
    )
    meta = MetaInfo(packages=package_versions(), hardware=hardware(device))
    return RunRecord(run_info=run_info, status=RunStatus.OK, train_info=info, meta_info=meta)


def run_isolated(config: tuple, steps: int, env: dict | None = None) -> RunRecord:
    """One configuration in its own process: peak RSS cannot be reset within a process, and compare gives
    every run a fresh worker process too."""
    out = subprocess.run(
        [sys.executable, __file__, "--measure", json.dumps([*config, steps])],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{out.stderr[-3000:]}")
    return RunRecord.from_json(json.loads(out.stdout.strip().splitlines()[-1]))


def _seconds(value: float | None, ratio: float | None) -> str:
    return f"{value:>8.3g}{ratio:>7.2f}" if value is not None and ratio is not None else f"{'-':>8}{'-':>7}"


def table(rows: list[tuple[tuple, RunRecord, RunRecord | None]], steps: int, started_load: float) -> str:
    records = [record for _, record, _ in rows]
    # calibrated utilisation: pooled per strategy over these very runs, as a compare calibrates over its own runs,
    # so its ratios show how well FLOPs track time across shapes, not a forecast
    checks = self_checks(records)
    first, check = records[0], checks[0]
    assert first.meta_info and first.train_info and check
    hardware, precision = first.meta_info.hardware, first.train_info.precision  # fp32 on CPU, bf16 on CUDA
    on_cpu = first.train_info.memory.kind is MemoryKind.CPU_RSS
    device = hardware.gpu or f"{hardware.cpu}, {hardware.cpu_count} cores"
    memory_columns = (
        f"{'rss GiB':>8}{'ratio':>7}{'rss,mmap':>10}{'ratio':>7}" if on_cpu else f"{'alloc GiB':>8}{'ratio':>7}{'':>17}"
    )
    lines = [
        (
            f"{MODEL}, {precision}, {hardware.device} ({device}), torch {hardware.torch_threads} threads, "
            f"{dt.date.today()}, load average {started_load:.1f} at start, {os.getloadavg()[0]:.1f} at end"
        ),
        f"peak memory: {check.memory_basis}",
        (
            f"step time: median of steps 2..{steps}; batches of exactly seq tokens, loss on the last "
            f"{ANSWER_TOKENS}; predictions and ratios (measured / predicted) from advisor.self_check"
        ),
        "",
        f"{'':<19}{'predicted':>17}  {'measured / ratio (measured / predicted)':^42}|{'step time, s':^48}",
        (
            f"{'config':<19}{'phase':>8}{'GiB':>9}  {memory_columns}{'':>10}|"
            f"{'pred':>8}{'ratio':>7}{'calib':>8}{'ratio':>7}{'measured':>10}"
        ),
    ]
    by_method: dict[str, SelfCheck] = {}
    for (config, record, mmap), check in zip(rows, checks, strict=True):
        assert check is not None and check.predicted_peak_memory_bytes and record.train_info
        method, batch, seq_len, checkpointing = config
        by_method.setdefault(method, check)
        name = f"{method} b{batch} s{seq_len}" + (" ckpt" if checkpointing else "")
        phase = "fwd/bwd" if check.peak_phase == "forward/backward" else "optim"
        line = (
            f"{name:<19}{phase:>8}{check.predicted_peak_memory_bytes / GIB:>9.2f}  "
            f"{(check.measured_peak_memory_bytes or 0) / GIB:>8.2f}{check.memory_ratio or 0:>7.2f}"
        )
        mmap_check = predict_run(mmap, records) if mmap else None
        if mmap_check and mmap_check.measured_peak_memory_bytes:
            line += f"{mmap_check.measured_peak_memory_bytes / GIB:>10.2f}{mmap_check.memory_ratio or 0:>7.2f}"
        else:
            line += f"{'':>17}"
        line += f"{'':>10}|"
        line += _seconds(check.predicted_step_seconds_default, check.step_ratio_default)
        line += _seconds(check.predicted_step_seconds_calibrated, check.step_ratio_calibrated)
        lines.append(line + f"{record.train_info.step_seconds_median or 0:>10.3g}")
    lines.append("")
    gpu = check.catalog_device
    if gpu:
        peak = catalog.gpus()[gpu]["peak_tflops_fp32" if precision == "fp32" else "peak_tflops_bf16_dense"]
        lines.append(
            f"step time = the run's FLOPs per step (advisor.costs.compute.measured_training) / ({gpu} peak "
            f"{precision} {peak:g} TFLOP/s x utilisation); utilisation:"
        )
        for method, check in by_method.items():
            lines.append(f"  pred,  {method}: {check.utilisation_default:.3f}, catalog default")
            lines.append(
                f"  calib, {method}: {check.utilisation_calibrated:.3f}, calibrated over these "
                f"{check.calibration_runs} {method} runs (train seconds, first step included)"
            )
    else:
        lines.append("step time: this device matches no entry of data/catalog/gpus.yaml, so nothing is predicted")
    for note in dict.fromkeys(note for check in checks if check for note in check.notes):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per configuration, at least 2")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        method, batch, seq_len, checkpointing, steps = json.loads(args.measure)
        print(json.dumps(measure(method, batch, seq_len, checkpointing, steps).to_json()))
        return
    if args.steps < 2:
        parser.error("--steps: at least 2 (the first step is not timed)")

    started_load = os.getloadavg()[0]
    rows = []
    for config in CONFIGS:
        started = time.perf_counter()
        measured = run_isolated(config, args.steps)
        # on CPU, again with freed memory returned to the system; 2 steps reach the peak (Adam states exist)
        mmap = (
            run_isolated(config, 2, RETURN_FREED_MEMORY)
            if measured.train_info and measured.train_info.memory.kind is MemoryKind.CPU_RSS
            else None
        )
        rows.append((config, measured, mmap))
        print(f"measured {config} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(table(rows, args.steps, started_load))


if __name__ == "__main__":
    main()
