"""Several processes for one fine-tuning run, through HF Accelerate (data parallel, or FSDP for full fine-tuning).

``advisor compare --num-processes N`` starts each LoRA/QLoRA/full run as ``accelerate launch`` of
``harness.worker`` (``harness.launch`` does it, see ``launch_command``): every process trains on its
share of each global batch through transformers' Trainer, which runs on Accelerate; gradients are
averaged (DDP) or parameters, gradients and optimizer states are sharded (FSDP). Then only the main
process evaluates and writes the record. On CPU the processes talk over gloo; on GPUs over NCCL,
one GPU per process. Accelerate runs FSDP on GPUs only.

The rank and world size come from the environment ``torchrun`` (inside ``accelerate launch``) sets.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from harness.errors import UserError

SHARDING_CHOICES = ("auto", "ddp", "fsdp")


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def process_device(device: str) -> str:
    """One GPU per process: 'cuda' becomes this process's 'cuda:<local rank>' under a launcher."""
    if device == "cuda" and world_size() > 1:
        return f"cuda:{local_rank()}"
    return device


def gather_objects(obj: Any) -> list[Any]:
    """``obj`` from every process, in rank order (just ``[obj]`` outside a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def die_with_parent() -> None:
    """Linux: get SIGTERM when the parent dies (even by kill -9), so no orphan keeps training. Every worker and
    launcher process asks for it."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: nothing to ask for
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def error_path(record_path: str | Path, process_rank: int) -> Path:
    """Where process ``process_rank`` (not the main one) of a multi-process run leaves its error."""
    record_path = Path(record_path)
    return record_path.with_name(f".{record_path.stem}.rank{process_rank}.error")


def check_processes(num_processes: int, device: str, sharding: str) -> None:
    """Fail before anything runs when the processes or the sharding cannot work on this device."""
    if sharding not in SHARDING_CHOICES:
        raise UserError(f"--sharding {sharding}: unknown; choose one of: {', '.join(SHARDING_CHOICES)}")
    if num_processes < 1:
        raise UserError(f"--num-processes {num_processes}: must be 1 or more")
    if device.startswith("cuda"):
        import torch

        if ":" in device and num_processes > 1:
            raise UserError(
                f"--device {device} with --num-processes {num_processes}: processes take one GPU each "
                f"(cuda:0 .. cuda:{num_processes - 1}); use --device cuda, and CUDA_VISIBLE_DEVICES to "
                f"choose the GPUs"
            )
        available = torch.cuda.device_count()
        if num_processes > available:
            raise UserError(
                f"--num-processes {num_processes}: only {available} CUDA device(s) here, one per process; "
                f"use --num-processes {available} or fewer"
            )
    elif sharding == "fsdp":
        raise UserError("--sharding fsdp: Accelerate runs FSDP on GPUs only; on CPU use --sharding ddp (or auto)")


def free_port() -> int:
    """A TCP port nobody listens on, for the processes' rendezvous (parallel compares must not collide)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(
    job_path: str | Path, num_processes: int, device: str, config_file: str | Path | None = None
) -> list[str]:
    """``accelerate launch`` of the worker for one run, as ``harness.launch`` runs it.

    With a user's accelerate config file (multi-node, a custom FSDP or DeepSpeed plan) its settings
    are used and only the process count is set here. Without one: N processes on this machine,
    torchrun-style (Accelerate's --multi_gpu launcher, which on a CPU machine starts gloo processes),
    mixed precision left to the Trainer (bf16 where the GPU has it).
    """
    cmd = [sys.executable, "-m", "harness.launch"]
    if config_file:
        cmd += ["--config_file", str(config_file), "--num_processes", str(num_processes)]
    else:
        cmd += [
            "--multi_gpu",
            "--num_processes",
            str(num_processes),
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
            "--main_process_port",
            str(free_port()),
        ]
        if not device.startswith("cuda"):
            cmd += ["--num_cpu_threads_per_process", str(max(1, (os.cpu_count() or 1) // num_processes))]
    return cmd + ["-m", "harness.worker", str(job_path)]
