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

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

from harness import catalog
from harness.errors import UserError
from harness.record import Hardware, RunRecord
from harness.strategies import traits

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

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}


def training_flops(
    total_params: int,
    trainable_params: int,
    tokens: float,
    *,
    gradient_checkpointing: bool = False,
    lm_head_params: int = 0,
    lm_head_tokens: float | None = None,
    lm_head_trained: bool = False,
) -> TrainingFlops:
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def padded_seq_len(seq_len: int, mean_seq_len: int | None, batch_size: int, packing: bool) -> float:
    """Tokens per example the device computes on. Packed: the example's own (every token real). Unpacked: each
    batch is padded to its longest example; with lengths spread normally around the mean at the catalog's
    coefficient of variation (utilisation.yaml training.padding_length_cv), the longest of b is expected at
    mean x (1 + cv x z_b), z_b = Blom's expected maximum of b standard normals, Phi^-1((b - 0.375) / (b + 0.25)),
    and never beyond seq_len. Without a mean, every example is seq_len long and nothing is padded."""
    if mean_seq_len is None:
        return float(seq_len)
    if packing or batch_size == 1:
        return float(min(mean_seq_len, seq_len))
    cv = float(catalog.utilisation()["training"]["padding_length_cv"]["value"])
    z = NormalDist().inv_cdf((batch_size - 0.375) / (batch_size + 0.25))
    return min(float(seq_len), mean_seq_len * (1 + cv * z))


def training_utilisation(
    method: str, tokens_per_step_per_gpu: float, *, compile: bool = False, fp8: bool = False, gpus: int = 1
) -> Utilisation:
    """Training MFU as a curve (data/catalog/utilisation.yaml ``training``, fitted on published runs by
    bench/published_validation.py --fit): u = u_max[method] x T / (T + T_half) x compile_factor (torch.compile)
    x fp8_factor (of the FP8 peak) x gpus^-gpus_exponent (communication as a job spreads), T = tokens per
    optimizer step per GPU (micro-batch x padded length x gradient accumulation): small steps leave the device
    waiting on kernel launches, the optimizer step and the data loader."""
    entries = catalog.utilisation()["training"]
    u_max = float(entries[method]["u_max"])
    half = float(entries["tokens_half"]["value"])
    value = u_max * tokens_per_step_per_gpu / (tokens_per_step_per_gpu + half)
    factors = [f"{u_max:.3g} x T/(T + {half:.4g}) at T = {tokens_per_step_per_gpu:,.0f} tokens/step/GPU"]
    if compile:
        value *= float(entries["compile_factor"]["value"])
        factors.append(f"x {entries['compile_factor']['value']} compiled")
    if fp8:
        value *= float(entries["fp8_factor"]["value"])
        factors.append(f"x {entries['fp8_factor']['value']} of the FP8 peak")
    if gpus > 1:
        value *= gpus ** -float(entries["gpus_exponent"]["value"])
        factors.append(f"x {gpus}^-{entries['gpus_exponent']['value']} over {gpus} GPUs")
    return Utilisation(value=value, source="curve: " + " ".join(factors) + " (data/catalog/utilisation.yaml)")


def default_utilisation(section: str, key: str) -> Utilisation:
    """An entry of data/catalog/utilisation.yaml (training: full|lora|qlora; serving: ...; memory: ...)."""
    entry = catalog.utilisation()[section][key]
    return Utilisation(value=float(entry["value"]), source=f"default: {entry['source']}")


PEAK_KEYS = {"fp32": "peak_tflops_fp32", "fp8": "peak_tflops_fp8_dense"}  # others: the bf16 tensor rate


def peak_flops(gpu: dict[str, Any], precision: str) -> float:
    """FLOP/s the device can do at most in this precision (dense, no 2:4 sparsity)."""
    tflops = gpu.get(PEAK_KEYS.get(precision, "peak_tflops_bf16_dense"))
    if not tflops:
        raise UserError(f"precision: {gpu['display_name']} has no {precision} tensor rate in data/catalog/gpus.yaml")
    return float(tflops) * 1e12


def gpu_hours(flops: float, gpu: dict[str, Any], precision: str, utilisation: float) -> float:
    """Device-hours to do ``flops`` at ``utilisation`` of the device's peak: FLOPs / (peak x utilisation)."""
    return flops / (peak_flops(gpu, precision) * utilisation) / SECONDS_PER_HOUR


def gpu_hours_usd(hours: float, usd_per_hour: float) -> float:
    """What renting the devices costs: GPU-hours x price of one device-hour."""
    return hours * usd_per_hour


def catalog_gpu_for(hardware: Hardware) -> str | None:
    """The gpus.yaml entry a run's recorded hardware (harness.meters.hardware) matches: a CUDA run by
    the device name torch reports (``cuda_device_names``), a CPU run by its core count (``cpu_count``)."""
    for name, entry in catalog.gpus().items():
        if hardware.on_cuda and hardware.gpu in entry.get("cuda_device_names", ()):
            return name
        if not hardware.on_cuda and entry.get("kind") == "cpu" and entry.get("cpu_count") == hardware.cpu_count:
            return name
    return None


@dataclass(frozen=True)
class MeasuredTraining:
    """What calibration needs from one finished training run."""

    utilisation_key: str  # its strategy's (StrategyTraits.utilisation_key): runs of one key calibrate together
    flops: float
    seconds: float
    precision: str
    gpu: str | None  # the catalog entry of the hardware it ran on
    devices: int = 1  # GPUs it trained on at once (processes on one CPU machine share it: 1)
    tokens_per_step_per_gpu: float = 0.0  # what the utilisation curve is a function of

    @property
    def device_seconds(self) -> float:
        """What was paid for: wall time x devices."""
        return self.seconds * self.devices


def measured_training(record: RunRecord) -> MeasuredTraining | None:
    """The work a finished training run did and how long it took; None when it failed or trained nothing."""
    train, info = record.train_info, record.run_info
    key = traits(info.strategy).utilisation_key
    if not record.ok or train is None or key is None or not (train.tokens_trained and train.train_seconds):
        return None
    shape = info.model_shape
    head = shape.vocab_size * shape.hidden_size if shape else 0
    all_weights = traits(info.strategy).memory_method == "full"  # the LM head trains too
    flops = training_flops(
        train.total_params,
        train.trainable_params or train.total_params,
        train.tokens_trained,
        gradient_checkpointing=bool(info.params.get("gradient_checkpointing", False)),
        lm_head_params=head,
        lm_head_tokens=train.lm_head_positions if head else None,
        lm_head_trained=all_weights,
    ).total
    hardware = record.meta_info.hardware if record.meta_info else Hardware(device=info.device)
    return MeasuredTraining(
        utilisation_key=key,
        flops=flops,
        seconds=train.train_seconds,
        precision=train.precision or ("bf16" if hardware.on_cuda else "fp32"),
        gpu=catalog_gpu_for(hardware),
        devices=train.num_processes if hardware.on_cuda else 1,
        tokens_per_step_per_gpu=train.tokens_trained / max(1, train.optimizer_steps) / max(1, train.num_processes),
    )


def calibrate_utilisation(records: Iterable[RunRecord], gpu: str) -> dict[str, Utilisation]:
    """Measured training utilisation per utilisation key on catalog device ``gpu``: achieved FLOP/s / peak.

    Runs on other hardware, failed runs and runs without training are skipped; several runs of one key pool
    FLOPs and seconds.
    """
    return pool_utilisation([run for run in map(measured_training, records) if run is not None], gpu)


def pool_utilisation(runs: Iterable[MeasuredTraining], gpu: str) -> dict[str, Utilisation]:
    """``calibrate_utilisation`` from the measurements themselves (the runs on ``gpu`` among them)."""
    device = catalog.check_gpu(gpu)
    by_key: dict[str, list[MeasuredTraining]] = {}
    for run in runs:
        if run.gpu == gpu:
            by_key.setdefault(run.utilisation_key, []).append(run)
    result = {}
    for key, runs in by_key.items():
        achieved = sum(run.flops for run in runs) / sum(run.device_seconds for run in runs)  # per device
        peak = peak_flops(device, runs[0].precision)
        result[key] = Utilisation(
            value=achieved / peak,
            source=f"calibrated: {len(runs)} measured {key} run(s) on {gpu}, {achieved / 1e12:.3g} TFLOP/s "
            f"achieved of {peak / 1e12:.3g} peak ({runs[0].precision})",
        )
    return result
