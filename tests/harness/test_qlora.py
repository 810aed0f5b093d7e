"""The qlora arm: it refuses a device it cannot run on at once, builds QLoRA's 4-bit loading config, and
runs its flow (kbit preparation, LoRA, training, serving the adapter unmerged) on CPU with the 4-bit load
swapped for a plain one; the real 4-bit path runs where there is a GPU with bitsandbytes."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from harness import models
from harness.errors import UserError
from harness.record import StrategyInfo
from harness.runner import RunContext, run_variant
from harness.strategies import STRATEGIES, check_device, qlora, traits
from harness.strategies.base import unavailable_reason
from harness.strategies.qlora import QloraConfig
from harness.task import load_examples, load_task
from tests.conftest import run_info

# LoRA on every linear layer (the default) of the tiny Llama (2 layers, hidden 64, kv dim 32, MLP 128): 1024
# adapter parameters per unit of rank per layer (see test_strategies)
ADAPTER_PARAMS_R4 = 2 * 1024 * 4


def context(task_path, device: str = "cpu") -> RunContext:
    task = load_task(task_path)
    data = load_examples(task)
    return RunContext(task=task, data=data, train=data.train, test=data.test[:2], device=device, seed=0, progress=False)


def tiny_variant(**overrides):
    config = QloraConfig(rank=4, epochs=1, batch_size=4, learning_rate=5e-4, min_optimizer_steps=0, **overrides)
    return STRATEGIES["qlora"].variants(config)[0]


def test_a_cpu_is_refused_in_one_line_before_anything_loads(classification_task, monkeypatch):
    reason = unavailable_reason("qlora", traits("qlora"), "cpu")
    assert reason.startswith("strategies.qlora: ") and "\n" not in reason
    assert "CUDA GPU" in reason and "on cpu" in reason and "--skip qlora" in reason and "--device cuda" in reason

    with pytest.raises(UserError) as err:
        check_device("qlora", "cpu")
    assert str(err.value) == reason
    for name in ("prompt", "rag", "lora", "full"):
        assert check_device(name, "cpu") is None  # they run anywhere

    def no_loading(self, quantization=None):
        raise AssertionError("qlora loaded a model on a CPU")

    monkeypatch.setattr(RunContext, "load_model", no_loading)
    with pytest.raises(UserError) as err:
        STRATEGIES["qlora"].prepare(context(classification_task), tiny_variant())
    assert str(err.value) == reason and len(str(err.value).splitlines()) == 1


def test_a_gpu_without_bitsandbytes_is_told_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # makes `import bitsandbytes` fail, installed or not
    reason = unavailable_reason("qlora", traits("qlora"), "cuda:0")
    assert reason == (
        "strategies.qlora: QLoRA needs the bitsandbytes package: pip install 'bitsandbytes>=0.45' "
        "(or pip install -e '.[gpu]')"
    )
    with pytest.raises(UserError, match="bitsandbytes>=0.45"):
        check_device("qlora", "cuda")


def test_a_broken_bitsandbytes_install_says_what_failed(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "bitsandbytes":
            raise RuntimeError("CUDA Setup failed despite GPU being available\nlong diagnostics ...")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    reason = unavailable_reason("qlora", traits("qlora"), "cuda")
    assert reason.startswith("strategies.qlora: QLoRA needs the bitsandbytes package")
    assert reason.endswith("; importing it failed: CUDA Setup failed despite GPU being available")


def test_the_4bit_config_is_qloras_recipe(monkeypatch):
    from transformers import BitsAndBytesConfig

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    bnb = qlora.quantization_config(QloraConfig(), "cuda:0")
    assert isinstance(bnb, BitsAndBytesConfig)
    assert bnb.load_in_4bit and not bnb.load_in_8bit
    assert bnb.bnb_4bit_quant_type == "nf4" and bnb.bnb_4bit_use_double_quant is True
    assert bnb.bnb_4bit_compute_dtype == torch.bfloat16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a T4 or V100
    fp4 = qlora.quantization_config(QloraConfig(quant_type="fp4", double_quant=False), "cuda:0")
    assert fp4.bnb_4bit_quant_type == "fp4" and fp4.bnb_4bit_use_double_quant is False
    assert fp4.bnb_4bit_compute_dtype == torch.float16

    assert QloraConfig().gradient_checkpointing is True and QloraConfig().learning_rate == [3e-4, 1e-3, 1e-4]
    assert QloraConfig(rank=8).memory_settings()["quantization"] == "nf4-dq"
    assert QloraConfig(rank=8, double_quant=False).memory_settings()["quantization"] == "nf4"


def test_task_files_configure_qlora_by_name(classification_task):
    body = classification_task.read_text()
    full = "  full: {epochs: 1, batch_size: 4, min_optimizer_steps: 0, learning_rate: 5.0e-5}"
    classification_task.write_text(
        body.replace(full, "  qlora: {rank: 16, quant_type: fp4, data_fractions: [0.5, 1.0]}")
    )
    config = load_task(classification_task).strategy_configs["qlora"]
    assert isinstance(config, QloraConfig)
    assert (config.rank, config.quant_type, config.double_quant) == (16, "fp4", True)
    # the grid (LoRA's default learning rates); data fractions are run after the choice
    assert [v.name for v in STRATEGIES["qlora"].variants(config)] == [
        "r16-lr0.0003-fp4",
        "r16-lr0.001-fp4",
        "r16-lr0.0001-fp4",
    ]

    classification_task.write_text(body.replace(full, "  qlora: {quant_type: int3}"))
    with pytest.raises(UserError, match="strategies.qlora.quant_type"):
        load_task(classification_task)


def test_models_load_4bit_onto_the_gpu_without_moving_it(classification_task, monkeypatch):
    from transformers import AutoModelForCausalLM

    calls = []

    class Loaded:
        def to(self, *args, **kwargs):
            raise AssertionError("a bitsandbytes model cannot be moved")

        def eval(self):
            return self

    def from_pretrained(location, **kwargs):
        calls.append(kwargs)
        return Loaded()

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", from_pretrained)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    ref = load_task(classification_task).model_ref
    bnb = qlora.quantization_config(QloraConfig(), "cpu")
    models.load_model(ref, "cuda:1", quantization=bnb)
    models.load_model(ref, "cuda", place_on="cpu", quantization=bnb)  # place_on cannot apply to a 4-bit model
    assert calls[0]["quantization_config"] is bnb and calls[0]["device_map"] == {"": "cuda:1"}
    assert calls[1]["device_map"] == {"": 3}  # plain 'cuda' is the current device


def test_the_flow_trains_adapters_and_serves_them_unmerged(classification_task, monkeypatch):
    """On CPU: the 4-bit load is swapped for the plain model, everything after it is qlora's own code."""
    import peft

    from harness.evaluate import Generator, render_prompt

    real_load = models.load_model
    asked = []

    def plain_load(ref, device, place_on=None, quantization=None):
        asked.append(quantization)
        return real_load(ref, device, place_on)

    monkeypatch.setattr(qlora, "unavailable_reason", lambda name, traits, device: None)
    monkeypatch.setattr(models, "load_model", plain_load)
    ctx = context(classification_task)
    variant = tiny_variant()
    assert variant.name == "r4-nf4"
    prepared = STRATEGIES["qlora"].prepare(ctx, variant)

    assert len(asked) == 1 and asked[0].load_in_4bit and asked[0].bnb_4bit_quant_type == "nf4"
    assert isinstance(prepared.model, peft.PeftModel)  # the adapter, not merged into the base
    assert prepared.info == StrategyInfo(
        merged_for_inference=False, base_quantization="nf4 + double quant", compute_dtype="float16"
    )  # fp16 off a bf16 GPU
    info = prepared.train_info
    assert len(info.loss_curve) == info.optimizer_steps == 3  # 12 examples, batch 4, 1 epoch
    assert all(math.isfinite(x) for x in info.loss_curve)
    base_params = sum(p.numel() for p in real_load(ctx.task.model_ref, "cpu").parameters())
    assert info.trainable_params == ADAPTER_PARAMS_R4
    assert info.total_params == base_params + ADAPTER_PARAMS_R4
    assert info.quantization["quant_type"] == "nf4" and info.quantization["double_quant"] is True
    assert info.quantization["quantized_modules"] == 0  # the stand-in is unquantised
    assert info.quantization["base_memory_mib"] > 0
    assert prepared.model.is_activation_checkpointing  # QLoRA's default

    # training moved the adapters: peft starts every lora_B at zero
    lora_b = [p for name, p in prepared.model.named_parameters() if "lora_B" in name]
    assert len(lora_b) == 2 * 7 and all(p.abs().sum() > 0 for p in lora_b)

    messages = prepared.build_messages(ctx.test[0])
    assert messages[0]["role"] == "system" and messages[-1]["content"] == ctx.test[0].input
    ((text, prompt_tokens, output_tokens),) = Generator(prepared.model, prepared.tokenizer, 4, "cpu")(
        [render_prompt(prepared.tokenizer, messages)]
    )
    assert prompt_tokens > 10 and 1 <= output_tokens <= 4 and isinstance(text, str)


@pytest.mark.gpu
def test_the_real_4bit_path_on_a_gpu(classification_task, tiny_model_dir):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    reason = unavailable_reason("qlora", traits("qlora"), "cuda")
    if reason:
        pytest.skip(reason)
    from transformers import AutoModelForCausalLM

    ctx = context(classification_task, device="cuda")
    variant = tiny_variant()
    record = run_variant(ctx, variant, run_info(ctx.task, variant, device="cuda"))
    assert record.ok, record.error
    quantization = record.train_info.quantization
    assert quantization["quantized_modules"] == 2 * 7  # q, k, v, o, gate, up, down in each of 2 layers
    assert quantization["compute_dtype"] == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    # parameters counted unpacked (bitsandbytes stores two 4-bit weights per byte)
    base_params = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model_dir).parameters())
    assert record.train_info.total_params == base_params + ADAPTER_PARAMS_R4
    assert all(math.isfinite(x) for x in record.train_info.loss_curve)
    assert record.strategy_info.merged_for_inference is False
    assert len(record.predictions) == 2


def test_compare_refuses_qlora_on_a_cpu_before_any_run_and_skip_leaves_it_out(classification_task, tmp_path):
    """The CLI's compare: one line, exit 2, nothing run or written; --skip qlora runs the rest."""
    from tests.advisor.test_cli import run

    task = classification_task.read_text().replace("strategies:\n", "strategies:\n  qlora: {rank: 4, epochs: 1}\n")
    classification_task.write_text(task)
    out = tmp_path / "out"
    proc = run("compare", str(classification_task), "--out", str(out), "--device", "cpu", "--only", "prompt,qlora")
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.strip().count("\n") == 0
        and "QLoRA needs a CUDA GPU" in proc.stderr
        and "--skip qlora" in proc.stderr
    )
    assert not out.exists()
    from harness.compare import run_compare
    from harness.compare_options import CompareOptions

    results = run_compare(
        load_task(classification_task),
        CompareOptions(out_dir=out, device="cpu", only=["prompt", "qlora"], skip=["qlora"], progress=False),
        isolate=False,
        log=lambda _: None,
    )
    assert {run.record.run_info.strategy for run in results.runs} == {"prompt"}
