"""Predicted vs measured peak memory and step time of LoRA and full fine-tuning of the packaged model.

    .venv/bin/python bench/memory_model.py [--steps N]

Fine-tunes smollm2-135m-instruct for a few optimizer steps per configuration - full and LoRA (r=8 on q, k, v, o),
batch 8 at 64 and at 256 tokens, and LoRA with gradient checkpointing - on CUDA when torch sees a GPU, else on the
CPU, with the harness's own loading and training code (harness.training.finetune), each run in a fresh process.
Prints one table: advisor.costs's predicted peak memory and step time, the measured ones, predicted / measured.
About 5 minutes on a 2-core CPU.

Measured peak memory is what ``advisor compare`` records (harness.meters.PeakMemory), taken over loading the model
and training it, so it includes the weights: on CUDA torch.cuda.max_memory_allocated; on CPU the growth of the
process's resident memory ("rss"). glibc's malloc keeps much of what torch frees resident, so on CPU every
configuration runs a second time, with MALLOC_MMAP_THRESHOLD_ fixed at 128 KiB (every tensor above that gets its
own mapping, returned to the system when freed): that RSS ("rss, mmap") is the memory the tensors need, which
is what the model predicts. Step time is the mean time between the ends of consecutive optimizer steps, so the
first step (lazy Adam state, first-touch page faults) is left out.
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

from advisor.costs import training_flops, training_memory
from advisor.costs.compute import MeasuredTraining, catalog_gpu_for, peak_flops, pool_utilisation, training_utilisation
from advisor.costs.shapes import ModelShape, lora_trainable_params, param_counts
from harness import catalog
from harness.record import Hardware, MemoryKind
from harness.strategies.lora import LoraConfig, lora_adapter_config
from harness.typedjson import from_jsonable, to_jsonable
from harness.units import GIB, MIB

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


def measure(method: str, batch: int, seq_len: int, checkpointing: bool, steps: int) -> dict:
    """Train one configuration as the harness's lora / full strategy does; call in a fresh process."""
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from harness.meters import PeakMemory, hardware, synchronize
    from harness.models import load_model, load_tokenizer
    from harness.runner import seed_everything
    from harness.strategies.full import FullConfig
    from harness.training import finetune

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = catalog.resolve_model(MODEL)
    tokenizer = load_tokenizer(ref)  # outside the measured phase: compare loads it once for all runs
    seed_everything(SEED)
    settings: dict[str, Any] = {
        "epochs": 1,
        "batch_size": batch,
        "max_seq_len": seq_len,
        "gradient_checkpointing": checkpointing,
    }
    lora = LoraConfig(**settings)
    cfg = lora if method == "lora" else FullConfig(**settings)
    items = synthetic_items(len(tokenizer), batch, seq_len, steps)

    step_ends = []

    def on_step_end(optimizer, args, kwargs):
        synchronize(device)
        step_ends.append(time.perf_counter())

    hook = register_optimizer_step_post_hook(on_step_end)  # fires for every optimizer, the Trainer's included
    with PeakMemory(device) as memory:
        model = load_model(ref, device)
        if method == "lora":
            import peft

            model = peft.get_peft_model(model, lora_adapter_config(lora))  # as harness/strategies/lora.py does
        info, _ = finetune(model, tokenizer, items, cfg, device=device, seed=SEED, progress=False)
    hook.remove()
    if len(step_ends) != steps:
        raise RuntimeError(f"expected {steps} optimizer steps, timed {len(step_ends)}")
    return {
        "peak_bytes": memory.use().growth_mib * MIB,
        "memory_kind": memory.use().kind.value,
        "step_seconds": (step_ends[-1] - step_ends[0]) / (steps - 1),
        "total_params": info.total_params,
        "trainable_params": info.trainable_params,
        "precision": info.precision,
        "hardware": to_jsonable(hardware(device)),
    }


def run_isolated(config: tuple, steps: int, env: dict | None = None) -> dict:
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
    return json.loads(out.stdout.strip().splitlines()[-1])


def predict(shape: ModelShape, method: str, batch: int, seq_len: int, checkpointing: bool, precision: str):
    """advisor.costs's peak memory and the FLOPs of one optimizer step, with the harness's settings."""
    lora = LoraConfig()  # the harness's defaults, which the measured runs use
    memory = training_memory(
        shape,
        method,
        batch_size=batch,
        seq_len=seq_len,
        precision=precision,
        rank=lora.rank,
        lora_targets=lora.target_modules,
        lora_dropout=lora.dropout,
        gradient_checkpointing=checkpointing,
        loss_tokens_per_sequence=ANSWER_TOKENS + 1,  # logits_to_keep = answer window + 1
    )  # the default optimizer is the Trainer's: adamw_torch_fused
    total = param_counts(shape).total
    adapters = lora_trainable_params(shape, lora.rank, lora.target_modules) if method == "lora" else 0
    flops = training_flops(
        total + adapters, adapters or total, batch * seq_len, gradient_checkpointing=checkpointing
    ).total
    return memory, flops


def table(rows: list, steps: int, started_load: float) -> str:
    shape = ModelShape.from_catalog(MODEL)
    first = rows[0][1]
    hardware, precision = from_jsonable(Hardware, first["hardware"]), first["precision"]  # fp32 on CPU, bf16 on CUDA
    on_cpu = first["memory_kind"] == MemoryKind.CPU_RSS.value
    gpu = catalog_gpu_for(hardware)
    # calibrated utilisation: pooled per method over these very runs, so its ratios show how well FLOPs track
    # time across shapes, not a forecast
    measured = [
        MeasuredTraining(
            utilisation_key=c[0],
            seconds=m["step_seconds"] * (steps - 1),
            precision=precision,
            gpu=gpu,
            flops=training_flops(
                m["total_params"], m["trainable_params"], c[1] * c[2] * (steps - 1), gradient_checkpointing=c[3]
            ).total,
        )
        for c, m, _ in rows
    ]
    calibrated = pool_utilisation(measured, gpu) if gpu else {}
    peak = peak_flops(catalog.gpus()[gpu], precision) if gpu else None

    device = hardware.gpu or f"{hardware.cpu}, {hardware.cpu_count} cores"
    memory_columns = (
        f"{'rss GiB':>8}{'ratio':>7}{'rss,mmap':>10}{'ratio':>7}" if on_cpu else f"{'alloc GiB':>8}{'ratio':>7}{'':>17}"
    )
    lines = [
        (
            f"{MODEL}, {precision}, {hardware.device} ({device}), torch {hardware.torch_threads} threads, "
            f"{dt.date.today()}, load average {started_load:.1f} at start, {os.getloadavg()[0]:.1f} at end"
        ),
        (
            f"peak memory over loading + training (weights included): {first['memory_kind']}; step time: mean of "
            f"steps 2..{steps}; batches of exactly seq tokens, loss on the last {ANSWER_TOKENS}"
        ),
        "",
        f"{'':<19}{'predicted':>17}  {'measured / ratio (predicted / measured)':^42}|{'step time, s':^48}",
        (
            f"{'config':<19}{'phase':>8}{'GiB':>9}  {memory_columns}{'':>10}|"
            f"{'pred':>8}{'ratio':>7}{'calib':>8}{'ratio':>7}{'measured':>10}"
        ),
    ]
    for config, m, m_mmap in rows:
        method, batch, seq_len, checkpointing = config
        memory, flops = predict(shape, method, batch, seq_len, checkpointing, precision)
        name = f"{method} b{batch} s{seq_len}" + (" ckpt" if checkpointing else "")
        phase = "fwd/bwd" if memory.peak_phase == "forward/backward" else "optim"
        line = (
            f"{name:<19}{phase:>8}{memory.peak / GIB:>9.2f}  {m['peak_bytes'] / GIB:>8.2f}"
            f"{memory.peak / m['peak_bytes']:>7.2f}"
        )
        line += (
            f"{m_mmap['peak_bytes'] / GIB:>10.2f}{memory.peak / m_mmap['peak_bytes']:>7.2f}" if m_mmap else f"{'':>17}"
        )
        line += f"{'':>10}|"
        if gpu and peak:
            default = flops / (peak * training_utilisation(method, batch * seq_len).value)
            calib = flops / (peak * calibrated[method].value)
            line += f"{default:>8.3g}{default / m['step_seconds']:>7.2f}{calib:>8.3g}{calib / m['step_seconds']:>7.2f}"
        else:
            line += f"{'-':>8}{'-':>7}{'-':>8}{'-':>7}"
        lines.append(line + f"{m['step_seconds']:>10.3g}")
    lines.append("")
    if gpu and peak:
        lines.append(
            f"step time = FLOPs per step (advisor.costs.training_flops) / ({gpu} peak {precision} "
            f"{peak / 1e12:g} TFLOP/s x utilisation); utilisation:"
        )
        for method in ("full", "lora"):
            lines.append(f"  pred,  {method}: the catalog curve at each row's tokens per step (utilisation.yaml)")
            lines.append(f"  calib, {method}: {calibrated[method].value:.3f}, {calibrated[method].source}")
    else:
        lines.append("step time: this device matches no entry of data/catalog/gpus.yaml, so nothing is predicted")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per configuration, at least 2")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        method, batch, seq_len, checkpointing, steps = json.loads(args.measure)
        print(json.dumps(measure(method, batch, seq_len, checkpointing, steps)))
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
            if measured["memory_kind"] == MemoryKind.CPU_RSS.value
            else None
        )
        rows.append((config, measured, mmap))
        print(f"measured {config} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    print(table(rows, args.steps, started_load))


if __name__ == "__main__":
    main()
