"""Measured vs predicted peak memory and step time of LoRA and full fine-tuning, for catalog model shapes.

    python bench/gpu_memory_validation.py                      # on a CUDA GPU: ~2-4 min on an H100
    python bench/gpu_memory_validation.py --device cpu --runs smollm2-135m-instruct:lora --batch-size 1 --seq-len 32

Each run builds a model with random weights from a shape in data/catalog/models.yaml (no download: the shapes are
all the cost model needs, and memory and time do not depend on the weights' values), directly on the device in the
harness's precision (bf16 on CUDA, fp32 on the CPU: harness.models.torch_dtype), wraps it in peft LoRA as
harness/strategies/lora.py does (r=8, alpha 16, dropout 0.05 on q, k, v, o unless --rank / --lora-targets), and
trains it for --steps optimizer steps through the product's own code path, harness.training.finetune (the
transformers Trainer with its fused AdamW, the answer-window loss, step timing). Every training sequence is exactly
--seq-len random token ids, all of them labels (plain causal-LM loss: logits at every position), so the
prediction's inputs are exact: ``loss_tokens_per_sequence=None``.

Every run is a fresh process (``--one``), so CUDA's peak counters, the caching allocator's fragmentation and an
out-of-memory error belong to that run; a failed run is a row with its error.

Measured, per run:
- peak memory over creating the model *and* training it (weights included, as the prediction): on CUDA
  torch.cuda.max_memory_allocated (and max_memory_reserved, what the caching allocator held); on the CPU the growth
  of the process's resident memory (harness.meters.PeakMemory), with MALLOC_MMAP_THRESHOLD_=131072 so that freed
  tensors leave the RSS (bench/README.md: without it glibc keeps 10-140 % more resident);
- step time: finetune's ``step_seconds_median``, the median wall time of optimizer steps 2..N (CUDA synchronised).

Predicted: ``advisor.costs.memory.training_memory(..., precision="bf16" on CUDA / "fp32" on CPU, fused AdamW,
loss_tokens_per_sequence=None)`` and, for time, ``advisor.costs.training.estimate_training`` for one optimizer step
(batch x seq tokens) on catalog device --gpu at the catalog's default utilisation for the method.

Writes a markdown table (--out) and the raw rows (--json); the markdown is rewritten after every run, so a run cut
short keeps what finished.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing

from advisor.costs.compute import SECONDS_PER_HOUR, peak_flops
from advisor.costs.memory import training_memory
from advisor.costs.settings import TrainingSettings
from advisor.costs.shapes import ModelShape, check_lora_targets, lora_trainable_params, param_counts
from advisor.costs.training import estimate_training
from harness import catalog
from harness.errors import UserError
from harness.strategies.base import grid
from harness.strategies.lora import LoraConfig, lora_adapter_config
from harness.typedjson import to_jsonable
from harness.units import GIB, MIB

DEFAULT_RUNS = "llama-3.2-1b:full,llama-3.2-1b:lora,llama-3.2-3b:full,llama-3.2-3b:lora,llama-3.1-8b:lora"
METHODS = ("lora", "full")
SEED = 0
# glibc: every block over 128 KiB gets its own mapping, returned to the system when torch frees it, so the CPU's
# RSS is the memory the tensors need (what the model predicts) rather than what malloc keeps (bench/README.md)
CPU_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(128 * 1024)}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
BREAKDOWN = (
    ("weights", "weights"),
    ("gradients", "gradients"),
    ("optimizer_states", "optimizer states"),
    ("master_weights", "master weights"),
    ("lora_adapters", "LoRA adapters (+grads, Adam)"),
    ("activations", "activations"),
    ("logits_and_loss", "logits + loss"),
    ("lm_head_gradient", "lm_head grad"),
    ("optimizer_step_temporaries", "optimizer step temporaries"),
)


# ---------------------------------------------------------------------------------------------------- the child


def hf_config(model: str, shape: ModelShape, seq_len: int):
    """A transformers config with the catalog shape: Qwen2Config when q/k/v carry biases (Qwen2's attention; a
    LlamaConfig with attention_bias would give o_proj one too), else LlamaConfig (Llama, Mistral, SmolLM2)."""
    from transformers import LlamaConfig, Qwen2Config

    entry = catalog.model_entry(model)
    common: dict[str, Any] = {
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_attention_heads,
        "num_key_value_heads": shape.num_key_value_heads,
        "tie_word_embeddings": shape.tie_word_embeddings,
        "max_position_embeddings": max(seq_len, int(entry.get("max_position_embeddings") or seq_len)),
        "pad_token_id": 0,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    config: Any = (
        Qwen2Config(**common, use_sliding_window=False)
        if shape.attention_bias
        else LlamaConfig(**common, attention_bias=False)
    )
    config._attn_implementation = "sdpa"  # what from_pretrained picks, and what the memory model assumes
    return config


def synthetic_items(vocab_size: int, count: int, seq_len: int):
    """``count`` sequences of exactly ``seq_len`` random token ids, every token a label (plain causal-LM loss)."""
    import torch

    from harness.training import TrainItem

    generator = torch.Generator().manual_seed(SEED)
    items = []
    for _ in range(count):
        ids = torch.randint(3, vocab_size, (seq_len,), generator=generator).tolist()
        items.append(TrainItem(input_ids=ids, labels=list(ids)))
    return items


def measure(spec: dict) -> dict:
    """Build, wrap and train one configuration; call in a fresh process. Never raises for a failed run: the error
    goes into the returned row."""
    import types

    import torch
    from transformers import AutoModelForCausalLM

    from harness.meters import PeakMemory, hardware
    from harness.models import torch_dtype
    from harness.strategies.full import FullConfig
    from harness.training import finetune

    device, method = spec["device"], spec["method"]
    batch, seq_len, steps = spec["batch_size"], spec["seq_len"], spec["steps"]
    shape = ModelShape.from_catalog(spec["model"])
    torch.manual_seed(SEED)
    dtype = torch_dtype(device)
    # no step minimum: one epoch of batch x steps items is exactly `steps` steps at `batch`
    settings: dict[str, Any] = {
        "epochs": 1,
        "batch_size": batch,
        "max_seq_len": max(seq_len, 16),
        "min_optimizer_steps": 0,
    }
    lora = LoraConfig(
        **settings, rank=spec["rank"], target_modules=list(spec["lora_targets"]), dropout=spec["lora_dropout"]
    )
    cfg = lora if method == "lora" else FullConfig(**settings)
    cfg = dataclasses.replace(cfg, **grid(cfg)[0])  # one run: each tunable setting's first (default) value
    items = synthetic_items(shape.vocab_size, batch * steps, seq_len)  # one epoch = exactly `steps` steps
    tokenizer = types.SimpleNamespace(pad_token_id=0)  # all finetune's collator needs; nothing is padded here
    row: dict[str, Any] = {"dtype": str(dtype).removeprefix("torch."), "error": None}
    info = None
    memory = PeakMemory(device)
    started = time.perf_counter()
    try:
        row["hardware"] = to_jsonable(hardware(device))
        with memory:
            with torch.device(device):
                model = AutoModelForCausalLM.from_config(hf_config(spec["model"], shape, seq_len), dtype=dtype)
            row["model_params"] = sum(p.numel() for p in model.parameters())
            if method == "lora":
                import peft

                # exactly as harness/strategies/lora.py wraps the base model
                model = peft.get_peft_model(model, lora_adapter_config(lora))
            info, _ = finetune(model, tokenizer, items, cfg, device=device, seed=SEED, progress=False)
    except Exception as err:
        oom = isinstance(err, (torch.OutOfMemoryError, MemoryError))
        first_line = (str(err).strip().splitlines() or [""])[0][:300]
        row["error"] = ("out of memory: " if oom else f"{type(err).__name__}: ") + first_line
    row["run_seconds"] = round(time.perf_counter() - started, 1)
    # the outer meter's peak: creation + training, absolute on CUDA (nothing is allocated before it), RSS growth
    # over the moment before the model was created on the CPU; set even when the run failed (peak before the OOM)
    use = memory.result
    row.update(
        peak_bytes=use.growth_mib * MIB if use else None,
        reserved_bytes=use.reserved_peak_mib * MIB if use and use.reserved_peak_mib is not None else None,
        memory_kind=memory.kind.value,
    )
    if info is not None:
        row.update(
            {
                key: getattr(info, key)
                for key in (
                    "optimizer_steps",
                    "step_seconds_median",
                    "first_step_seconds",
                    "train_seconds",
                    "tokens_trained",
                    "trainable_params",
                    "total_params",
                    "precision",
                    "loss_curve",
                )
            }
        )
        row["train_memory"] = to_jsonable(info.memory)
        if info.optimizer_steps != steps:
            row["error"] = f"expected {steps} optimizer steps, the Trainer took {info.optimizer_steps}"
    return row


# --------------------------------------------------------------------------------------------------- the parent


def parse_runs(text: str) -> list[tuple[str, str]]:
    runs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        model, _, method = part.rpartition(":")
        if not model or method not in METHODS:
            raise UserError(f"--runs: '{part}' is not MODEL:METHOD with METHOD one of {', '.join(METHODS)}")
        catalog.model_entry(model, where="--runs")
        runs.append((model, method))
    if not runs:
        raise UserError("--runs: no run given")
    return runs


def predict(model: str, method: str, args, precision: str, gpu: str) -> dict:
    """advisor.costs's peak memory (the harness's settings: fused AdamW, logits at every position here) and time
    of one optimizer step of batch x seq tokens on ``gpu`` at the catalog's default utilisation for ``method``."""
    shape = ModelShape.from_catalog(model)
    targets = check_lora_targets(args.lora_targets)
    memory = training_memory(
        shape,
        method,
        batch_size=args.batch_size,
        seq_len=args.seq_len,
        precision=precision,
        rank=args.rank,
        lora_targets=targets,
        lora_dropout=args.lora_dropout,
        loss_tokens_per_sequence=None,
        settings=TrainingSettings(optimizer="adamw-fused"),
    )
    # one optimizer step = one "epoch" over batch_size examples; estimate_training's memory is what the `advisor
    # estimate` CLI prints (its defaults: fused AdamW too)
    plan = estimate_training(
        shape,
        method,
        gpu,
        examples=args.batch_size,
        seq_len=args.seq_len,
        epochs=1,
        batch_size=args.batch_size,
        rank=args.rank,
        precision=precision,
        lora_targets=targets,
        lora_dropout=args.lora_dropout,
    )
    total = param_counts(shape).total
    return {
        "memory": memory.as_dict(),
        "peak_bytes": memory.peak,
        "estimate_cli_peak_bytes": plan.memory.peak,
        "step_seconds": plan.gpu_hours * SECONDS_PER_HOUR,
        "flops_per_step": plan.flops.total,
        "utilisation": plan.utilisation.value,
        "utilisation_source": plan.utilisation.source,
        "total_params": total,
        "trainable_params": total if method == "full" else lora_trainable_params(shape, args.rank, targets),
    }


def run_child(spec: dict, timeout: float) -> dict:
    env = {**os.environ, **OFFLINE_ENV, **(CPU_MALLOC_ENV if spec["device"] == "cpu" else {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    try:
        out = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--one", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s (--run-timeout)"}
    for line in reversed(out.stdout.strip().splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    tail = (out.stderr.strip().splitlines() or ["no output"])[-1][:300]
    return {"error": f"process exited with code {out.returncode}: {tail}", "stderr_tail": out.stderr[-3000:]}


def versions() -> dict[str, str | None]:
    result: dict[str, str | None] = {}
    for name in ("torch", "transformers", "peft", "accelerate"):
        try:
            result[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            result[name] = None
    return result


def gib(value) -> str:
    return "-" if value is None else f"{value / GIB:.2f}"


def ratio(measured, predicted) -> str:
    return "-" if not measured or not predicted else f"{measured / predicted:.2f}"


def seconds(value) -> str:
    return "-" if value is None else f"{value:.3g}"


def markdown(rows: list[dict], args, meta: dict, total_runs: int) -> str:
    on_cuda = args.device.startswith("cuda")
    hardware = next((r["measured"].get("hardware") for r in rows if r["measured"].get("hardware")), None) or {}
    if on_cuda:
        device = hardware.get("gpu") or meta.get("nvidia_smi_name") or "unknown GPU"
        if hardware.get("gpu_memory_gib"):
            device += (
                f" ({hardware['gpu_memory_gib']} GiB, CUDA {hardware.get('cuda_version')}, "
                f"driver {hardware.get('driver')})"
            )
        measured_peak = (
            "`torch.cuda.max_memory_allocated` over creating the model and training it (weights "
            "included); reserved: `torch.cuda.max_memory_reserved`"
        )
    else:
        device = f"{hardware.get('cpu', 'CPU')}, {hardware.get('cpu_count', '?')} cores"
        measured_peak = (
            "growth of the process's resident memory over creating the model and training it "
            "(`harness.meters.PeakMemory`), with `MALLOC_MMAP_THRESHOLD_=131072` so freed tensors leave "
            "the RSS"
        )
    gpu_entry = catalog.gpus()[args.gpu]
    lora = (
        f"LoRA r={args.rank}, alpha {LoraConfig().alpha:g}, dropout {args.lora_dropout:g} on "
        f"{', '.join(args.lora_targets)}"
    )
    precision = meta["precision"]
    measured_label = "measured max allocated GiB" if on_cuda else "measured RSS growth GiB"
    via = f" (via `{args.invoked_by}`)" if args.invoked_by else ""
    v = meta["versions"]
    lines = [
        "# Fine-tuning memory and step time: measured vs `advisor estimate`",
        "",
        f"Command: `{meta['command']}`{via}",
        "",
        f"- Date: {meta['date']}",
        (
            f"- Device: {device}, `--device {args.device}`; predictions for catalog device `{args.gpu}` "
            f"({gpu_entry['display_name']})"
        ),
        f"- torch {v['torch']}, transformers {v['transformers']}, peft {v['peft']}, accelerate {v['accelerate']}",
        (
            f"- Batch {args.batch_size} x {args.seq_len} tokens, {args.steps} optimizer steps per run, each run in a "
            f"fresh process; precision {precision} (the harness: bf16 weights, gradients and Adam states on CUDA, "
            f"fp32 on the CPU); {lora}; AdamW as the harness's Trainer runs it (fused)"
        ),
        (
            "- Models: random weights with the shapes of `data/catalog/models.yaml`, built on the device "
            "(`AutoModelForCausalLM.from_config`), trained by `harness.training.finetune`"
        ),
        (
            f"- Labels: every token of each {args.seq_len}-token random sequence (plain causal-LM loss, logits at all "
            f"{args.seq_len} positions); predicted with `loss_tokens_per_sequence=None`"
        ),
        f"- Measured peak: {measured_peak}",
        (
            f"- Measured step: median wall time of optimizer steps 2..{args.steps} (finetune's `step_seconds_median`"
            f"{', CUDA synchronised' if on_cuda else ''})"
        ),
        (
            f'- Predicted peak: `advisor.costs.memory.training_memory(precision="{precision}", optimizer adamw-fused, '
            "loss_tokens_per_sequence=None)`; predicted step: `advisor.costs.training.estimate_training`'s FLOPs for "
            f"batch x seq tokens / ({args.gpu} peak {meta['peak_tflops']:g} TFLOP/s {precision} x the catalog's "
            "default utilisation for the method); implied utilisation: the utilisation that would have predicted "
            "the measured step"
        ),
        "- GiB = 2^30 bytes; peak ratio and step ratio are measured / predicted",
        "",
    ]
    if len(rows) < total_runs:
        lines += [f"**Partial: {len(rows)} of {total_runs} runs done.**", ""]
    lines += [
        (
            f"| model | method | trainable params | predicted peak GiB | {measured_label} | peak ratio | "
            "measured reserved GiB | predicted step s | measured step s | step ratio | implied utilisation |"
        ),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        p, m = r["predicted"], r["measured"]
        trainable = m.get("trainable_params") or p["trainable_params"]
        step = m.get("step_seconds_median") if not m.get("error") else None
        peak = m.get("peak_bytes") if not m.get("error") else None
        implied = f"{p['utilisation'] * p['step_seconds'] / step:.3f}" if step else "-"
        lines.append(
            f"| {r['model']} | {r['method']} | {trainable:,} | {gib(p['peak_bytes'])} | {gib(peak)} | "
            f"{ratio(peak, p['peak_bytes'])} | {gib(m.get('reserved_bytes') if not m.get('error') else None)} | "
            f"{seconds(p['step_seconds'])} | {seconds(step)} | {ratio(step, p['step_seconds'])} | {implied} |"
        )
    failed = [r for r in rows if r["measured"].get("error")]
    if failed:
        lines += ["", "Failed runs:", ""]
        for r in failed:
            m = r["measured"]
            before = f" (peak before it failed: {gib(m['peak_bytes'])} GiB)" if m.get("peak_bytes") else ""
            lines.append(f"- {r['model']} {r['method']}: {m['error']}{before}")
    explanation = (
        "The peak is model states (weights, optimizer states, LoRA adapters) + the larger of the "
        "forward/backward items (activations, logits + loss, lm_head grad) and the optimizer-step items "
        "(gradients, step temporaries); see `advisor/costs/memory.py`. `advisor estimate` column: the "
        "same prediction as the CLI computes it (torch's foreach AdamW, whose temporaries the fused "
        "optimizer does not need)."
    )
    header = " | ".join(label for _, label in BREAKDOWN)
    lines += [
        "",
        "## Predicted peak, itemised (GiB)",
        "",
        explanation,
        "",
        f"| model | method | {header} | peak phase | peak | `advisor estimate` |",
        "|---|---|" + "---:|" * len(BREAKDOWN) + "---|---:|---:|",
    ]
    for r in rows:
        d = r["predicted"]["memory"]
        lines.append(
            f"| {r['model']} | {r['method']} | "
            + " | ".join(gib(d[key]) for key, _ in BREAKDOWN)
            + f" | {d['peak_phase']} | {gib(d['peak'])} | {gib(r['predicted']['estimate_cli_peak_bytes'])} |"
        )
    mismatched = [
        r
        for r in rows
        if r["measured"].get("total_params")
        and r["measured"]["total_params"]
        != r["predicted"]["total_params"] + (r["predicted"]["trainable_params"] if r["method"] == "lora" else 0)
    ]
    if mismatched:
        lines += ["", "Parameter counts that differ from the shapes' (built model vs advisor.costs.shapes):", ""]
        lines += [
            f"- {r['model']} {r['method']}: {r['measured']['total_params']:,} built, "
            f"{r['predicted']['total_params']:,} + adapters predicted"
            for r in mismatched
        ]
    return "\n".join(lines) + "\n"


def nvidia_smi_name() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return shlex.join(["python", str(shown), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--runs", default=DEFAULT_RUNS, help=f"MODEL:METHOD,... (default {DEFAULT_RUNS})")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--steps", type=int, default=8, help="optimizer steps per run, at least 2")
    parser.add_argument(
        "--gpu",
        default=None,
        help="catalog device the prediction is for (data/catalog/gpus.yaml); default h100-sxm on "
        "cuda, cpu-2core on cpu",
    )
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument(
        "--lora-targets",
        default="q_proj,k_proj,v_proj,o_proj",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
    )
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--out", default=str(ROOT / "reports/gpu/memory_validation.md"), help="markdown table")
    parser.add_argument("--json", default=None, help="raw rows as JSON (default: --out with .json)")
    parser.add_argument("--run-timeout", type=float, default=300, help="seconds one run may take")
    parser.add_argument("--invoked-by", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.one:
        print(json.dumps(measure(json.loads(args.one))), flush=True)
        return 0

    try:
        if args.device != "cpu" and not args.device.startswith("cuda"):
            raise UserError(f"--device: '{args.device}'; choose cuda or cpu")
        if args.steps < 2:
            raise UserError("--steps: at least 2 (the first step is not timed)")
        args.gpu = args.gpu or ("h100-sxm" if args.device.startswith("cuda") else "cpu-2core")
        gpu_entry = catalog.check_gpu(args.gpu, where="--gpu")
        runs = parse_runs(args.runs)
        check_lora_targets(args.lora_targets, where="--lora-targets")
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    precision = "fp32" if args.device == "cpu" else "bf16"
    meta = {
        "command": command_line(),
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "versions": versions(),
        "precision": precision,
        "peak_tflops": peak_flops(gpu_entry, precision) / 1e12,
        "nvidia_smi_name": nvidia_smi_name() if args.device.startswith("cuda") else None,
    }
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out.with_suffix(".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path.parent.mkdir(parents=True, exist_ok=True)

    # a SIGTERM (scripts/gpu_validation.sh's timeout) unwinds through subprocess.run, which kills the running child,
    # so no orphan keeps the GPU; the runs that finished are already in --out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows = []
    for model, method in runs:
        spec = {
            "model": model,
            "method": method,
            "device": args.device,
            "batch_size": args.batch_size,
            "seq_len": args.seq_len,
            "steps": args.steps,
            "rank": args.rank,
            "lora_targets": list(args.lora_targets),
            "lora_dropout": args.lora_dropout,
        }
        predicted = predict(model, method, args, precision, args.gpu)
        started = time.perf_counter()
        measured = run_child(spec, args.run_timeout)
        rows.append({"model": model, "method": method, "spec": spec, "predicted": predicted, "measured": measured})
        status = measured.get("error") or (
            f"peak {gib(measured.get('peak_bytes'))} GiB (predicted {gib(predicted['peak_bytes'])}), "
            f"step {seconds(measured.get('step_seconds_median'))} s (predicted {seconds(predicted['step_seconds'])})"
        )
        print(f"{model} {method}: {status} [{time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
        out.write_text(markdown(rows, args, meta, len(runs)), encoding="utf-8")
        json_path.write_text(
            json.dumps(
                {"meta": meta, "args": {k: v for k, v in vars(args).items() if k != "one"}, "rows": rows}, indent=1
            ),
            encoding="utf-8",
        )
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
