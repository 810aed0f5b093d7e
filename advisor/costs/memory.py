"""Training and inference memory, itemised in bytes, with the reasoning for every byte.

Training peak = model states (weights, master weights, optimizer states, adapters) + the larger of
  forward/backward: saved activations + logits/loss (+ 4-bit dequantisation buffer, + the lm_head's weight
                    gradient in full fine-tuning, its first op in the backward pass, + all gradients when
                    they accumulate over several micro-batches), all alive when the backward pass starts;
  optimizer step:   gradients + the step's temporaries.
In between, gradients grow as activations are freed, so the peak sits at one end or the other: the start
of the backward pass for LoRA, often the optimizer step for full training.

Activations follow the Hugging Face transformers Llama/Qwen2/Mistral code the harness runs, with
PyTorch SDPA attention (flash / memory-efficient kernels keep no seq x seq score matrix, so the quadratic
5*heads*s/h term of Korthikanti et al. 2022 is absent). Their per-layer count of what autograd saves
(Eq. 1: s*b*h*(34 + 5*heads*s/h) bytes for GPT with 16-bit activations) is redone for a pre-norm SwiGLU,
GQA block without dropout in ``layer_activation_bytes``, and checked against what autograd actually saves
(bench/memory_model.py and its README).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from advisor.costs.compute import default_utilisation
from advisor.costs.settings import TrainingSettings
from advisor.costs.shapes import HEAD_MODULE, ModelShape, check_lora_targets, lora_trainable_params, param_counts
from harness.errors import UserError
from harness.strategies import STRATEGIES, traits
from harness.strategies.lora import DEFAULT_TARGET_MODULES
from harness.units import GIB

# How a fine-tuning job holds the model, as this model itself distinguishes (a strategy names its own in its
# traits): full = every weight trained; lora = adapters beside a frozen 16-bit base; qlora = adapters beside a
# frozen base stored in 4 bits.
MEMORY_METHODS = ("full", "lora", "qlora")


@dataclass(frozen=True)
class Precision:
    """Bytes per parameter and per activation element of one precision regime."""

    name: str
    frozen_weight: float  # a parameter that is not trained
    weight: float  # a trained parameter's working copy
    gradient: float
    master_weight: float  # fp32 copy the optimizer updates (mixed precision only)
    optimizer: float  # Adam's momentum + variance
    activation: float  # one saved activation element
    dropout_mask: float  # what dropout keeps per element for its backward

    @property
    def trained_param(self) -> float:
        return self.weight + self.gradient + self.master_weight + self.optimizer


PRECISIONS = {
    # ZeRO (Rajbhandari et al. 2020, sec. 3.1): mixed-precision Adam keeps 16-bit weights (2) and gradients
    # (2) plus fp32 master weights (4), momentum (4) and variance (4) = 16 bytes per trained parameter.
    "mixed": Precision(
        "mixed", frozen_weight=2, weight=2, gradient=2, master_weight=4, optimizer=8, activation=2, dropout_mask=1
    ),
    # All bf16, Adam states included: the harness on CUDA (weights loaded in bf16, Trainer bf16=True; torch's
    # AdamW keeps m and v in the parameter's dtype), LitGPT's bf16-true: 2 + 2 + 4 = 8 bytes per trained parameter.
    "bf16": Precision(
        "bf16", frozen_weight=2, weight=2, gradient=2, master_weight=0, optimizer=4, activation=2, dropout_mask=1
    ),
    # All fp32: the harness on CPU. 4 + 4 + 8 = 16 bytes per trained parameter, 4-byte activations. Dropout on
    # CUDA is a fused kernel that keeps a 1-byte bool mask; on the CPU torch multiplies by a noise tensor of the
    # input's dtype and keeps that (4 bytes).
    "fp32": Precision(
        "fp32", frozen_weight=4, weight=4, gradient=4, master_weight=0, optimizer=8, activation=4, dropout_mask=4
    ),
}

# peft keeps LoRA adapters in fp32 whatever the base dtype (autocast_adapter_dtype=True) and trains them with
# fp32 Adam: 4 (weight) + 4 (gradient) + 8 (m, v) = 16 bytes per adapter parameter. bf16 adapters (torchtune,
# LitGPT bf16-true): 2 + 2 + 4 = 8.
ADAPTER_ELEMENT_BYTES_BY_DTYPE = {"fp32": 4, "bf16": 2}
ADAPTER_ELEMENT_BYTES = ADAPTER_ELEMENT_BYTES_BY_DTYPE["fp32"]
# bitsandbytes' 8-bit optimizers: m and v in one byte each, blockwise-quantised with one fp32 absmax per block of
# 256 values (Dettmers et al. 2022, "8-bit Optimizers via Block-wise Quantization"): 2 x (1 + 4/256) bytes
ADAM_8BIT_BYTES_PER_PARAM = 2 * (1 + 4 / 256)
# LLM.int8 (Dettmers et al. 2022): one byte per weight (the fp16 row scales and outlier columns are < 1 %)
INT8_BYTES_PER_PARAM = 1.0
# torchtune's CEWithChunkedOutputLoss splits the sequence's logits in 8 chunks (num_output_chunks = 8)
LOSS_CHUNKS = 8
# Activation offloading keeps the layer being computed and the next one (prefetched) on the device
OFFLOAD_LAYERS_RESIDENT = 2

# QLoRA (Dettmers et al. 2023, sec. 3): NF4 stores 4 bits per weight plus one fp32 absmax per block of 64
# weights (32/64 = 0.5 bit); double quantisation stores those absmax in 8 bits with one fp32 constant per
# 256 blocks (8/64 + 32/(64*256) = 0.127 bit). Embeddings, norms and lm_head stay 16-bit (bitsandbytes
# only replaces the blocks' nn.Linear layers; transformers keeps lm_head unquantised).
NF4_BYTES_PER_PARAM = {"nf4": (4 + 32 / 64) / 8, "nf4-dq": (4 + 8 / 64 + 32 / (64 * 256)) / 8}
QUANTIZED_BYTES_PER_PARAM = {**NF4_BYTES_PER_PARAM, "int8": INT8_BYTES_PER_PARAM}

# Cross-entropy on the logits, per token and vocabulary entry, at the start of the backward pass (transformers'
# ForCausalLMLoss): the model's logits (activation dtype) stay referenced by the output; the loss upcasts
# them to fp32 and log_softmax keeps its fp32 output (4); its backward then holds the incoming fp32
# gradient (4) and produces the fp32 gradient of its input (4). So (activation bytes + 12) * vocab.
LOSS_FP32_COPIES = 3


def default_gradient_checkpointing(method: str) -> bool:
    """Whether a job of this memory method recomputes activations unless told otherwise: what the harness's
    strategies of that method default to (their config's ``gradient_checkpointing``: off in TrainingConfig, on in
    QloraConfig, as in the QLoRA paper's recipe); on only when every such strategy turns it on."""
    defaults = {
        bool(getattr(strategy.config_type, "gradient_checkpointing", False))
        for name, strategy in STRATEGIES.items()
        if traits(name).memory_method == method
    }
    return defaults == {True}


def default_precision(device: dict[str, Any]) -> str:
    """The regime the harness trains in on a catalog device: 'bf16' on a GPU whose entry has ``supports_bf16``,
    'fp32' otherwise (a CPU, even one with bf16 instructions, or a GPU without bf16).

    The harness (harness.models.torch_dtype, harness.training.finetune) loads the model in bf16 when
    ``torch.cuda.is_bf16_supported()``, else in fp32, and trains with the Trainer's ``bf16=`` set the same way.
    bf16 there is pure bf16, not mixed precision: the weights and their gradients are bf16 and torch's AdamW
    keeps m and v in the parameter's dtype, with no fp32 master copy - PRECISIONS['bf16'], 2 + 2 + 4 = 8 bytes
    per trained parameter. LoRA/QLoRA adapters are fp32 in either regime (peft), priced apart
    (adapter_bytes_per_param). 'mixed' (ZeRO's 16 bytes) is not what the harness does; it stays a choice."""
    if device["kind"] == "cpu" or not device.get("supports_bf16", False):
        return "fp32"
    return "bf16"


def usable_memory(device: dict[str, Any]) -> float:
    """Bytes of a catalog device a job can allocate: its memory x the catalog's usable fraction."""
    return float(device["memory_gib"] * GIB * default_utilisation("memory", "usable_fraction").value)


def check_lora(
    shape: ModelShape,
    rank: int,
    targets: str | Sequence[str],
    *,
    rank_option: str = "rank",
    targets_option: str = "lora_targets",
) -> tuple[str, ...]:
    """The adapted modules (``check_lora_targets``) after checking that ``rank`` is a low rank for each of them:
    at least 1 and below the smaller dimension of every adapted matrix (at rank >= min(d_in, d_out) the
    update B @ A is a full-rank matrix, and the adapter has more parameters than the weight it adapts)."""
    names = check_lora_targets(targets, where=targets_option)
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise UserError(f"{rank_option}: {rank!r} is not a whole number")
    if rank < 1:
        raise UserError(f"{rank_option}: {rank} must be at least 1")
    dims = shape.adaptable_dims()
    smallest = min(names, key=lambda name: min(dims[name]))
    limit = min(dims[smallest])
    if rank >= limit:
        d_in, d_out = dims[smallest]
        raise UserError(
            f"{rank_option}: {rank} is not low-rank for {shape.name}: {smallest} is {d_out} x {d_in}, so the LoRA "
            f"rank must be below {limit} (1 to {limit - 1})"
        )
    return names


def check_precision(name: str) -> Precision:
    if name not in PRECISIONS:
        raise UserError(f"precision: unknown regime '{name}'; choose one of: {', '.join(PRECISIONS)}")
    return PRECISIONS[name]


def layer_activation_bytes(
    shape: ModelShape, precision: Precision, *, norms_trained: bool, linear_inputs: bool, compiled: bool = False
) -> float:
    """Bytes one decoder layer keeps for the backward pass, per token.

    Autograd keeps a tensor only for a gradient that is needed: an RMSNorm keeps its normalised value only when
    its weight trains; torch's linear keeps its input only when its weight trains (the input gradient needs
    just the weight), bitsandbytes' 4-bit matmul keeps it whenever the input needs a gradient - so
    ``linear_inputs`` is true for full fine-tuning and QLoRA, false for LoRA. With a = bytes per activation
    element, h = hidden, kv = K/V width, i = MLP width, and [norm] / [linear] for the conditional items:
      2 RMSNorms, each: its input upcast to fp32 (4h) + [norm: the normalised value (a*h)]
      attention: [linear: q/k/v input (a*h)] + q, k, v after RoPE and the SDPA output, for SDPA's backward
                 (a*(2h + 2kv)); o_proj's input is that output (the kernels return it laid out
                 batch x seq x heads x head_dim, so transformers' transpose + contiguous copies nothing)
      MLP: gate output, SiLU output, up output (3*a*i) + [linear: gate/up input (a*h), down input (a*i)]
    Full fine-tuning in 16 bits: 20h + 4kv + 8i bytes; LoRA's frozen block 12h + 4kv + 6i. (Korthikanti et
    al.'s 34*h for GPT has a 4h-wide GELU MLP, LayerNorms, dropout masks and MHA; this block has none of those.)

    ``compiled`` (torch.compile): Inductor fuses each RMSNorm into one kernel that saves its 16-bit input instead of
    the fp32 upcast (a*h, not 4h), and fuses SiLU(gate) * up, recomputing the SiLU output in the backward pass
    (2*a*i saved, not 3*a*i).
    """
    h, kv, i, a = shape.hidden_size, shape.kv_dim, shape.intermediate_size, precision.activation
    q = shape.q_dim  # heads x head_dim: h, except where head_dim is set apart (Gemma-2)
    norm_input = a * h if compiled else 4 * h
    norms = shape.norms_per_layer * (norm_input + (a * h if norms_trained else 0))
    attention = (a * h if linear_inputs else 0) + a * (2 * q + 2 * kv)
    # a mixture of experts runs each token through num_experts_per_tok MLPs, each keeping its own
    mlp = shape.num_experts_per_tok * ((2 if compiled else 3) * a * i + (a * (h + i) if linear_inputs else 0))
    return norms + attention + mlp


def lora_activation_bytes(
    shape: ModelShape,
    precision: Precision,
    targets: tuple[str, ...],
    rank: int,
    dropout: float,
    adapter_dtype: str = "fp32",
) -> float:
    """Bytes the adapters of ``targets`` keep per token (a layer's block modules; or the lm_head, per logits
    position). peft's adapters are fp32: each adapted module casts its input to the adapter's dtype for lora_A,
    which keeps that copy (4*d_in; none when the input already is in that dtype and no dropout makes a new tensor;
    under autocast the copy is 16-bit, so this is the upper bound), dropout keeps its mask per input element
    (``Precision.dropout_mask``), lora_B keeps lora_A's output (r elements). Modules sharing an input (q, k, v)
    each keep their own copy."""
    dims = shape.adaptable_dims()
    element = ADAPTER_ELEMENT_BYTES_BY_DTYPE[adapter_dtype]
    makes_copy = dropout > 0 or precision.activation != element
    per_input_element = (element if makes_copy else 0) + (precision.dropout_mask if dropout > 0 else 0)
    return sum(per_input_element * dims[name][0] + element * rank for name in targets)


def adapter_bytes_per_param(settings: TrainingSettings) -> float:
    """An adapter parameter's weight + gradient + Adam states on the device: 4 + 4 + 8 = 16 in fp32, 2 + 2 + 4 = 8
    in bf16; 8-bit Adam keeps ADAM_8BIT_BYTES_PER_PARAM instead of two states; paged states are off the peak."""
    element = ADAPTER_ELEMENT_BYTES_BY_DTYPE[settings.adapter_dtype]
    return 2 * element + optimizer_bytes_per_param(settings, 2 * element)


def optimizer_bytes_per_param(settings: TrainingSettings, states_in_param_dtype: float) -> float:
    """Adam's m and v per trained parameter on the device's allocator: in the parameter's dtype (the given
    bytes), 8-bit (bitsandbytes), or none for paged states (CUDA managed memory, outside torch's allocator)."""
    if settings.paged:
        return 0.0
    return ADAM_8BIT_BYTES_PER_PARAM if settings.optimizer_bits == 8 else states_in_param_dtype


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes of each item at the training peak (see the module docstring for how they combine)."""

    weights: float
    gradients: float
    master_weights: float
    optimizer_states: float
    lora_adapters: float  # LoRA weights, gradients and Adam states
    activations: float
    logits_and_loss: float
    lm_head_gradient: float  # full fine-tuning: the first weight gradient of the backward pass
    dequantisation_buffer: float  # QLoRA: the largest 4-bit matrix dequantised to 16 bits for its matmul
    optimizer_step_temporaries: float
    gradients_during_forward: bool  # gradient accumulation keeps them across micro-batches

    @property
    def model_states(self) -> float:
        return self.weights + self.master_weights + self.optimizer_states + self.lora_adapters

    @property
    def forward_backward(self) -> float:
        return (
            self.activations
            + self.logits_and_loss
            + self.dequantisation_buffer
            + (self.gradients if self.gradients_during_forward else self.lm_head_gradient)
        )

    @property
    def optimizer_step(self) -> float:
        return self.gradients + self.optimizer_step_temporaries

    @property
    def peak_phase(self) -> str:
        return "forward/backward" if self.forward_backward >= self.optimizer_step else "optimizer step"

    @property
    def peak(self) -> float:
        return self.model_states + max(self.forward_backward, self.optimizer_step)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "model_states": self.model_states, "peak": self.peak, "peak_phase": self.peak_phase}


def training_memory(
    shape: ModelShape,
    method: str,
    *,
    batch_size: int,
    seq_len: int,
    precision: str = "bf16",
    rank: int = 8,
    lora_targets: str | Sequence[str] = DEFAULT_TARGET_MODULES,
    lora_dropout: float = 0.05,
    gradient_checkpointing: bool | None = None,
    loss_tokens_per_sequence: int | None = None,
    settings: TrainingSettings = TrainingSettings(),
) -> TrainingMemory:
    """Peak memory of one fine-tuning job on one device; ``seq_len`` is the padded length of the longest batch.

    ``loss_tokens_per_sequence``: positions per sequence whose logits are computed; None = every token (plain
    causal-LM training). The harness left-pads batches and asks the model for the last answer-window + 1
    positions only (``logits_to_keep``), so its vocab-wide logits and loss buffers scale with that, not seq_len.
    ``settings``: the recipe (advisor.costs.settings.TrainingSettings: optimizer, optimizer in backward, loss,
    adapter dtype, quantization, gradient accumulation, activation offload, compile); its defaults are the
    harness's (fused AdamW: the transformers Trainer's default with torch >= 2.8, which updates each parameter in
    one kernel and needs no temporaries).
    ``precision`` defaults to the harness's regime on a bf16 GPU (``default_precision``); ``gradient_checkpointing``
    None = the method's harness default (``default_gradient_checkpointing``: on for QLoRA). ``lora_targets`` and
    ``rank`` are checked as ``check_lora`` does (duplicates counted once, 'all-linear' anywhere = every block
    module, 'lm_head' adapts the output layer).
    """
    if method not in MEMORY_METHODS:
        raise UserError(f"method: '{method}' trains nothing; choose one of: {', '.join(MEMORY_METHODS)}")
    p = check_precision(precision)
    counts = param_counts(shape)
    tokens = batch_size * seq_len
    logit_positions = batch_size * min(loss_tokens_per_sequence or seq_len, seq_len)
    full = method == "full"
    targets = () if full else check_lora(shape, rank, lora_targets)
    block_targets = tuple(name for name in targets if name != HEAD_MODULE)
    adapter_params = 0 if full else lora_trainable_params(shape, rank, targets)
    if gradient_checkpointing is None:
        gradient_checkpointing = default_gradient_checkpointing(method)

    if full:
        weights = counts.total * p.weight
    elif method == "qlora":
        weights = (
            counts.block_linear * QUANTIZED_BYTES_PER_PARAM[settings.quantization]
            + (counts.total - counts.block_linear) * p.frozen_weight
        )
    else:
        weights = counts.total * p.frozen_weight

    per_layer = layer_activation_bytes(
        shape, p, norms_trained=full, linear_inputs=method != "lora", compiled=settings.compile
    )
    if block_targets:
        per_layer += lora_activation_bytes(shape, p, block_targets, rank, lora_dropout, settings.adapter_dtype)
    kept_layers = OFFLOAD_LAYERS_RESIDENT if settings.activation_offload else shape.num_layers
    if gradient_checkpointing:
        # transformers checkpoints each decoder layer: only its input (a*h per token) is kept, and one layer's
        # activations are rebuilt at a time in the backward pass
        activations = tokens * (kept_layers * p.activation * shape.hidden_size + per_layer)
    else:
        activations = tokens * min(kept_layers, shape.num_layers) * per_layer
    if HEAD_MODULE in targets:
        activations += logit_positions * lora_activation_bytes(
            shape, p, (HEAD_MODULE,), rank, lora_dropout, settings.adapter_dtype
        )

    if settings.loss == "chunked":
        # the loss runs chunk by chunk: the logits and the log-probabilities it saves for its backward stay for every
        # position in 16 bits (2a), the three fp32 working copies exist for one chunk at a time. Checked against
        # torchtune's chunked-CE row (Llama-3.2-3B, 2 x 4096 tokens: 8.1 GiB saved, 5.3 B per logit left; this
        # gives 5.5)
        loss_bytes_per_logit = 2 * p.activation + 4 * LOSS_FP32_COPIES / LOSS_CHUNKS
    else:
        loss_bytes_per_logit = p.activation + 4 * LOSS_FP32_COPIES

    largest_matrix = max(d_in * d_out for d_in, d_out in shape.linear_dims().values())
    largest_param = max(largest_matrix, shape.vocab_size * shape.hidden_size)
    # torch's foreach AdamW materialises sqrt(v) for every parameter at once, in the updated copy's dtype; the
    # fused and bitsandbytes optimizers work one tensor at a time
    foreach = settings.optimizer == "adamw" and not settings.optimizer_in_backward
    step_temporary_bytes = (4 if p.master_weight else p.weight) if foreach else 0
    # optimizer in backward: each gradient is applied and freed as soon as it is ready, so at most the largest
    # parameter's gradient is alive; otherwise every trained parameter's gradient waits for the step
    gradients = (largest_param if settings.optimizer_in_backward else counts.total) * p.gradient if full else 0
    return TrainingMemory(
        weights=weights,
        gradients=gradients,
        master_weights=counts.total * p.master_weight if full else 0,
        optimizer_states=counts.total * optimizer_bytes_per_param(settings, p.optimizer) if full else 0,
        lora_adapters=adapter_params * adapter_bytes_per_param(settings),
        activations=activations,
        logits_and_loss=logit_positions * shape.vocab_size * loss_bytes_per_logit,
        dequantisation_buffer=largest_matrix * 2 if method == "qlora" else 0,
        lm_head_gradient=shape.vocab_size * shape.hidden_size * p.gradient if full else 0,
        optimizer_step_temporaries=(
            counts.total * step_temporary_bytes
            if full
            else adapter_params * ADAPTER_ELEMENT_BYTES_BY_DTYPE[settings.adapter_dtype]
            if foreach
            else 0
        ),
        gradients_during_forward=full and settings.gradient_accumulation > 1 and not settings.optimizer_in_backward,
    )
