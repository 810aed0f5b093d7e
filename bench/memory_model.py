"""Predicted vs measured peak memory and step time of LoRA and full fine-tuning of the packaged model.

    .venv/bin/python bench/memory_model.py [--steps N]

Fine-tunes smollm2-135m-instruct for a few optimizer steps per configuration - full and LoRA (r=8 on
q, k, v, o), batch 8 at 64 and at 256 tokens, and one run with gradient checkpointing - on CUDA when
torch sees a GPU, else on the CPU, with the harness's own loading and training code, each configuration
in a fresh process. Then prints one table: advisor.costs's predicted peak memory and step time, the
measured ones, and predicted / measured. Runs in ~4 minutes on a 2-core CPU.

Measured peak memory is what ``advisor compare`` records (harness.meters.PeakMemory) over loading the
model and training it, so it includes the weights: on CPU the growth of the process's resident memory,
on CUDA torch.cuda.max_memory_allocated. Step time is the mean time between the ends of consecutive
optimizer steps, so the first step (lazy Adam state, first-touch allocations, kernel selection) is left out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from advisor.costs import calibrate_utilisation, default_utilisation, training_flops, training_memory  # noqa: E402
from advisor.costs.compute import catalog_gpu_for, peak_flops  # noqa: E402
from advisor.costs.shapes import ModelShape, lora_trainable_params, param_counts  # noqa: E402
from harness import catalog  # noqa: E402

MODEL = "smollm2-135m-instruct"
ANSWER_TOKENS = 6   # a short label and the end-of-turn tokens, like the support-intents task
SEED = 0
# (method, batch size, tokens per sequence, gradient checkpointing)
CONFIGS = [("full", 8, 64, False), ("lora", 8, 64, False), ("full", 8, 256, False), ("lora", 8, 256, False),
           ("lora", 8, 256, True)]
MIB = 2 ** 20


def synthetic_items(vocab_size: int, batch: int, seq_len: int, steps: int):
    """``steps`` batches of sequences of exactly ``seq_len`` tokens, loss on the last ANSWER_TOKENS: no padding,
    so the prediction's inputs (tokens per batch, logit positions) are exact."""
    import torch

    from harness.training import TrainItem

    generator = torch.Generator().manual_seed(SEED)
    items = []
    for _ in range(batch * steps):
        ids = torch.randint(1000, vocab_size, (seq_len,), generator=generator).tolist()
        items.append(TrainItem(input_ids=ids, labels=[-100] * (seq_len - ANSWER_TOKENS) + ids[-ANSWER_TOKENS:]))
    return items


def measure(method: str, batch: int, seq_len: int, checkpointing: bool, steps: int) -> dict:
    """One configuration, trained as the harness's lora / full strategy trains (call in a fresh process)."""
    import torch
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from harness.meters import PeakMemory, hardware, synchronize
    from harness.models import load_model, load_tokenizer
    from harness.runner import seed_everything
    from harness.strategies.full import FullConfig
    from harness.strategies.lora import LoraConfig
    from harness.training import finetune

    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = catalog.resolve_model(MODEL)
    tokenizer = load_tokenizer(ref)  # outside the measured phase: compare loads it once for all runs
    seed_everything(SEED)
    config_type = LoraConfig if method == "lora" else FullConfig
    cfg = config_type(epochs=1, batch_size=batch, max_seq_len=seq_len, gradient_checkpointing=checkpointing)
    items = synthetic_items(len(tokenizer), batch, seq_len, steps)

    step_ends = []

    def on_step_end(optimizer, args, kwargs):
        synchronize(device)
        step_ends.append(time.perf_counter())

    hook = register_optimizer_step_post_hook(on_step_end)  # every optimizer, Trainer's too
    with PeakMemory(device) as memory:
        model = load_model(ref, device)
        if method == "lora":
            import peft

            # as harness/strategies/lora.py wraps the base model
            model = peft.get_peft_model(model, peft.LoraConfig(
                r=cfg.rank, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout, task_type="CAUSAL_LM",
                target_modules=cfg.target_modules))
        info = finetune(model, tokenizer, items, cfg, device=device, seed=SEED, progress=False)
    hook.remove()
    if len(step_ends) != steps:
        raise RuntimeError(f"expected {steps} optimizer steps, timed {len(step_ends)}")
    return {"peak_bytes": memory.peak_mb * MIB, "train_phase_bytes": info["train_peak_memory_mb"] * MIB,
            "memory_kind": memory.kind, "step_seconds": (step_ends[-1] - step_ends[0]) / (steps - 1),
            "total_params": info["total_params"], "trainable_params": info["trainable_params"],
            "precision": info["precision"], "hardware": hardware(device)}


def run_isolated(config: tuple, steps: int) -> dict:
    """Each configuration in its own process: CPU peak RSS cannot be reset within one, and compare also gives
    every run a fresh worker process."""
    out = subprocess.run([sys.executable, __file__, "--measure", json.dumps([*config, steps])],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{config} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def predict(shape: ModelShape, method: str, batch: int, seq_len: int, checkpointing: bool, precision: str):
    """advisor.costs's peak memory and FLOPs of one optimizer step, with the harness's settings."""
    memory = training_memory(shape, method, batch_size=batch, seq_len=seq_len, precision=precision, rank=8,
                             lora_targets=("q_proj", "k_proj", "v_proj", "o_proj"), lora_dropout=0.05,
                             gradient_checkpointing=checkpointing,
                             loss_tokens_per_sequence=ANSWER_TOKENS + 1)  # logits_to_keep = answer window + 1
    total = param_counts(shape).total
    adapters = lora_trainable_params(shape, 8) if method == "lora" else 0
    flops = training_flops(total + adapters, adapters or total, batch * seq_len,
                           gradient_checkpointing=checkpointing).total
    return memory, flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per configuration (>= 2)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        method, batch, seq_len, checkpointing, steps = json.loads(args.measure)
        print(json.dumps(measure(method, batch, seq_len, checkpointing, steps)))
        return
    if args.steps < 2:
        parser.error("--steps: at least 2 (the first step is not timed)")

    shape = ModelShape.from_catalog(MODEL)
    rows = []
    for config in CONFIGS:
        started = time.perf_counter()
        rows.append((config, run_isolated(config, args.steps)))
        print(f"measured {config} in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    hardware = rows[0][1]["hardware"]
    precision = rows[0][1]["precision"]  # the harness trains in fp32 on CPU, bf16 on CUDA
    gpu = catalog_gpu_for(hardware)
    # calibrated utilisation: pooled per method over these very runs, so its ratios show how well FLOPs
    # track time across shapes, not a forecast
    records = [{"run_info": {"strategy": c[0], "params": {"gradient_checkpointing": c[3]}},
                "train_info": {"tokens_trained": c[1] * c[2] * (args.steps - 1),
                               "train_seconds": m["step_seconds"] * (args.steps - 1),
                               "total_params": m["total_params"], "trainable_params": m["trainable_params"],
                               "precision": m["precision"]},
                "meta_info": {"hardware": m["hardware"]}} for c, m in rows]
    calibrated = calibrate_utilisation(records, gpu) if gpu else {}

    device_name = hardware.get("gpu") or hardware["cpu"]
    lines = [f"{MODEL}, {precision}, {hardware['device']} ({device_name}, {hardware['cpu_count']} cores), "
             f"torch threads {hardware['torch_threads']}, {dt.date.today()}, {platform.platform()}",
             f"peak memory: {rows[0][1]['memory_kind']} over loading + training, weights included; "
             f"step time: mean of steps 2..{args.steps}; {ANSWER_TOKENS}-token answer window",
             f"{'config':<22}{'peak phase':>12}{'pred GB':>9}{'meas GB':>9}{'ratio':>7}  |"
             f"{'pred s':>8}{'ratio':>7}{'calib s':>9}{'ratio':>7}{'meas s':>8}"]
    for (method, batch, seq_len, checkpointing), m in rows:
        memory, flops = predict(shape, method, batch, seq_len, checkpointing, precision)
        name = f"{method} b{batch} s{seq_len}" + (" ckpt" if checkpointing else "")
        line = (f"{name:<22}{memory.peak_phase.replace('forward/backward', 'fwd/bwd').replace('optimizer step', 'optim'):>12}"
                f"{memory.peak / 1e9:>9.2f}{m['peak_bytes'] / 1e9:>9.2f}{memory.peak / m['peak_bytes']:>7.2f}  |")
        if gpu:
            peak = peak_flops(catalog.gpus()[gpu], precision)
            default = flops / (peak * default_utilisation("training", method).value)
            calib = flops / (peak * calibrated[method].value)
            line += (f"{default:>8.2f}{default / m['step_seconds']:>7.2f}{calib:>9.2f}{calib / m['step_seconds']:>7.2f}"
                     f"{m['step_seconds']:>8.2f}")
        else:
            line += f"{'-':>8}{'-':>7}{'-':>9}{'-':>7}{m['step_seconds']:>8.2f}"
        lines.append(line)
    if gpu:
        peak = peak_flops(catalog.gpus()[gpu], precision)
        lines.append(f"step time = FLOPs per step / ({gpu} peak {precision} {peak / 1e12:g} TFLOP/s x utilisation)")
        for method in ("full", "lora"):
            lines.append(f"  pred s, {method}: {default_utilisation('training', method).value:.3f} "
                         f"({default_utilisation('training', method).source[:70]}...)")
            lines.append(f"  calib s, {method}: {calibrated[method].value:.3f} ({calibrated[method].source})")
    else:
        lines.append("step time: this hardware matches no entry of data/catalog/gpus.yaml, so no prediction")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
