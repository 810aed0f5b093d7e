"""How numbers and arms read in the recommendation's sentences and in the report: one place, one style."""

from __future__ import annotations

NAMES = {"prompt": "prompting", "rag": "RAG", "lora": "LoRA", "qlora": "QLoRA", "full": "full fine-tuning"}


def usd(value) -> str:
    """$1,234 from $100 up, $12.34 from $0.10, two significant digits below ($0.0042)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if abs(value) >= 0.1 else f"${value:.2g}"


def count(value) -> str:
    return "—" if value is None else f"{value:,.0f}"


def strategy_name(strategy: str) -> str:
    """'lora' -> 'LoRA'; a measured combination such as 'lora+rag' -> 'LoRA + RAG'."""
    return " + ".join(NAMES.get(part, part) for part in strategy.split("+"))


def hardware_name(device: dict) -> str:
    """What a run was measured on, from harness.meters.hardware: 'NVIDIA A10G', 'a 2-core CPU (AMD EPYC)'."""
    if device.get("gpu"):
        return str(device["gpu"])
    return f"a {device.get('cpu_count', '?')}-core CPU ({device.get('cpu') or 'unknown model'})"
