"""A tuned arm's trained weights, kept between its trial and its final run.

A trial of a fine-tuning arm trains on train and is scored on the validation split; the arm's final run - the
chosen trial scored on test - loads that trial's weights instead of training again (as the Trainer's
``load_best_model_at_end`` would), so tuning costs one training per grid point, not one more. Only what
trained is kept: a LoRA's adapters, a full fine-tune's every weight. The folder is removed once the arm's final
run has its record.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.record import TrainInfo
from harness.typedjson import from_jsonable, to_jsonable

WEIGHTS = "trained.pt"
TRAIN_INFO = "train_info.json"


def save(model: Any, info: TrainInfo, folder: Path) -> None:
    """The trainable parameters of ``model`` (on the CPU) and the training's record, in ``folder``."""
    import torch  # only the runs that train get here: compare checks and removes folders without torch

    folder.mkdir(parents=True, exist_ok=True)
    trained = {name: p.detach().to("cpu").clone() for name, p in model.named_parameters() if p.requires_grad}
    torch.save(trained, folder / WEIGHTS)
    (folder / TRAIN_INFO).write_text(json.dumps(to_jsonable(info)), encoding="utf-8")


def exists(folder: Path | None) -> bool:
    return folder is not None and (folder / WEIGHTS).is_file() and (folder / TRAIN_INFO).is_file()


def load(model: Any, folder: Path) -> TrainInfo:
    """Load the saved trainable parameters into ``model`` (built as the trial built it: same base, same adapters)
    and return the trial's training record. Every saved tensor must find its parameter."""
    import torch

    state = torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)
    params = dict(model.named_parameters())
    unknown = [name for name in state if name not in params]
    if unknown:
        raise RuntimeError(
            f"checkpoint {folder}: {len(unknown)} saved tensors match no parameter (first: {unknown[0]})"
        )
    with torch.no_grad():
        for name, tensor in state.items():
            params[name].copy_(tensor.to(params[name].device, params[name].dtype))
    info: TrainInfo = from_jsonable(TrainInfo, json.loads((folder / TRAIN_INFO).read_text(encoding="utf-8")))
    return info


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
