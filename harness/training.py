"""Shared fine-tuning for the lora and full strategies: transformers' Trainer, loss on answers only.

Each training example is the evaluation prompt (same chat template, same instruction) followed by
the answer and the template's end-of-turn tokens; labels mask the prompt with -100 so the loss
counts answer tokens only. For a qa task with a knowledge corpus, the corpus chunks are added as
plain-text examples with loss on every token (knowledge injection, as in Ovadia et al. 2023,
"Fine-Tuning or Retrieval?").
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from dataclasses import dataclass

import torch
from transformers import Trainer, TrainingArguments
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from harness.errors import UserError
from harness.meters import PeakMemory, synchronize
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
    suffix = full[len(prompt):] if full.startswith(prompt) else answer + (tokenizer.eos_token or "")
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(suffix, add_special_tokens=False)["input_ids"][:max_len // 2]
    p_ids = p_ids[-(max_len - len(a_ids)):]  # cut long prompts from the left; keep the answer
    return TrainItem(input_ids=p_ids + a_ids, labels=[-100] * len(p_ids) + a_ids)


def text_items(tokenizer, texts: list[str], max_len: int) -> list[TrainItem]:
    """Plain-text (knowledge) examples, loss on every token, split into max_len windows."""
    items = []
    for text in texts:
        ids = tokenizer(text + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids), max_len):
            window = ids[start:start + max_len]
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
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "attention_mask": mask_t,
                "position_ids": (mask_t.cumsum(-1) - 1).clamp(min=0), "window": window}


def answer_window_loss(model, batch: dict) -> torch.Tensor:
    """Mean cross-entropy over answer tokens, computing logits only where they are needed."""
    window = int(batch["window"])
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "window")}
    width = labels.shape[1]
    keep = min(window + 1, width)  # position t predicts token t+1: one more logit than targets
    logits = model(**inputs, logits_to_keep=keep).logits[:, :-1].float()
    targets = labels[:, width - keep + 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=-100)


class _AnswerWindowTrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = answer_window_loss(model, inputs)
        return (loss, None) if return_outputs else loss


class _QuietProgress(ProgressCallback):
    """The Trainer's progress bar, showing the loss instead of printing every log dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.training_bar is not None and logs and "loss" in logs:
            self.training_bar.set_postfix(loss=logs["loss"], refresh=False)


def finetune(model, tokenizer, items: list[TrainItem], cfg: TrainingConfig, *, device: str, seed: int,
             progress: bool = True) -> dict:
    """Train ``model`` in place on ``items``; returns the run's train info (time, tokens, memory, losses)."""
    if not items:
        raise UserError("training: no training examples; add examples to data.train")
    use_bf16 = device.startswith("cuda") and torch.cuda.is_bf16_supported()
    with tempfile.TemporaryDirectory(prefix="advisor-train-") as out_dir:
        args = TrainingArguments(
            output_dir=out_dir,
            per_device_train_batch_size=cfg.batch_size,
            gradient_accumulation_steps=cfg.gradient_accumulation,
            num_train_epochs=cfg.epochs,
            learning_rate=cfg.learning_rate,
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
            gradient_checkpointing=cfg.gradient_checkpointing,
            train_sampling_strategy="group_by_length",  # batches of similar length: less padding
            remove_unused_columns=False,
            dataloader_num_workers=0,
            disable_tqdm=not progress,
        )
        if cfg.gradient_checkpointing and hasattr(model, "enable_input_require_grads"):
            model.enable_input_require_grads()  # needed when the embeddings are frozen (LoRA)
        trainer = _AnswerWindowTrainer(model=model, args=args, train_dataset=_Dataset(items),
                                       data_collator=AnswerWindowCollator(tokenizer.pad_token_id))
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
        model.eval()
        losses = [round(h["loss"], 4) for h in trainer.state.log_history if "loss" in h]
    if not losses or any(math.isnan(x) or math.isinf(x) for x in losses):
        raise RuntimeError(f"training diverged: loss became {losses[-1] if losses else 'undefined'}; "
                           f"lower learning_rate (now {cfg.learning_rate})")
    tokens_per_epoch = sum(len(it.input_ids) for it in items)
    loss_tokens_per_epoch = sum(sum(1 for x in it.labels if x != -100) for it in items)
    return {
        "train_seconds": round(seconds, 2),
        "examples": len(items),
        "epochs": cfg.epochs,
        "optimizer_steps": trainer.state.global_step,
        "tokens_trained": int(tokens_per_epoch * cfg.epochs),
        "loss_tokens": int(loss_tokens_per_epoch * cfg.epochs),
        "tokens_per_second": round(tokens_per_epoch * cfg.epochs / seconds, 1) if seconds else None,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "total_params": sum(p.numel() for p in model.parameters()),
        "final_loss": losses[-1],
        "train_loss_mean": round(result.training_loss, 4),
        "loss_curve": losses,
        "precision": "bf16" if use_bf16 else "fp32",
        **{f"train_{k}": v for k, v in memory.as_dict().items()},
    }


def training_subset(train: list, fraction: float, seed: int) -> list:
    """The first ceil(fraction x n) examples of one seeded permutation: smaller fractions are nested
    in larger ones, so learning-curve points differ only in how much data they saw."""
    order = random.Random(seed).sample(range(len(train)), len(train))
    keep = sorted(order[: math.ceil(fraction * len(train))])
    return [train[i] for i in keep]


def build_items(ctx, instruction: str | None, cfg: TrainingConfig, fraction: float = 1.0) -> list[TrainItem]:
    """Answer examples from (a fraction of) train, + knowledge chunks for qa tasks with a corpus."""
    from harness import prompts

    tok = ctx.tokenizer
    examples = training_subset(ctx.train, fraction, ctx.seed) if fraction < 1 else ctx.train
    items = [answer_item(tok, prompts.messages(instruction, ex), prompts.format_answer(ctx.task, ex.target), cfg.max_seq_len)
             for ex in examples]
    if ctx.task.kind == "qa" and ctx.task.knowledge_path:
        from harness.corpus import read_corpus

        items += text_items(tok, [doc.text for doc in read_corpus(ctx.task.knowledge_path)], cfg.max_seq_len)
    return items, len(examples)


def train_on_task(ctx, model, cfg: TrainingConfig, fraction: float, instruction: str | None) -> dict:
    """Fine-tune ``model`` on the task (the lora and full strategies differ only in what is trainable)."""
    items, labelled = build_items(ctx, instruction, cfg, fraction)
    info = finetune(model, ctx.tokenizer, items, cfg, device=ctx.device, seed=ctx.seed, progress=ctx.progress)
    return {**info, "examples_labelled": labelled, "data_fraction": fraction}
