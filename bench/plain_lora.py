"""A plain LoRA baseline, outside advisor's harness: SmolLM2-135M-Instruct, r8 on all linear layers, batch 1,
lr 3e-4, 300 steps on a task's train split; greedy decoding of its test split, scored by the task's metric.

Only the task files, the answer parser and metric, and the packaged model's path come from the harness, so that
the data, the evaluator and the model are the ones advisor's arms use; the training and decoding are plain
transformers + peft + torch.

    python bench/plain_lora.py data/tasks/support-intents.yaml [--steps 300] [--limit N]
"""

import argparse
import random
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, get_linear_schedule_with_warmup

from harness.metrics import METRICS
from harness.models import local_dir
from harness.prompts import format_answer, parse_output, render_instruction
from harness.task import load_examples, load_task

ap = argparse.ArgumentParser()
ap.add_argument("task")
ap.add_argument("--steps", type=int, default=300)
ap.add_argument("--limit", type=int, default=None, help="at most this many test examples")
args = ap.parse_args()
torch.manual_seed(0)
task = load_task(args.task)
data = load_examples(task)
system = render_instruction(task, data)
path = local_dir(task.model_ref)
tok = AutoTokenizer.from_pretrained(path)
model = get_peft_model(
    AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32),
    LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"),
)


def prompt(text):
    chat = [{"role": "system", "content": system}, {"role": "user", "content": text}]
    return tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)


start = time.perf_counter()
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4, fused=True)  # as the Trainer
sched = get_linear_schedule_with_warmup(opt, 0, args.steps)
order: list = []
model.train()
for step in range(args.steps):  # batch 1: one example per step, epoch after epoch in a fresh order
    order = order or random.Random(step).sample(data.train, len(data.train))
    ex = order.pop()
    p_ids = tok(prompt(ex.input), add_special_tokens=False)["input_ids"]
    a_ids = tok(format_answer(task, ex.target) + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + a_ids])
    loss = model(input_ids=ids, labels=torch.tensor([[-100] * len(p_ids) + a_ids])).loss  # loss on the answer only
    loss.backward()
    opt.step(), sched.step(), opt.zero_grad()
    if (step + 1) % 50 == 0:
        print(f"step {step + 1}: loss {loss.item():.3f}, {time.perf_counter() - start:.0f} s", flush=True)
train_seconds = time.perf_counter() - start

model.eval()
tok.padding_side = "left"
test = data.test[: args.limit] if args.limit else data.test
scores = []
for i in range(0, len(test), 16):
    batch = test[i : i + 16]
    enc = tok([prompt(ex.input) for ex in batch], return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=task.max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
    for ex, row in zip(batch, out[:, enc["input_ids"].shape[1] :], strict=True):
        answer = str(tok.decode(row, skip_special_tokens=True))
        scores.append(METRICS[task.metric](parse_output(task, data, answer), ex.target))
print(f"task {task.name}: {task.metric} {sum(scores) / len(scores):.4f} on {len(scores)} test examples")
print(f"train {train_seconds:.1f} s for {args.steps} steps at batch 1; wall {time.perf_counter() - start:.1f} s")
