"""LoRA: peft low-rank adapters on the attention and MLP projections, trained on the answers; merged for serving."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness import prompts
from harness.record import StrategyInfo
from harness.schema import doc, one
from harness.shapes import HEAD_MODULE, LINEAR_MODULES
from harness.spec import Example
from harness.strategies.base import (
    LabelledExamples,
    Prepared,
    Rung,
    StrategyTraits,
    TrainingConfig,
    Variant,
    lr_label,
    training_config,
    training_variants,
)

if TYPE_CHECKING:
    from harness.record import TrainInfo
    from harness.runner import RunContext
    from harness.training import Prompt

# The modules that get adapters unless a task says otherwise (the cost models' default too): every linear layer of
# the transformer blocks (attention and MLP projections; not the LM head), peft's 'all-linear'. Dettmers et al. 2023
# ("QLoRA", sec. 4) found LoRA on all linear block layers necessary to match full fine-tuning, the number of adapted
# layers mattering more than the rank; on attention alone (the LoRA paper's q,v) it fell short. Measured here too:
# reports/bench/plain_lora.md.
DEFAULT_TARGET_MODULES = ("all-linear",)


@dataclass
class LoraConfig(TrainingConfig):
    # the default grid: 3e-4 is the common LoRA rate for small models (the plain-script baseline's), 1e-3 the
    # higher one small datasets often need; rank 8 first, 16 next (tuning.trials takes the first points)
    learning_rate: float | list[float] = field(
        default_factory=lambda: [3e-4, 1e-3, 1e-4],
        metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0, tunable=True),
    )
    rank: int | list[int] = field(
        default_factory=lambda: [8, 16],
        metadata=doc(
            "LoRA rank r: each adapted d_out x d_in matrix gets r*(d_in+d_out) trainable parameters.",
            min=1,
            tunable=True,
        ),
    )
    alpha: float = field(
        default=16.0, metadata=doc("LoRA scaling numerator: the update is scaled by alpha / rank.", gt=0)
    )
    dropout: float = field(default=0.05, metadata=doc("Dropout on the LoRA input.", min=0, max=1))
    target_modules: list[str] = field(
        default_factory=lambda: list(DEFAULT_TARGET_MODULES),
        metadata=doc("Module names that get adapters (or ['all-linear'])."),
    )

    def memory_settings(self) -> dict[str, Any]:
        return {
            **super().memory_settings(),
            "rank": one(self.rank),
            "lora_targets": tuple(self.target_modules),
            "lora_dropout": self.dropout,
        }


def lora_adapter_config(cfg: LoraConfig) -> Any:
    """The peft adapter settings of a LoRA config (shared with qlora, which adapts a 4-bit base the same way)."""
    import peft

    # peft takes the shorthand 'all-linear' as a string, not in a list; it leaves the lm_head out, so 'all-linear'
    # beside 'lm_head' is spelled out as every block module and the head (beside others, names add nothing)
    named = list(dict.fromkeys(cfg.target_modules))
    targets: Any = named
    if "all-linear" in named:
        targets = [*LINEAR_MODULES, HEAD_MODULE] if HEAD_MODULE in named else "all-linear"
    # lora_alpha: peft annotates an int but uses it as a number (the update is scaled by alpha / r)
    alpha: Any = cfg.alpha
    return peft.LoraConfig(
        r=one(cfg.rank), lora_alpha=alpha, lora_dropout=cfg.dropout, task_type="CAUSAL_LM", target_modules=targets
    )


def lora_name(params: dict[str, Any], varied: set[str]) -> str:
    """'r8', or 'r8-lr0.001' when the grid tries several learning rates."""
    return "-".join([f"r{params['rank']}"] + ([lr_label(params)] if "learning_rate" in varied else []))


class LoraStrategy:
    name = "lora"
    config_type = LoraConfig
    traits = StrategyTraits(
        display_name="LoRA",
        ladder_rank=Rung.ADAPTER,
        colour="#e8710a",
        trains=True,
        serving_method="fine-tuned",
        labelled_examples=LabelledExamples.TRAINING_SET,
        memory_method="lora",
        utilisation_key="lora",
        shardable=False,
    )

    def variants(self, config: LoraConfig) -> list[Variant]:
        return training_variants(self.name, config, lora_name)

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        cfg, fraction = training_config(LoraConfig, variant.params)
        system = cfg.system_prompt(ctx.instruction)
        train_info, merged = train_lora(ctx, cfg, fraction, system)

        def build(example: Example) -> list[dict[str, str]]:
            return prompts.messages(system, example)

        return Prepared(
            model=merged,
            tokenizer=ctx.tokenizer,
            build_messages=build,
            train_info=train_info,
            info=StrategyInfo(merged_for_inference=True),
        )


def train_lora(
    ctx: RunContext, cfg: LoraConfig, fraction: float, prompt: Prompt, examples: list[Example] | None = None
) -> tuple[TrainInfo, Any]:
    """Adapters trained on the task's examples under ``prompt`` (harness.training.build_items), merged into the
    base: (train info, the merged model). The lora and lora+rag arms train this way."""
    import peft

    from harness.training import train_on_task

    base = ctx.load_model()
    model = peft.get_peft_model(base, lora_adapter_config(cfg))
    train_info, model = train_on_task(ctx, model, cfg, fraction, prompt, examples)
    merged = model.merge_and_unload()  # served as one dense model: no adapter latency
    merged.eval()
    return train_info, merged
