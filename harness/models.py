"""Loading base models and tokenizers: packaged GGUF (converted once to a local cache), local dirs, HF ids.

A model loaded with ``gguf_file=`` is dequantised to fp32 but still marked quantized, which stops
``save_pretrained`` and full fine-tuning (see ../shared/notes/verified-facts.md). So the first load
converts it once: drop ``quantization_config``, build the model from its config, load the
dequantised weights and save a plain safetensors copy in the cache; later loads take ~0.5 s.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from harness.catalog import ModelRef
from harness.errors import UserError


def cache_root() -> Path:
    """Converted models live here (override with ADVISOR_CACHE)."""
    return Path(os.environ.get("ADVISOR_CACHE") or Path.home() / ".cache" / "advisor")


def _gguf_cache_dir(ref: ModelRef) -> Path:
    assert ref.gguf_file is not None  # only packaged and local GGUF models are converted
    gguf = Path(ref.location) / ref.gguf_file
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_root() / "models" / f"{gguf.stem}-{key}"


def _convert_gguf(ref: ModelRef, target: Path) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = ref.location
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=ref.gguf_file)
    quantized = AutoModelForCausalLM.from_pretrained(src, gguf_file=ref.gguf_file)
    config = AutoConfig.from_pretrained(src, gguf_file=ref.gguf_file)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # tied lm_head may be absent from the state dict; anything else missing is a real problem
    missing = [k for k in missing if not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.generation_config = quantized.generation_config
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target) if not target.exists() else shutil.rmtree(tmp)


def local_dir(ref: ModelRef) -> str:
    """A directory or HF id that ``from_pretrained`` can load fast (GGUF converted once)."""
    if not ref.gguf_file:
        return ref.location
    target = _gguf_cache_dir(ref)
    if not (target / "config.json").exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _convert_gguf(ref, target)
    return str(target)


def torch_dtype(device: str):
    """bf16 on GPUs that support it, fp32 elsewhere (CPU bf16 matmuls are slow or emulated)."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def load_tokenizer(ref: ModelRef):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(local_dir(ref))
    except OSError as err:
        raise UserError(
            f"model: cannot load tokenizer of '{ref.name}' ({str(err).splitlines()[0]}); "
            f"check the model name, or download it to a local folder on a machine with internet"
        ) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise UserError(f"model: '{ref.name}' has no chat template; use an instruction-tuned (chat) model")
    return tokenizer


def load_model(ref: ModelRef, device: str, place_on: str | None = None, quantization=None):
    """The base causal LM in ``device``'s precision, on ``place_on`` (default: ``device``), in eval mode.

    ``quantization``: a ``transformers.BitsAndBytesConfig`` loads the base quantised (QLoRA's 4-bit base)
    straight onto ``device`` with a device_map: bitsandbytes quantises as the weights arrive on the GPU, and the
    model is not moved afterwards (older bitsandbytes refuse ``.to()`` on it), so ``place_on`` does not apply.
    """
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": torch_dtype(device)}
    if quantization is not None:
        kwargs.update(quantization_config=quantization, device_map={"": _device_index(device)})
    try:
        model: Any = AutoModelForCausalLM.from_pretrained(local_dir(ref), **kwargs)
    except OSError as err:
        raise UserError(
            f"model: cannot load '{ref.name}' ({str(err).splitlines()[0]}); "
            f"check the model name, or download it to a local folder on a machine with internet"
        ) from None
    if quantization is None:
        model.to(place_on or device)
    model.eval()
    return model


def _device_index(device: str):
    """device_map's target: 'cuda:1' as is; plain 'cuda' is the current CUDA device (the one this process set)."""
    if device == "cuda":
        import torch

        return torch.cuda.current_device()
    return device
