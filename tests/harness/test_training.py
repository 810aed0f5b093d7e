"""Training examples: loss on the answer only, prompts cut from the left, knowledge windows."""

import pytest
from transformers import AutoTokenizer

from harness import prompts
from harness.task import Example
from harness.training import answer_item, text_items


def test_answer_item_masks_the_prompt(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = prompts.messages("Classify.", Example("1", "I was charged twice", "billing"))
    item = answer_item(tok, msgs, "billing", max_len=256)
    assert len(item.input_ids) == len(item.labels)
    answer = [t for t in item.labels if t != -100]
    n_masked = item.labels.index(answer[0])
    assert all(x == -100 for x in item.labels[:n_masked])
    assert tok.decode(answer).startswith("billing<|im_end|>")
    prompt = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert tok.decode(item.input_ids[:n_masked]) == prompt


def test_long_prompts_are_cut_from_the_left_keeping_the_answer(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = prompts.messages("Classify.", Example("1", "word " * 500, "refund"))
    item = answer_item(tok, msgs, "refund", max_len=64)
    assert len(item.input_ids) == 64
    assert tok.decode([t for t in item.labels if t != -100]).startswith("refund")


def test_text_items_train_on_every_token_in_windows(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    items = text_items(tok, ["alpha beta gamma " * 50], max_len=32)
    assert len(items) > 1 and all(len(it.input_ids) <= 32 and it.labels == it.input_ids for it in items)


def test_answer_window_loss_equals_the_full_logits_loss(tiny_model_dir):
    """Left padding + logits only for the answer window must give the standard causal-LM loss."""
    import torch
    from transformers import AutoModelForCausalLM

    from harness.training import AnswerWindowCollator, answer_window_loss

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    rows = []
    for text, answer in (("short", "billing"), ("a much longer message about a refund " * 3, "refund please")):
        item = answer_item(tok, prompts.messages("Classify.", Example("1", text, answer)), answer, max_len=256)
        rows.append({"input_ids": item.input_ids, "labels": item.labels})
    batch = AnswerWindowCollator(tok.pad_token_id)(rows)
    assert batch["window"] < batch["input_ids"].shape[1] // 2  # the saving is real
    with torch.no_grad():
        fast = answer_window_loss(model, batch)
        # reference: each row alone, unpadded, with the model's own shifted loss over all positions
        losses, counts = [], []
        for r in rows:
            out = model(input_ids=torch.tensor([r["input_ids"]]), labels=torch.tensor([r["labels"]]))
            n = sum(1 for x in r["labels"][1:] if x != -100)
            losses.append(out.loss * n)
            counts.append(n)
    assert fast.item() == pytest.approx((sum(losses) / sum(counts)).item(), rel=1e-4)


def test_fsdp_weights_are_gathered_into_a_plain_model_on_the_main_process(tiny_model_dir, monkeypatch):
    """What runs after FSDP training, with the gather faked (Accelerate has no FSDP on CPU): the full state dict
    from the trainer's accelerator becomes a fresh unsharded model that generates like the trained one."""
    from types import SimpleNamespace

    import torch
    from transformers import AutoModelForCausalLM

    from harness import distributed
    from harness.training import _unsharded

    trained = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        trained.model.layers[0].mlp.up_proj.weight.add_(1.0)  # "training" changed it
    state = {k: v.clone() for k, v in trained.state_dict().items() if k != "lm_head.weight"}  # tied: not saved
    trainer = SimpleNamespace(model_wrapped=trained, accelerator=SimpleNamespace(get_state_dict=lambda model: state))
    plain = _unsharded(trainer, trained, "cpu")
    assert plain is not trained
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(plain(ids).logits, trained(ids).logits)
    monkeypatch.setattr(distributed, "is_main_process", lambda: False)
    assert _unsharded(trainer, trained, "cpu") is None  # the other processes only take part in the gather
    state["model.norm.weight"] = state.pop("model.norm.weight")[:-1]
    with pytest.raises(RuntimeError):
        monkeypatch.setattr(distributed, "is_main_process", lambda: True)
        _unsharded(trainer, trained, "cpu")
