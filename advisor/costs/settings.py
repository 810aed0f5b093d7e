"""How a fine-tuning job or a serving replica is run, beyond model, method, device and data size: the one typed
source of these settings. Each field's doc is its ``advisor estimate`` option's help (advisor.cli_options), and
``estimate_training`` / ``estimate_serving`` take the same objects, so the API and the CLI accept the same names.

Defaults are what the harness does (harness.training.finetune, the strategies' configs): fused AdamW (the
transformers Trainer's default optimizer with torch >= 2.8), the whole-sequence loss, fp32 adapters (peft), no
packing, no compile, no offload, one micro-batch per step, NF4 with double quantisation for QLoRA.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from harness.errors import UserError
from harness.schema import doc

OPTIMIZERS = ("adamw", "adamw-fused", "adamw-8bit", "paged-adamw", "paged-adamw-8bit")
QUANTIZATIONS = ("nf4", "nf4-dq", "int8")
LOSSES = ("full", "chunked")
ADAPTER_DTYPES = ("fp32", "bf16")
WEIGHT_PRECISIONS = ("bf16", "fp8", "int4")
KV_CACHE_DTYPES = ("bf16", "fp8")
# what the harness's QLoRA arm loads (harness.strategies.qlora.QloraConfig: NF4 with double quantisation)
DEFAULT_QUANTIZATION = "nf4-dq"


@dataclass(frozen=True)
class TrainingSettings:
    """The recipe of one fine-tuning job."""

    gradient_accumulation: int = field(
        default=1, metadata=doc("Micro-batches per optimizer step (gradient accumulation).", min=1)
    )
    quantization: str = field(
        default=DEFAULT_QUANTIZATION,
        metadata=doc(
            "QLoRA's frozen base: nf4 (4 bits + an fp32 absmax per 64 weights), nf4-dq (absmax themselves in 8 bits: "
            "the harness's and the QLoRA paper's) or int8 (LLM.int8, 1 byte per weight).",
            choices=QUANTIZATIONS,
        ),
    )
    optimizer: str = field(
        default="adamw-fused",
        metadata=doc(
            "adamw (torch's foreach AdamW: one sqrt(v) temporary per parameter at the step), adamw-fused (one kernel, "
            "no temporaries: the Trainer's default, so the harness's), adamw-8bit (bitsandbytes: m and v in 8 bits), "
            "paged-adamw / paged-adamw-8bit (bitsandbytes' paged states in CUDA managed memory: outside torch's "
            "allocator, evicted to CPU RAM under pressure, so not on the device's peak).",
            choices=OPTIMIZERS,
        ),
    )
    optimizer_in_backward: bool = field(
        default=False,
        metadata=doc(
            "Step each parameter as soon as its gradient is ready and free the gradient (torchtune's "
            "optimizer_in_bwd): no full set of gradients is ever alive.",
        ),
    )
    loss: str = field(
        default="full",
        metadata=doc(
            "full: cross-entropy over the whole sequence's logits upcast to fp32 at once (transformers); chunked: "
            "chunked or fused cross-entropy (torchtune, LitGPT, Liger) that never materialises the fp32 logits of "
            "the whole sequence, only of one chunk.",
            choices=LOSSES,
        ),
    )
    adapter_dtype: str = field(
        default="fp32",
        metadata=doc(
            "LoRA adapters' dtype: fp32 (peft's default) or bf16 (torchtune, LitGPT bf16-true).", choices=ADAPTER_DTYPES
        ),
    )
    packing: bool = field(
        default=False,
        metadata=doc(
            "Examples are packed into full sequences: every token is real, none padded (otherwise each batch is "
            "padded to its longest example).",
        ),
    )
    mean_seq_len: int | None = field(
        default=None,
        metadata=doc(
            "Mean tokens per example, for time and tokens (--seq-len stays the longest, for memory). Default: "
            "every example is --seq-len long.",
            min=1,
        ),
    )
    activation_offload: bool = field(
        default=False,
        metadata=doc(
            "Saved activations wait in CPU memory and come back for the backward pass (torchtune's "
            "enable_activation_offloading): about two layers' worth stay on the device.",
        ),
    )
    compile: bool = field(default=False, metadata=doc("torch.compile: fused kernels, higher utilisation."))
    fp8: bool = field(
        default=False,
        metadata=doc("FP8 matmuls (Transformer Engine / torchao) on a GPU with FP8 tensor cores (H100, H200, B200)."),
    )
    gpus: int | None = field(
        default=None,
        metadata=doc(
            "Devices the job shards over (FSDP / ZeRO-3). Default: the fewest that fit. Memory is per device, "
            "GPU-hours are all devices together.",
            min=1,
        ),
    )

    def __post_init__(self) -> None:
        for name, allowed in (
            ("quantization", QUANTIZATIONS),
            ("optimizer", OPTIMIZERS),
            ("loss", LOSSES),
            ("adapter_dtype", ADAPTER_DTYPES),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise UserError(f"{name}: unknown '{value}'; choose one of: {', '.join(allowed)}")
        for name in ("gradient_accumulation", "mean_seq_len", "gpus"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"{name}: {value!r} must be a whole number of at least 1")

    @property
    def optimizer_bits(self) -> int:
        """Bits of each of Adam's two states per trained parameter: 8 for the bitsandbytes 8-bit optimizers."""
        return 8 if self.optimizer.endswith("8bit") else 0  # 0: the parameter's own dtype

    @property
    def paged(self) -> bool:
        return self.optimizer.startswith("paged")


def split_settings(kwargs: dict[str, Any]) -> tuple[dict[str, Any], TrainingSettings]:
    """(the rest, TrainingSettings of the keys it has): a strategy's ``memory_settings()`` mixes both."""
    names = {f.name for f in fields(TrainingSettings)}
    return {k: v for k, v in kwargs.items() if k not in names}, TrainingSettings(
        **{k: v for k, v in kwargs.items() if k in names}
    )


@dataclass(frozen=True)
class ServingSettings:
    """How a serving replica runs."""

    serving_batch: int | None = field(
        default=None,
        metadata=doc(
            "Requests decoded together. Default: as many as the KV cache has room for, up to the engine's cap "
            "(continuous batching).",
            min=1,
        ),
    )
    tensor_parallel: int | None = field(
        default=None,
        metadata=doc("GPUs one replica's weights are split over. Default: the fewest that hold it.", min=1),
    )
    weight_precision: str = field(
        default="bf16",
        metadata=doc(
            "Served weights: bf16, fp8 (1 byte) or int4 (AWQ/GPTQ: 4 bits + scales).", choices=WEIGHT_PRECISIONS
        ),
    )
    kv_cache_dtype: str = field(
        default="bf16", metadata=doc("KV cache elements: bf16 (2 bytes) or fp8 (1 byte).", choices=KV_CACHE_DTYPES)
    )

    def __post_init__(self) -> None:
        if self.weight_precision not in WEIGHT_PRECISIONS:
            raise UserError(
                f"weight_precision: unknown '{self.weight_precision}'; choose one of: {', '.join(WEIGHT_PRECISIONS)}"
            )
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise UserError(
                f"kv_cache_dtype: unknown '{self.kv_cache_dtype}'; choose one of: {', '.join(KV_CACHE_DTYPES)}"
            )
        for name in ("serving_batch", "tensor_parallel"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise UserError(f"{name}: {value!r} must be a whole number of at least 1")
