"""Meters: CPU peak memory sees an allocation; percentiles match numpy's default."""

import numpy as np
import pytest

from harness.meters import PeakMemory, hardware, package_versions, percentile
from harness.record import MemoryKind


def test_cpu_peak_memory_sees_a_300_mb_allocation():
    with PeakMemory("cpu") as outer, PeakMemory("cpu") as inner:
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        del block
    assert inner.use().growth_mib == pytest.approx(300, rel=0.2)
    assert outer.use().growth_mib >= inner.use().growth_mib * 0.95
    assert outer.use().kind is MemoryKind.CPU_RSS
    assert outer.use().peak_mib == pytest.approx(outer.use().baseline_mib + outer.use().growth_mib)


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0, 3.0, 4.0], list(range(1, 21))])
def test_percentile_matches_numpy(values):
    for q in (50, 95):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([], 50) is None


def test_hardware_and_versions_are_recorded():
    info = hardware("cpu")
    assert info.device == "cpu" and info.cpu_count >= 1 and info.memory_gib > 0 and not info.on_cuda
    versions = package_versions()
    assert versions["torch"] and versions["transformers"] and versions["python"]


class FakeCuda:
    """Stands in for torch.cuda's allocator counters (peak since the last reset, like the real ones)."""

    def __init__(self):
        self.allocated, self.peak = 0, 0

    def alloc(self, n):
        self.allocated += n
        self.peak = max(self.peak, self.allocated)

    def free(self, n):
        self.allocated -= n

    def reset_peak_memory_stats(self):
        self.peak = self.allocated


def test_cuda_peak_memory_nests_across_counter_resets(monkeypatch):
    import torch

    fake = FakeCuda()
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", fake.reset_peak_memory_stats)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda: fake.allocated)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda: fake.peak)
    monkeypatch.setattr(torch.cuda, "max_memory_reserved", lambda: fake.peak)
    mib = 2**20
    with PeakMemory("cuda") as run:
        fake.alloc(500 * mib)  # weights
        with PeakMemory("cuda") as train:
            fake.alloc(3000 * mib)  # activations
            fake.free(3000 * mib)
        with PeakMemory("cuda") as evaluate:  # resets the counters again: the run must keep train's peak
            fake.alloc(200 * mib)
            fake.free(200 * mib)
    assert train.use().growth_mib == 3000 and train.use().peak_mib == 3500
    assert evaluate.use().growth_mib == 200
    assert run.use().growth_mib == 3500 and run.use().kind is MemoryKind.CUDA_MAX_ALLOCATED
