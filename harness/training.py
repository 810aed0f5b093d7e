"""Shared fine-tuning for the lora and full strategies: transformers' Trainer, loss on answers only.

Each training example is the evaluation prompt (same chat template, same instruction) followed by
the answer and the template's end-of-turn tokens; labels mask the prompt with -100 so the loss
counts answer tokens only (a +rag arm's prompt holds its retrieved context only with
train_with_context: ``build_items`` takes its messages builder). For a qa task with a knowledge
corpus, the corpus chunks are added as plain-text examples with loss on every token (knowledge
injection, as in Ovadia et al. 2023, "Fine-Tuning or Retrieval?").
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeAlias

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from harness import checkpoints, distributed, prompts
from harness.corpus import read_corpus
from harness.errors import UserError
from harness.meters import PeakMemory, percentile, synchronize
from harness.record import MemoryUse, TrainInfo
from harness.schema import one
from harness.spec import Example

if TYPE_CHECKING:  # both import the strategy registry, whose fine-tuning strategies import this module
    from harness.runner import RunContext
    from harness.strategies.base import TrainingConfig

# Imported only by the fine-tuning strategies' prepare(), so torch/transformers at the top is fine.


@dataclass
class TrainItem:
    input_ids: list[int]
    labels: list[int]


def answer_item(tokenizer, messages: list[dict], answer: str, max_len: int) -> TrainItem:
    """prompt + answer tokens, loss on the answer (and the end-of-turn tokens) only."""
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    suffix = full[len(prompt) :] if full.startswith(prompt) else answer + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"][: max_len // 2]
    p_ids = p_ids[-(max_len - len(a_ids)) :]  # cut long prompts from the left; keep the answer
    return TrainItem(input_ids=p_ids + a_ids, labels=[-100] * len(p_ids) + a_ids)


def text_items(tokenizer, texts: list[str], max_len: int) -> list[TrainItem]:
    """Plain-text (knowledge) examples, loss on every token, split into max_len windows."""
    items = []
    for text in texts:
        ids = tokenizer(text + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids), max_len):
            window = ids[start : start + max_len]
            if len(window) > 1:
                items.append(TrainItem(input_ids=window, labels=list(window)))
    return items


class _Dataset:
    def __init__(self, items: list[TrainItem]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.items[i].input_ids, "labels": self.items[i].labels}


class AnswerWindowCollator:
    """Left-pads a batch so every row's answer ends at the last position.

    With answers aligned at the end, the loss needs logits only for the last ``window`` positions
    (``logits_to_keep``): the LM head and its softmax over the vocabulary, ~20% of a small model's
    FLOPs and a large share of its activation memory, then run on ~5 answer tokens instead of
    every prompt token. Position ids follow the attention mask, as generation computes them.
    """

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        width = max(len(r["input_ids"]) for r in rows)
        ids, labels, mask = [], [], []
        window = 1
        for r in rows:
            pad = width - len(r["input_ids"])
            ids.append([self.pad_id] * pad + r["input_ids"])
            labels.append([-100] * pad + r["labels"])
            mask.append([0] * pad + [1] * len(r["input_ids"]))
            first = next((i for i, x in enumerate(r["labels"]) if x != -100), len(r["labels"]))
            window = max(window, len(r["labels"]) - first)
        mask_t = torch.tensor(mask)
        return {
            "input_ids": torch.tensor(ids),
            "labels": torch.tensor(labels),
            "attention_mask": mask_t,
            "position_ids": (mask_t.cumsum(-1) - 1).clamp(min=0),
            "window": window,
        }


def logit_window(batch: dict) -> int:
    """Positions per row whose logits the loss needs: the answer window + 1 (position t predicts token t+1)."""
    return min(int(batch["window"]) + 1, batch["labels"].shape[1])


def answer_window_loss(model, batch: dict, num_items: int | torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over answer tokens, computing logits only where they are needed: their mean, or their
    sum / ``num_items`` (the answer tokens of the whole optimizer step, every micro-batch and process)."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "window")}
    width, keep = labels.shape[1], logit_window(batch)
    logits = model(**inputs, logits_to_keep=keep).logits[:, :-1].float()
    targets = labels[:, width - keep + 1 :]
    flat = (logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    if num_items is None:
        return torch.nn.functional.cross_entropy(*flat, ignore_index=-100)
    return torch.nn.functional.cross_entropy(*flat, ignore_index=-100, reduction="sum") / num_items


class _AnswerWindowTrainer(Trainer):
    """The Trainer with the answer-window loss, normalised like transformers' own causal-LM loss.

    The Trainer counts the answer tokens of a whole optimizer step over every micro-batch and process
    (``num_items_in_batch``, gathered across processes with ``average_tokens_across_devices``). Each
    micro-batch's loss is its token-loss sum over that count, times the number of processes because DDP
    and FSDP average gradients over processes: the step's gradient is then the mean over all its answer
    tokens, whatever the split into micro-batches and processes (a mean per micro-batch would weigh
    a one-token answer in a small batch like many tokens in a large one).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True  # our compute_loss takes num_items_in_batch, whatever the model
        self.lm_head_positions = 0  # where the LM head ran: the compute model charges its FLOPs only there
        # the largest micro-batch, for the memory model: the widest padded length and the widest logit window
        self.padded_len_max = 0
        self.logit_window_max = 0

    def _get_train_sampler(self, train_dataset=None):
        """Batches of similar length (less padding), grouped per *global* batch and shuffled by the data seed:
        the examples of each optimizer step then do not depend on how the step is split into micro-batches
        and processes (transformers' own grouping uses the per-process batch and the global torch RNG)."""
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        args = self.args
        global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
        return LengthGroupedSampler(
            global_batch,
            lengths=[len(it.input_ids) for it in dataset.items],
            generator=torch.Generator().manual_seed(args.data_seed if args.data_seed is not None else args.seed),
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = answer_window_loss(model, inputs, num_items_in_batch)
        rows, width = inputs["labels"].shape
        window = logit_window(inputs)
        self.lm_head_positions += rows * window
        self.padded_len_max = max(self.padded_len_max, int(width))
        self.logit_window_max = max(self.logit_window_max, window)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        return (loss, None) if return_outputs else loss


class _StepTimes(TrainerCallback):
    """Wall time of every optimizer step, GPU work included (step time is what the compute model predicts)."""

    def __init__(self, device: str):
        self.device, self._start = device, 0.0
        self.seconds: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        synchronize(self.device)
        self._start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        synchronize(self.device)
        self.seconds.append(time.perf_counter() - self._start)


class _QuietProgress(ProgressCallback):
    """The Trainer's progress bar, showing the loss instead of printing every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=logs["loss"], refresh=False)


def finetune(
    model: Any,
    tokenizer: Any,
    items: list[TrainItem],
    cfg: TrainingConfig,
    *,
    device: str,
    seed: int,
    progress: bool = True,
    sharding: str = "none",
) -> tuple[TrainInfo, Any]:
    """Train ``model`` on ``items``; returns (train info: time, tokens, memory, losses; the trained model).

    The trained model is ``model`` itself, except under FSDP, where each process holds a shard: the
    full weights are then gathered into a fresh unsharded copy on the main process (other processes
    get None). ``sharding`` is "none" (one process), "ddp" or "fsdp" (several, see harness.distributed).
    """
    if not items:
        raise UserError("training: no training examples; add examples to data.train")
    use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    fsdp = sharding == "fsdp"
    # the minimum number of optimizer steps: a smaller batch, then more epochs (harness.steps)
    plan = cfg.step_plan(len(items), distributed.world_size())
    with tempfile.TemporaryDirectory(prefix="advisor-train-") as out_dir:
        args = TrainingArguments(
            output_dir=out_dir,
            per_device_train_batch_size=plan.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation,
            num_train_epochs=plan.epochs,
            # raised epochs: exactly the minimum's steps (a fractional epoch count could round one step over)
            max_steps=plan.optimizer_steps if plan.epochs_raised else -1,
            learning_rate=one(cfg.learning_rate),
            lr_scheduler_type="linear",
            warmup_steps=cfg.warmup_ratio,  # a float < 1 is a fraction of all steps (transformers 5)
            weight_decay=cfg.weight_decay,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=seed,
            data_seed=seed,
            use_cpu=not device.startswith("cuda"),
            bf16=use_bf16,
            # under FSDP, FSDP's own activation checkpointing (the Trainer's would add an all-gather)
            gradient_checkpointing=cfg.gradient_checkpointing and not fsdp,
            fsdp=fsdp,  # type: ignore[arg-type]  # transformers 5 documents fsdp=True; its annotation says str
            fsdp_config={
                "version": 2,
                "reshard_after_forward": True,
                "state_dict_type": "FULL_STATE_DICT",
                "activation_checkpointing": cfg.gradient_checkpointing,
            }
            if fsdp
            else None,
            average_tokens_across_devices=True,  # loss = mean over the global batch's answer tokens
            ddp_find_unused_parameters=False,  # every trained weight takes part in each step: skip DDP's graph walk
            remove_unused_columns=False,
            dataloader_num_workers=0,
            disable_tqdm=not progress,
        )
        if cfg.gradient_checkpointing and not fsdp and hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # needed when the embeddings are frozen (LoRA)
        trainer = _AnswerWindowTrainer(
            model=model,
            args=args,
            train_dataset=_Dataset(items),
            data_collator=AnswerWindowCollator(tokenizer.pad_token_id),
        )
        step_times = _StepTimes(device)
        trainer.add_callback(step_times)
        # losses go to the record: no per-step dump of the log dict, with or without a progress bar
        trainer.remove_callback(PrinterCallback)
        if progress:
            trainer.remove_callback(ProgressCallback)
            trainer.add_callback(_QuietProgress())
        model.train()
        with PeakMemory(device) as memory:
            start = time.perf_counter()
            result = trainer.train()
            synchronize(device)
            seconds = time.perf_counter() - start
        losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
        processes = trainer.accelerator.num_processes
        # a collective: every process calls it
        per_process: list[tuple[MemoryUse, int, int, int]] = distributed.gather_objects(
            (memory.use(), trainer.lm_head_positions, trainer.padded_len_max, trainer.logit_window_max)
        )
        trained = _unsharded(trainer, model, device) if fsdp else model
    if trained is not None:
        trained.eval()
    if not losses or any(math.isnan(x) or math.isinf(x) for x in losses):
        raise RuntimeError(
            f"training diverged: loss became {losses[-1] if losses else 'undefined'}; "
            f"lower learning_rate (now {cfg.learning_rate})"
        )
    tokens_per_epoch = sum(len(it.input_ids) for it in items)
    loss_tokens_per_epoch = sum(sum(1 for x in it.labels if x != -100) for it in items)
    memories = [use for use, *_ in per_process]
    steady = step_times.seconds[1:] or step_times.seconds  # the first step pays for warm-up
    median_step = percentile(steady, 50)
    info = TrainInfo(
        train_seconds=round(seconds, 2),
        examples=len(items),
        epochs=plan.epochs,
        optimizer_steps=trainer.state.global_step,
        step_seconds_median=round(median_step, 4) if median_step is not None else None,
        first_step_seconds=round(step_times.seconds[0], 4) if step_times.seconds else None,
        tokens_trained=int(tokens_per_epoch * plan.epochs),
        loss_tokens=int(loss_tokens_per_epoch * plan.epochs),
        lm_head_positions=sum(positions for _, positions, _, _ in per_process),
        padded_len_max=max(width for *_, width, _ in per_process) or None,
        logit_window_max=max(window for *_, window in per_process) or None,
        tokens_per_second=round(tokens_per_epoch * plan.epochs / seconds, 1) if seconds else None,
        trainable_params=sum(p.numel() for p in (trained or model).parameters() if p.requires_grad),
        total_params=sum(p.numel() for p in (trained or model).parameters()),
        final_loss=losses[-1],
        train_loss_mean=round(result.training_loss, 4),
        loss_curve=losses,
        precision="bf16" if use_bf16 else "fp32",
        num_processes=processes,
        sharding=sharding if processes > 1 or fsdp else "none",
        global_batch_size=plan.batch_size * cfg.gradient_accumulation * processes,
        batch_size=plan.batch_size,
        min_optimizer_steps=cfg.min_optimizer_steps,
        min_steps_adjusted=plan.adjusted,
        # the process that used the most (they differ little under DDP; FSDP's main process also gathers the
        # full weights)
        memory=max(memories, key=lambda use: use.growth_mib),
        memory_per_process=memories if processes > 1 else None,
    )
    return info, trained


def _unsharded(trainer, model, device: str):
    """FSDP: gather every process's shard into one full state dict (a collective) and load it into a fresh,
    unsharded model on the main process, for evaluation and serving; None on the other processes."""
    from transformers import AutoModelForCausalLM

    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    if not distributed.is_main_process():
        return None
    fresh = AutoModelForCausalLM.from_config(model.config, dtype=next(iter(state.values())).dtype)
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(
            f"FSDP: gathered weights do not match the model: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    fresh.generation_config = model.generation_config
    return fresh.to(device)


def training_subset(train: list, fraction: float, seed: int) -> list:
    """The first ceil(fraction x n) examples of one seeded permutation: smaller fractions are nested
    in larger ones, so learning-curve points differ only in how much data they saw."""
    order = random.Random(seed).sample(range(len(train)), len(train))
    keep = sorted(order[: math.ceil(fraction * len(train))])
    return [train[i] for i in keep]


# What each training example's prompt is: a system prompt (the example alone under it, as lora/full/qlora train),
# or a function building the example's whole chat (the +rag arms: retrieved context in it, RAFT-style)
Prompt: TypeAlias = str | None | Callable[[Example], list[dict[str, str]]]


def build_items(
    ctx: RunContext, prompt: Prompt, cfg: TrainingConfig, fraction: float = 1.0, examples: list[Example] | None = None
) -> tuple[list[TrainItem], int]:
    """Answer examples from (a fraction of) train, each under ``prompt``, + knowledge chunks for qa tasks with a
    corpus; and how many of them are labelled examples. ``examples``: the subset already drawn (else drawn here)."""
    tok = ctx.tokenizer
    if examples is None:
        examples = training_subset(ctx.train, fraction, ctx.seed) if fraction < 1 else ctx.train
    chat = prompt if callable(prompt) else partial(prompts.messages, prompt)
    items = [answer_item(tok, chat(ex), prompts.format_answer(ctx.task, ex.target), cfg.max_seq_len) for ex in examples]
    if ctx.task.kind == "qa" and ctx.task.knowledge_path:
        items += text_items(tok, [doc.text for doc in read_corpus(ctx.task.knowledge_path)], cfg.max_seq_len)
    return items, len(examples)


def train_on_task(
    ctx: RunContext,
    model: Any,
    cfg: TrainingConfig,
    fraction: float,
    prompt: Prompt,
    examples: list[Example] | None = None,
) -> tuple[TrainInfo, Any]:
    """Fine-tune ``model`` on the task (the strategies differ only in what is trainable, and the +rag arms in the
    prompt, ``build_items``): (train info, trained model; see ``finetune``)."""
    if checkpoints.exists(ctx.load_checkpoint):  # a tuned arm's final run: the chosen trial's weights
        assert ctx.load_checkpoint is not None
        info = checkpoints.load(model, ctx.load_checkpoint)
        model.eval()
        return info, model
    items, labelled = build_items(ctx, prompt, cfg, fraction, examples)
    info, trained = finetune(
        model, ctx.tokenizer, items, cfg, device=ctx.device, seed=ctx.seed, progress=ctx.progress, sharding=ctx.sharding
    )
    info.examples_labelled, info.data_fraction = labelled, fraction
    if ctx.save_checkpoint and trained is not None:  # a trial: kept until its arm's final run
        checkpoints.save(trained, info, ctx.save_checkpoint)
    return info, trained
