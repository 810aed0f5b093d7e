"""QLoRA (Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs"): LoRA on a 4-bit base.

The frozen base is loaded in 4 bits by bitsandbytes (NF4 by default, with double quantisation of the
block constants); each matmul dequantises it to the compute dtype (bf16, or fp16 on GPUs without bf16).
The adapters are the lora arm's, on the same modules, trained the same way. For serving, the adapter
stays beside the 4-bit base instead of being merged: merging into NF4 weights would re-quantise the sum,
and the update (small next to the weights) is mostly lost in the rounding.

bitsandbytes' 4-bit kernels need a CUDA GPU: the traits say so, and compare refuses other devices before any
run starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import prompts
from harness.errors import UserError
from harness.record import StrategyInfo
from harness.schema import doc
from harness.spec import Example
from harness.strategies.base import (
    LabelledExamples,
    Prepared,
    Requirement,
    Rung,
    StrategyTraits,
    Variant,
    training_config,
    training_variants,
    unavailable_reason,
)
from harness.strategies.lora import LoraConfig, lora_adapter_config, lora_name
from harness.units import MIB

if TYPE_CHECKING:
    from harness.runner import RunContext


@dataclass
class QloraConfig(LoraConfig):
    gradient_checkpointing: bool = field(
        default=True,
        metadata=doc(
            "Recompute activations in the backward pass: less memory, ~30% more compute. On by default for QLoRA, "
            "as in the QLoRA paper's recipe (its point is fitting a large model on one GPU)."
        ),
    )
    quant_type: str = field(
        default="nf4",
        metadata=doc(
            "4-bit data type of the frozen base: 'nf4' (NormalFloat, the QLoRA paper's, fitted to normally "
            "distributed weights) or 'fp4' (plain 4-bit float).",
            choices=("nf4", "fp4"),
        ),
    )
    double_quant: bool = field(
        default=True,
        metadata=doc(
            "Quantise the per-block absmax constants too (8-bit, QLoRA's double quantisation): ~0.37 bit less per "
            "weight, same quality in the paper."
        ),
    )

    def memory_settings(self) -> dict[str, Any]:
        # the key of advisor.costs.memory.NF4_BYTES_PER_PARAM: fp4 takes as many bytes as nf4; double
        # quantisation shrinks the block constants
        return {**super().memory_settings(), "quantization": "nf4-dq" if self.double_quant else "nf4"}


def compute_dtype(device: str):
    """What the dequantised 4-bit weights are multiplied in: bf16 where the GPU has it, else fp16."""
    import torch

    return torch.bfloat16 if device.startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float16


def quantization_config(cfg: QloraConfig, device: str):
    """The transformers BitsAndBytesConfig that loads the base in 4 bits (constructing it needs no bitsandbytes)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.quant_type,
        bnb_4bit_use_double_quant=cfg.double_quant,
        bnb_4bit_compute_dtype=compute_dtype(device),
    )


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


class QloraStrategy:
    """LoRA adapters trained on a base model loaded in 4 bits (bitsandbytes NF4, double quantisation), as in
    QLoRA (Dettmers et al. 2023); served as the adapter on the 4-bit base, not merged. Needs a CUDA GPU and
    bitsandbytes (`pip install -e '.[gpu]'`)."""

    name = "qlora"
    config_type = QloraConfig
    traits = StrategyTraits(
        display_name="QLoRA",
        ladder_rank=Rung.ADAPTER,
        colour="#b5006e",
        trains=True,
        serving_method="fine-tuned",
        labelled_examples=LabelledExamples.TRAINING_SET,
        memory_method="qlora",
        utilisation_key="qlora",
        shardable=False,
        devices=("cuda",),
        device_reason="bitsandbytes' 4-bit kernels",
        packages=(Requirement(module="bitsandbytes", pip="bitsandbytes>=0.45", extra="gpu"),),
    )

    def variants(self, config: QloraConfig) -> list[Variant]:
        return training_variants(self.name, config, lambda p, axes: f"{lora_name(p, axes)}-{p['quant_type']}")

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        reason = unavailable_reason(self.name, self.traits, ctx.device)
        if reason:  # before loading anything
            raise UserError(reason)
        if ctx.sharding == "fsdp":
            # FSDP would have to shard the packed 4-bit weights (a quant_storage dtype FSDP can flatten) and
            # gather them back for serving; the harness does neither
            raise UserError(
                "strategies.qlora: FSDP cannot shard the 4-bit base here; run QLoRA on one GPU, or with --sharding ddp"
            )
        import peft

        from harness.training import train_on_task

        cfg, fraction = training_config(QloraConfig, variant.params)
        system = cfg.system_prompt(ctx.instruction)
        bnb = quantization_config(cfg, ctx.device)
        base = ctx.load_model(quantization=bnb)
        # measured before kbit preparation, which upcasts the unquantised layers (norms, embeddings) to fp32
        base_mib = round(base.get_memory_footprint() / MIB, 1)
        quantized = sum(type(m).__name__ == "Linear4bit" for m in base.modules())
        # freezes the base, upcasts the small unquantised layers for stable training, turns on checkpointing
        base = peft.prepare_model_for_kbit_training(base, use_gradient_checkpointing=cfg.gradient_checkpointing)
        model = peft.get_peft_model(base, lora_adapter_config(cfg))
        train_info, model = train_on_task(ctx, model, cfg, fraction, system)
        # bitsandbytes packs two 4-bit weights per stored element, so counting numel() halves the quantised
        # matrices; peft's count undoes that, and the cost models price FLOPs from these totals
        trainable, total = model.get_nb_trainable_parameters()
        compute = _dtype_name(bnb.bnb_4bit_compute_dtype)
        facts = {
            "method": "bitsandbytes",
            "bits": 4,
            "quant_type": cfg.quant_type,
            "double_quant": cfg.double_quant,
            "compute_dtype": compute,
            "quantized_modules": quantized,
            "base_memory_mib": base_mib,
        }
        train_info = dataclasses.replace(train_info, trainable_params=trainable, total_params=total, quantization=facts)

        def build(example: Example) -> list[dict[str, str]]:
            return prompts.messages(system, example)

        described = cfg.quant_type + (" + double quant" if cfg.double_quant else "")
        return Prepared(
            model=model,
            tokenizer=ctx.tokenizer,
            build_messages=build,
            train_info=train_info,
            info=StrategyInfo(merged_for_inference=False, base_quantization=described, compute_dtype=compute),
        )
