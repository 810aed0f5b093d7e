"""``--set KEY=VALUE`` overrides of a task file (as torchtune and Hydra take them): ``strategies.lora.rank=16``.

The value is YAML (``yaml.safe_load``), so ``shots=[0]`` is a list and ``quality=0.9`` a number. The dotted key is
a path of mappings from the top of the task file; a missing mapping on the way is created. ``harness.task.load_task``
merges the overrides into the parsed file before it checks anything, so an override gets exactly the checks and the
one-line errors a value written in the file gets, and everything built from the task (its fingerprint, each run's
config hash, the records) holds the merged values.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from harness.errors import UserError


@dataclass(frozen=True)
class Override:
    key: str  # dotted, as the user wrote it
    value: Any  # parsed as YAML
    text: str  # KEY=VALUE as the user wrote it

    @property
    def path(self) -> list[str]:
        return self.key.split(".")


def parse_override(text: str) -> Override:
    """``KEY=VALUE`` -> an Override; a malformed one is a one-line UserError."""
    key, equals, raw = text.partition("=")
    key = key.strip()
    if not equals:
        raise UserError(f"--set {text}: expected KEY=VALUE, e.g. --set strategies.lora.rank=16")
    if not key or any(not part.strip() for part in key.split(".")):
        raise UserError(f"--set {text}: the key is empty or has an empty part; write a dotted key, e.g. goals.quality")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        why = " ".join(str(getattr(err, "problem", None) or err).split())
        raise UserError(f"--set {key}: the value {raw!r} is not valid YAML ({why}); quote it in the shell") from None
    return Override(".".join(part.strip() for part in key.split(".")), value, text)


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of the parsed task file ``raw`` with every ``KEY=VALUE`` set, in order (a later one wins)."""
    merged = copy.deepcopy(raw)
    for override in map(parse_override, overrides):
        node = merged
        for depth, part in enumerate(override.path[:-1]):
            child = node.get(part)
            if child is None:  # missing, or `prompt:` with nothing after it (the strategy's defaults)
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(override.path[: depth + 1])
                raise UserError(
                    f"--set {override.key}: {where} is {child!r} in the task file, not a mapping, so it has no key "
                    f"{override.path[depth + 1]!r}; set {where} itself"
                )
            node = child
        node[override.path[-1]] = override.value
    return merged


def blame(err: UserError, overrides: Sequence[str], file: str) -> UserError:
    """The task's error, naming the ``--set`` it came from when its key is one an override set (or lies on the
    way to one, or under one)."""
    message = str(err)
    rest = message.removeprefix(f"{file}: ")
    key = rest.split(": ", 1)[0] if rest != message else ""
    for override in reversed([parse_override(o) for o in overrides]):
        if key and (
            key == override.key
            or key.startswith((override.key + ".", override.key + "["))
            or override.key.startswith(key + ".")
        ):
            return UserError(f"{message} (from --set {override.text})")
    return err
