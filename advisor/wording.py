"""How numbers and arms read in the recommendation's sentences and in the report: one place, one style."""

from __future__ import annotations

from harness.record import Hardware
from harness.strategies import traits


def usd(value: float | None) -> str:
    """$1,234 from $100 up, $12.34 from $0.10, two significant digits below ($0.0042)."""
    if value is None:
        return "—"
    if value == 0:
        return "$0"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if abs(value) >= 0.1 else f"${value:.2g}"


def count(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def strategy_name(strategy: str) -> str:
    """'lora' -> 'LoRA': the strategy's display name."""
    return traits(strategy).display_name


def hardware_name(device: Hardware) -> str:
    """What a run was measured on, from harness.meters.hardware: 'NVIDIA A10G', 'a 2-core CPU (AMD EPYC)'."""
    if device.gpu:
        return device.gpu
    return f"a {device.cpu_count or '?'}-core CPU ({device.cpu or 'unknown model'})"
