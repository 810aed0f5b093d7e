"""How numbers and arms read in the recommendation's sentences and in the report: one place, one style."""

from __future__ import annotations

import math

from harness.record import Hardware
from harness.strategies import traits

SMALLEST_USD = 1e-6  # below a millionth of a dollar a figure reads "< $0.000001"


def usd(value: float | None) -> str:
    """Money, never in scientific notation: $1,234 from $100 up, $12.34 from $0.10, below that two significant
    digits in fixed decimals ($0.0042, $0.000027), and "< $0.000001" below a millionth of a dollar."""
    if value is None:
        return "—"
    if value < 0:
        return "-" + usd(-value) if value <= -SMALLEST_USD else "> -$0.000001"
    if value == 0:
        return "$0"
    if value < SMALLEST_USD:
        return "< $0.000001"
    value = float(f"{value:.2g}") if value < 0.1 else round(value, 2)  # 0.0999 -> 0.1, 99.999 -> 100
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 0.1:
        return f"${value:,.2f}"
    return "$" + f"{value:.{1 - math.floor(math.log10(value))}f}".rstrip("0")  # $0.000027, $0.001


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
