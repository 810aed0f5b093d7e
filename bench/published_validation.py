"""Baseline: advisor.costs against the published, measured runs of bench/published_runs.yaml.

    .venv/bin/python bench/published_validation.py [--out reports/bench/published_validation.md]

For every row that is not ``excluded`` it runs the estimator with that row's settings, where the estimator can be
told them today, and reports predicted / measured:
- memory rows: ``advisor.costs.training_memory`` (its peak) against the published peak, converted to bytes by its
  unit key (peak_memory_gb = 1e9, peak_memory_gib = 2^30, peak_memory_bytes = 1);
- throughput rows: ``advisor.costs.estimate_training``'s time (FLOPs / (peak x catalog default utilisation)) for
  the row's tokens against the measured seconds (tokens + seconds, or tokens/s);
- serving rows: ``estimate_serving`` picks its own continuous-batching batch, so a published batch-1 rate cannot be
  put to it; where a row also gives the peak memory of a 16-bit model, ``inference_memory`` at batch 1 is compared.
Rows it cannot express (model or GPU not in the catalog, chunked loss, paged / 8-bit optimizers, optimizer in the
backward pass, offloading, packing, torch.compile, several GPUs, ...) are listed with the reasons, not forced.

Nothing is fitted or tuned: this is the estimator as it is. torchtune is the holdout source, never used to fit
anything, and is reported apart. Pure Python (no torch); runs in about a second.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from advisor.costs import estimate_training, inference_memory, training_memory
from advisor.costs.shapes import ModelShape
from harness import catalog
from harness.units import GIB

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "bench" / "published_runs.yaml"
DEFAULT_OUT = ROOT / "reports" / "bench" / "published_validation.md"
HOLDOUT = "torchtune"

# bytes per unit of a measured memory key (bench/published_runs.yaml's header)
MEMORY_UNITS = {"peak_memory_bytes": 1.0, "peak_memory_gb": 1e9, "peak_memory_gib": float(GIB)}
# a published GPU name's first word -> catalog entry; None = the source does not say which one
GPU_NAMES: dict[str, str | None] = {
    "a10g": "a10g",
    "a100-40gb": "a100-40gb",
    "l40s": "l40s",
    "4090": "rtx-4090",
    "a6000": "rtx-a6000",
    "h100-sxm-80gb": "h100-sxm",
    "h200-sxm-141gb": "h200",
}
# LitGPT's module names -> peft's (LitGPT's 'mlp' is its three MLP matrices; 'head' is the LM head)
LITGPT_TARGETS = {
    "query": ("q_proj",),
    "key": ("k_proj",),
    "value": ("v_proj",),
    "projection": ("o_proj",),
    "mlp": ("gate_proj", "up_proj", "down_proj"),
}
SUFFIXES = ("-instruct", "-chat", "-hf")
BF16_PRECISIONS = ("bf16", "bf16-true", "bf16 (dtype=bfloat16, use_amp=false)")
# |predicted / measured - 1| a row must stay within, per compared quantity (the targets)
TOLERANCE = {"memory": 0.15, "throughput": 0.30, "serving": 0.20}
LITGPT_GENERATE_TOKENS = (6, 50)  # generate/base.py defaults: 'Hello, my name is', max_new_tokens=50 (row's note)


@dataclass
class Row:
    """One published row: its prediction and ratio, or why it cannot be expressed."""

    id: str
    kind: str
    source: str
    model: str
    gpu: str
    method: str
    settings: str = ""
    measured: str = ""
    predicted: str = ""
    ratio: float | None = None  # predicted / measured
    metric: str = ""
    reasons: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)


def catalog_model(hf_id: str) -> tuple[str | None, str]:
    """The models.yaml entry whose hf_id is ``hf_id`` (case-insensitive); a difference of a trailing
    -Instruct/-chat/-hf alone is accepted only where both ids are in the catalog with identical shapes, which
    cannot be checked for an id that is not, so it is reported instead."""
    wanted = hf_id.lower()
    entries = catalog.models()
    for name, entry in entries.items():
        if entry.get("hf_id", "").lower() == wanted:
            return name, ""

    def stem(text: str) -> str:
        for suffix in SUFFIXES:
            if text.endswith(suffix):
                return text[: -len(suffix)]
        return text

    for entry in entries.values():
        if stem(entry.get("hf_id", "").lower()) == stem(wanted):
            return None, f"model {hf_id} differs from catalog {entry['hf_id']} by a suffix; shapes not verifiable"
    return None, f"model {hf_id} not in the catalog"


def catalog_gpu(published: str) -> tuple[str | None, str, str]:
    """(catalog entry, reason it is missing, assumption made) for a published GPU name."""
    first = published.split()[0].lower()
    if first == "a100":
        if "40GB" in published:
            return "a100-40gb", "", ""
        # the catalog's A100 40 GB and 80 GB share the 312 TFLOP/s peak and memory predictions do not use the GPU
        return "a100-80gb", "", "A100 memory size not stated: a100-80gb (same peak as 40 GB)"
    key = GPU_NAMES.get(first)
    if key is None or key not in catalog.gpus():
        return None, f"GPU {published} not in the catalog", ""
    return key, "", ""


def lora_targets(targets: Sequence[str]) -> tuple[tuple[str, ...], str]:
    names: list[str] = []
    for target in targets:
        if target in LITGPT_TARGETS:
            names.extend(LITGPT_TARGETS[target])
        elif target == "head":
            return (), "LoRA on the LM head (estimator adapts block linears only)"
        else:
            names.append(target)
    return tuple(dict.fromkeys(names)), ""


def training_blockers(run: dict[str, Any]) -> list[str]:
    """Settings of a training row the estimator has no input for."""
    s, kind = run["settings"], run["kind"]
    reasons = []
    if run["gpu_count"] > 1:
        reasons.append(f"{run['gpu_count']} GPUs (estimate_training takes no device count)")
    if s.get("cpu_offload"):
        reasons.append("FSDP CPU offload")
    if s.get("activation_offload"):
        reasons.append("activation offload")
    if s.get("optimizer_in_backward"):
        reasons.append("optimizer in backward")
    if s.get("packing"):
        reasons.append("packing")
    if s.get("compile"):
        reasons.append("torch.compile")
    if str(s.get("precision", "not stated")) not in BF16_PRECISIONS:
        reasons.append(f"precision {s.get('precision', 'not stated')}")
    if not isinstance(s.get("seq_len"), int):
        reasons.append(f"seq_len {s.get('seq_len', 'not stated')}")
    lora = s.get("lora") or {}
    if run["method"] != "full" and not lora:
        reasons.append("LoRA rank/targets not stated")
    if lora.get("use_dora"):
        reasons.append("DoRA")
    if kind == "memory":
        if s.get("loss") == "chunked":
            reasons.append("chunked loss")
        optimizer = str(s.get("optimizer", "not stated"))
        if optimizer.startswith("paged") or "8bit" in optimizer or optimizer == "lora-fa":
            reasons.append(f"optimizer {optimizer.split(' (')[0]}")
    quantization = str(s.get("quantization", "none"))
    if quantization not in ("none", "nf4", "nf4-dq"):
        reasons.append(f"quantization {quantization}")
    return reasons


def training_row(run: dict[str, Any], row: Row, *, relax: frozenset[str] = frozenset()) -> None:
    """Predict one training row into ``row``; ``relax``: blockers to ignore (the indicative section only)."""
    s = run["settings"]
    row.reasons += [reason for reason in training_blockers(run) if reason not in relax]
    targets: tuple[str, ...] = ()
    lora = s.get("lora") or {}
    if lora:
        targets, why = lora_targets(lora.get("targets", ()))
        if why:
            row.reasons.append(why)
    model, why = catalog_model(run["model"])
    if model is None:
        row.reasons.append(why)
    gpu, why, assumed = catalog_gpu(run["gpu"])
    if gpu is None and run["kind"] == "throughput":
        row.reasons.append(why)
    if assumed:
        row.assumptions.append(assumed)
    measured = run["measured"]
    if run["kind"] == "throughput" and not ("tokens" in measured or "tokens_per_second" in measured):
        row.reasons.append("no token count (time alone)")
    if row.reasons or model is None:
        return

    shape = ModelShape.from_catalog(model)
    method = run["method"]
    checkpointing = s.get("gradient_checkpointing")
    if checkpointing is None:
        row.assumptions.append("gradient checkpointing not stated: method default")
    if s.get("optimizer", "not stated") == "not stated":
        row.assumptions.append("optimizer not stated: AdamW")
    lora_kwargs: dict[str, Any] = {}
    if method != "full":
        lora_kwargs = {"rank": int(lora["rank"]), "lora_targets": targets, "lora_dropout": float(lora["dropout"])}
        if method == "qlora":
            lora_kwargs["quantization"] = s["quantization"]
    batch, seq = int(s["micro_batch_size"]), int(s["seq_len"])
    row.settings = (
        f"b{batch} s{seq}"
        + (" ckpt" if checkpointing else "")
        + (f" r{lora['rank']} {'+'.join(t.removesuffix('_proj') for t in targets)}" if lora else "")
    )

    if run["kind"] == "memory":
        key = next(k for k in MEMORY_UNITS if k in measured)
        measured_bytes = float(measured[key]) * MEMORY_UNITS[key]
        memory = training_memory(
            shape,
            method,
            batch_size=batch,
            seq_len=seq,
            precision="bf16",
            gradient_checkpointing=checkpointing,
            gradient_accumulation=int(s.get("gradient_accumulation", 1)),
            **lora_kwargs,
        )
        row.measured = f"{measured_bytes / GIB:.2f} GiB"
        row.predicted = f"{memory.peak / GIB:.2f} GiB"
        row.ratio = memory.peak / measured_bytes
        row.metric = run["memory_metric"]
        if not s.get("packing"):
            row.assumptions.append(f"seq_len {seq} is a truncation cap: peak assumed at a full-length batch")
        return

    assert gpu is not None
    if "tokens" in measured:
        tokens, seconds = float(measured["tokens"]), float(measured["train_seconds"])
        row.measured = f"{seconds:.0f} s for {tokens / 1e6:.2f} M tokens"
    else:
        tokens, seconds = 1e6, 1e6 / float(measured["tokens_per_second"])
        row.measured = f"{float(measured['tokens_per_second']):.0f} tok/s"
    estimate = estimate_training(
        shape,
        method,
        gpu,
        examples=round(tokens),
        seq_len=1,
        epochs=1,
        batch_size=batch,
        precision="bf16",
        gradient_checkpointing=checkpointing,
        **lora_kwargs,
    )
    predicted_seconds = estimate.gpu_hours * 3600
    row.predicted = (
        f"{predicted_seconds:.0f} s" if "tokens" in measured else f"{tokens / predicted_seconds:.0f} tok/s"
    ) + f" (util {estimate.utilisation.value:.2f})"
    row.ratio = predicted_seconds / seconds
    row.metric = "time"


def serving_row(run: dict[str, Any], row: Row) -> None:
    s, measured = run["settings"], run["measured"]
    model, why = catalog_model(run["model"])
    if model is None:
        row.reasons.append(why)
    if run["gpu_count"] > 1 or int(s.get("tensor_parallel", 1)) > 1:
        row.reasons.append("tensor parallel")
    precision = str(s.get("weight_precision"))
    if precision not in BF16_PRECISIONS:
        row.reasons.append(f"weights {precision} (estimator serves 16-bit weights)")
    if "peak_memory_gb" not in measured:
        row.reasons.append("throughput only: estimate_serving chooses its own batch (cannot be told the row's)")
    if row.reasons or model is None:
        return
    prompt, output = LITGPT_GENERATE_TOKENS
    memory = inference_memory(
        ModelShape.from_catalog(model), batch_size=1, prompt_tokens=prompt, output_tokens=output, precision="bf16"
    )
    measured_bytes = float(measured["peak_memory_gb"]) * MEMORY_UNITS["peak_memory_gb"]
    row.settings = f"batch 1, {prompt} + {output} tokens"
    row.measured = f"{measured_bytes / GIB:.2f} GiB"
    row.predicted = f"{memory.total / GIB:.2f} GiB"
    row.ratio = memory.total / measured_bytes
    row.metric = f"{run['memory_metric']} (memory)"
    row.assumptions.append("prompt/output not stated: generate.py defaults; tok/s not expressible (batch 1)")


def evaluate(runs: list[dict[str, Any]]) -> list[Row]:
    rows = []
    for run in runs:
        if run.get("excluded"):
            continue
        row = Row(run["id"], run["kind"], run["source"], run["model"], run["gpu"], run["method"])
        if run["kind"] == "serving":
            serving_row(run, row)
        else:
            training_row(run, row)
        rows.append(row)
    return rows


# blockers whose effect on the arithmetic is plausibly small for a given seq_len: packed sequences are exactly
# seq_len tokens, and compile mostly changes speed; these rows are predicted apart, outside every statistic
INDICATIVE_RELAX = frozenset({"packing", "torch.compile"})


def indicative(runs: list[dict[str, Any]], rows: list[Row]) -> list[Row]:
    """Rows not expressible only because of INDICATIVE_RELAX, predicted as if those settings were absent."""
    by_id = {run["id"]: run for run in runs}
    out = []
    for row in rows:
        if row.ratio is None and row.reasons and set(row.reasons) <= INDICATIVE_RELAX and row.kind != "serving":
            again = Row(row.id, row.kind, row.source, row.model, row.gpu, row.method)
            training_row(by_id[row.id], again, relax=INDICATIVE_RELAX)
            if again.ratio is not None:
                again.assumptions.insert(0, "ignored: " + ", ".join(row.reasons))
                out.append(again)
    return out


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    within: float  # share within the kind's tolerance
    low: float
    high: float
    worst: float  # the ratio farthest from 1 (in log terms)


def summarise(ratios: Sequence[float], tolerance: float) -> Summary | None:
    if not ratios:
        return None
    return Summary(
        n=len(ratios),
        median=statistics.median(ratios),
        within=sum(abs(r - 1) <= tolerance for r in ratios) / len(ratios),
        low=min(ratios),
        high=max(ratios),
        worst=max(ratios, key=lambda r: abs(math.log(r))),
    )


def summary_cells(summary: Summary | None) -> str:
    if summary is None:
        return "0 | - | - | - | -"
    s = summary
    return f"{s.n} | {s.median:.2f} | {100 * s.within:.0f} % | {s.low:.2f}-{s.high:.2f} | {s.worst:.2f}"


def targets(kind: str, summary: Summary | None) -> list[tuple[str, str]]:
    """(target, met / not met) lines of the issue's targets for one kind."""

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    if summary is None:
        return [(f"{kind}: any target", "not evaluable (no expressible rows)")]
    s = summary
    if kind == "memory":
        return [
            ("memory median 0.95-1.05", verdict(0.95 <= s.median <= 1.05)),
            (">=90 % of memory rows within ±15 %", verdict(s.within >= 0.90)),
            ("worst memory row within ±30 %", verdict(abs(s.worst - 1) <= 0.30)),
        ]
    if kind == "throughput":
        return [
            ("time median 0.85-1.15", verdict(0.85 <= s.median <= 1.15)),
            (">=80 % of time rows within ±30 %", verdict(s.within >= 0.80)),
            ("worst time row within 2x", verdict(0.5 <= s.worst <= 2)),
        ]
    return [("every serving row within ±20 %", verdict(s.within == 1.0))]


def row_line(row: Row) -> str:
    return (
        f"| {row.id} | {row.source} | {row.model} | {row.gpu.split(' (')[0]} | {row.method} | {row.settings} | "
        f"{row.measured} | {row.predicted} | {row.ratio:.2f} | {row.metric} | {'; '.join(row.assumptions)} |"
    )


ROW_HEADER = [
    "| id | source | model | gpu | method | settings | measured | predicted | ratio | metric | assumptions |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
]


def report(rows: list[Row], command: str, extra: Sequence[Row] = ()) -> str:
    done = [row for row in rows if row.ratio is not None]
    skipped = [row for row in rows if row.ratio is None]
    kinds = ("memory", "throughput", "serving")
    sources = sorted({row.source for row in rows})
    lines = [
        "# Estimator vs published measured runs (baseline)",
        "",
        f"`{command}` on {dt.date.today().isoformat()}; rows from `bench/published_runs.yaml` (not excluded).",
        "Ratio = predicted / measured. Nothing was fitted or tuned: catalog default utilisation, the estimator as it "
        f"is. **Holdout: `{HOLDOUT}`** - never used to fit anything; reported apart below.",
        "Memory in GiB (2^30 bytes); measured values converted from their unit key exactly. Serving rows compare "
        "memory only (`inference_memory`, batch 1); `estimate_serving` cannot be told a batch.",
        "",
        f"Expressible: {len(done)} of {len(rows)} rows; not expressible: {len(skipped)}.",
        "",
        "## Per row",
        "",
        *ROW_HEADER,
    ]
    lines += [row_line(row) for row in done]
    lines += [
        "",
        "## Summary per kind x source",
        "",
        "Within: ±15 % (memory), ±30 % (time), ±20 % (serving). Worst: the ratio farthest from 1.",
        "",
        "| kind | source | n | median | within | range | worst |",
        "|---|---|---|---|---|---|---|",
    ]
    overall: dict[str, Summary | None] = {}
    holdout: dict[str, Summary | None] = {}
    fit: dict[str, Summary | None] = {}
    for kind in kinds:
        for source in sources:
            ratios = [r.ratio for r in done if r.kind == kind and r.source == source and r.ratio is not None]
            if ratios:
                lines.append(f"| {kind} | {source} | {summary_cells(summarise(ratios, TOLERANCE[kind]))} |")
        of_kind = [r for r in done if r.kind == kind]
        overall[kind] = summarise([r.ratio for r in of_kind if r.ratio is not None], TOLERANCE[kind])
        holdout[kind] = summarise(
            [r.ratio for r in of_kind if r.source == HOLDOUT and r.ratio is not None], TOLERANCE[kind]
        )
        fit[kind] = summarise(
            [r.ratio for r in of_kind if r.source != HOLDOUT and r.ratio is not None], TOLERANCE[kind]
        )
        lines.append(f"| **{kind}** | **all** | {summary_cells(overall[kind])} |")
    lines += ["", f"## Holdout (`{HOLDOUT}`, never used to fit anything)", ""]
    lines += ["| kind | n | median | within | range | worst |", "|---|---|---|---|---|---|"]
    for kind in kinds:
        lines.append(f"| {kind} | {summary_cells(holdout[kind])} |")
    lines += [
        "",
        "## The issue's targets",
        "",
        "Targets: memory median 0.95-1.05, >=90 % within ±15 %, worst within ±30 %; time median 0.85-1.15, "
        ">=80 % within ±30 %, worst within 2x; serving within ±20 %.",
        "",
        "| target | all expressible rows | non-holdout sources | holdout |",
        "|---|---|---|---|",
    ]
    for kind in kinds:
        for (name, all_v), (_, fit_v), (_, hold_v) in zip(
            targets(kind, overall[kind]), targets(kind, fit[kind]), targets(kind, holdout[kind]), strict=False
        ):
            lines.append(f"| {name} | {all_v} | {fit_v} | {hold_v} |")
    if extra:
        lines += [
            "",
            "## Indicative only (not in any statistic)",
            "",
            "Rows not expressible only because of packing and/or torch.compile, predicted as if those were absent "
            "(a packed sequence is exactly seq_len tokens; compile changes kernels and speed, which the estimator "
            "does not model). Shown to locate the gaps, not as validation.",
            "",
            *ROW_HEADER,
        ]
        lines += [row_line(row) for row in extra]
    reasons: dict[str, int] = {}
    for row in skipped:
        for reason in row.reasons:
            key = reason.split(" (")[0] if not reason.startswith(("model ", "GPU ")) else reason
            reasons[key] = reasons.get(key, 0) + 1
    lines += [
        "",
        "## Not expressible",
        "",
        "Reasons by rows (a row can have several):",
        "",
        "| reason | rows |",
        "|---|---|",
    ]
    lines += [f"| {reason} | {n} |" for reason, n in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))]
    lines += ["", "| id | kind | source | model | gpu | method | reasons |", "|---|---|---|---|---|---|---|"]
    lines += [
        f"| {row.id} | {row.kind} | {row.source} | {row.model} | {row.gpu.split(' (')[0]} | {row.method} | "
        f"{'; '.join(row.reasons)} |"
        for row in skipped
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report (default: %(default)s)")
    parser.add_argument("--runs", type=Path, default=RUNS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    runs = yaml.safe_load(args.runs.read_text())["runs"]
    rows = evaluate(runs)
    command = "python bench/published_validation.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    text = report(rows, command, indicative(runs, rows))
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
