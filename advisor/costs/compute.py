"""Training compute: FLOPs, time at a stated utilisation, GPU-hours and dollars; utilisation defaults and
their calibration from measured runs.

FLOPs per trained token, after C = 6*N*D (Kaplan et al. 2020), N counting all parameters, embeddings included:
  forward                  2 * N   one multiply-add per parameter
  backward, input grads    2 * N   every layer passes the gradient down, frozen or not
  backward, weight grads   2 * N_trainable   only trained weights get one
  recompute (checkpointing) 2 * N  the forward again, layer by layer, in the backward pass
Full fine-tuning: 6*N. LoRA: 4*N + 2*N_adapter (the adapters' own forward and input-gradient FLOPs are
in N, which counts them): the frozen weights skip only their weight gradients, so LoRA saves a third of
the compute, not 99 %. QLoRA does the same FLOPs; dequantising the 4-bit weights shows up as lower
utilisation. Attention scores (12*layers*hidden*seq per token) are left out, as in 6*N*D: 2-10 % at
the sequence lengths of fine-tuning (most for small models), and calibration absorbs them. The LM head
(vocab x hidden) is charged only at the positions whose logits were computed, when a run says how many
(the harness's answer-window loss computes them for the answer tokens only).

time = FLOPs / (device peak FLOP/s x utilisation). Peak is the dense bf16 tensor rate on GPUs, the
fp32 rate for fp32 training (the harness on CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

from harness import catalog

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class TrainingFlops:
    forward: float
    input_gradients: float
    weight_gradients: float
    recompute: float

    @property
    def total(self) -> float:
        return self.forward + self.input_gradients + self.weight_gradients + self.recompute

    def as_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


def training_flops(total_params: int, trainable_params: int, tokens: float, *,
                   gradient_checkpointing: bool = False, lm_head_params: int = 0, lm_head_tokens: float | None = None,
                   lm_head_trained: bool = False) -> TrainingFlops:
    """FLOPs of training on ``tokens`` tokens (module docstring).

    ``lm_head_tokens``: positions whose logits were computed, when fewer than ``tokens``. The harness runs the
    LM head (``lm_head_params`` = vocab x hidden, tied or not) only on the answer window (``logits_to_keep``),
    so at the other positions its 2*P forward, 2*P input-gradient and, when it trains (full fine-tuning),
    2*P weight-gradient FLOPs never happen: for SmolLM2-135M that is 21 % of N at ~90 % of the positions.
    """
    skipped = lm_head_params * max(0.0, tokens - lm_head_tokens) if lm_head_tokens is not None else 0.0
    return TrainingFlops(
        forward=2 * total_params * tokens - 2 * skipped,
        input_gradients=2 * total_params * tokens - 2 * skipped,
        weight_gradients=2 * trainable_params * tokens - (2 * skipped if lm_head_trained else 0),
        recompute=2 * total_params * tokens - 2 * skipped if gradient_checkpointing else 0,
    )


@dataclass(frozen=True)
class Utilisation:
    """A fraction of the device's peak, and where it comes from (a catalog default or measured runs)."""

    value: float
    source: str

    def as_dict(self) -> dict:
        return asdict(self)


def default_utilisation(section: str, key: str) -> Utilisation:
    """An entry of data/catalog/utilisation.yaml (training: full|lora|qlora; serving: ...; memory: ...)."""
    entry = catalog.utilisation()[section][key]
    return Utilisation(value=float(entry["value"]), source=f"default: {entry['source']}")


def peak_flops(gpu: dict, precision: str) -> float:
    """FLOP/s the device can do at most in this precision (dense, no 2:4 sparsity)."""
    tflops = gpu["peak_tflops_fp32"] if precision == "fp32" else gpu["peak_tflops_bf16_dense"]
    return tflops * 1e12


def gpu_hours(flops: float, gpu: dict, precision: str, utilisation: float) -> float:
    """Device-hours to do ``flops`` at ``utilisation`` of the device's peak: FLOPs / (peak x utilisation)."""
    return flops / (peak_flops(gpu, precision) * utilisation) / SECONDS_PER_HOUR


def gpu_hours_usd(hours: float, usd_per_hour: float) -> float:
    """What renting the devices costs: GPU-hours x price of one device-hour."""
    return hours * usd_per_hour


def catalog_gpu_for(hardware: dict) -> str | None:
    """The gpus.yaml entry a run's recorded hardware (harness.meters.hardware) matches: a CUDA run by
    the device name torch reports (``cuda_device_names``), a CPU run by its core count (``cpu_count``)."""
    on_cuda = str(hardware.get("device", "")).startswith("cuda")
    for name, entry in catalog.gpus().items():
        if on_cuda and hardware.get("gpu") in entry.get("cuda_device_names", ()):
            return name
        if not on_cuda and entry.get("kind") == "cpu" and entry.get("cpu_count") == hardware.get("cpu_count"):
            return name
    return None


@dataclass(frozen=True)
class MeasuredTraining:
    """What calibration needs from one finished training run."""

    strategy: str
    flops: float
    seconds: float
    precision: str
    gpu: str | None  # the catalog entry of the hardware it ran on
    devices: int = 1  # GPUs it trained on at once (processes on one CPU machine share it: 1)

    @property
    def device_seconds(self) -> float:
        """What was paid for: wall time x devices."""
        return self.seconds * self.devices


def measured_training(record: dict) -> MeasuredTraining | None:
    """From a run record (train_info nested, hardware in meta_info) or a flat results.json-like row;
    None when the run failed or trained nothing."""
    run_info = record.get("run_info") or {}
    train = record.get("train_info") or record
    hardware = (record.get("meta_info") or {}).get("hardware") or record.get("hardware") or {}
    strategy = run_info.get("strategy") or record.get("strategy")
    needed = ("tokens_trained", "train_seconds", "total_params")
    if record.get("status", "ok") != "ok" or not strategy or not all(train.get(key) for key in needed):
        return None
    checkpointing = bool((run_info.get("params") or {}).get("gradient_checkpointing", False))
    shape = run_info.get("model_shape") or {}
    head = (shape.get("vocab_size") or 0) * (shape.get("hidden_size") or 0)
    flops = training_flops(train["total_params"], train.get("trainable_params") or train["total_params"],
                           train["tokens_trained"], gradient_checkpointing=checkpointing, lm_head_params=head,
                           lm_head_tokens=train.get("lm_head_positions") if head else None,
                           lm_head_trained=strategy == "full").total
    on_cuda = str(hardware.get("device", "")).startswith("cuda")
    return MeasuredTraining(strategy=strategy, flops=flops, seconds=train["train_seconds"],
                            precision=train.get("precision") or ("bf16" if on_cuda else "fp32"),
                            gpu=catalog_gpu_for(hardware), devices=int(train.get("num_processes") or 1) if on_cuda else 1)


def calibrate_utilisation(records: Iterable[dict], gpu: str) -> dict[str, Utilisation]:
    """Measured training utilisation per strategy on catalog device ``gpu``: achieved FLOP/s / peak.

    ``records``: run records or results.json-like rows with train_info's tokens_trained, train_seconds,
    trainable_params, total_params, precision, and the run's hardware. Runs on other hardware, failed
    runs and runs without training are skipped; several runs of one strategy pool FLOPs and seconds.
    """
    device = catalog.check_gpu(gpu)
    by_strategy: dict[str, list[MeasuredTraining]] = {}
    for record in records:
        run = measured_training(record)
        if run is not None and run.gpu == gpu:
            by_strategy.setdefault(run.strategy, []).append(run)
    result = {}
    for strategy, runs in by_strategy.items():
        achieved = sum(run.flops for run in runs) / sum(run.device_seconds for run in runs)  # per device
        peak = peak_flops(device, runs[0].precision)
        result[strategy] = Utilisation(
            value=achieved / peak,
            source=f"calibrated: {len(runs)} measured {strategy} run(s) on {gpu}, {achieved / 1e12:.3g} TFLOP/s "
                   f"achieved of {peak / 1e12:.3g} peak ({runs[0].precision})")
    return result
