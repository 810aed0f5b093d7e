"""Serving cost: tokens per request for each approach, GPU time per request, requests per GPU-hour, $ per month.

A request is a prefill (the whole prompt in one forward pass: compute-bound, 2*N FLOPs per token) and a
decode (one forward pass per output token; each step reads every weight and the running requests' KV cache
from memory, so it is bandwidth-bound until the batch is large enough to be compute-bound). Continuous
batching (vLLM-style) decodes up to ``max_batch`` requests together, as many as their KV caches fit.
A model that does not fit on one device is split over several (tensor parallel, assumed to scale
perfectly). Time to first token (TTFT) is one request's prefill on an idle replica (with a fixed serving batch:
the prefill of that many requests arriving together): the larger of its FLOPs at the prefill efficiency and one
read of the weights at the decode efficiency; queueing under steady load is not modelled. Fine-tuned weights are
served in 16 bits unless the settings say otherwise: LoRA adapters merged into them, as the harness does; a QLoRA
adapter merged into a 16-bit copy of its base, the usual deployment (the harness measures it unmerged on the 4-bit
base, since merging into 4-bit weights would round the update away). So every approach serves the same base
network; they differ in prompt length.

Serving methods (a strategy names its own in its traits): prompt = instruction and worked examples in every
prompt; rag = instruction and retrieved chunks, plus embedding the query; fine-tuned = the message alone. A
fine-tuned model served with retrieval (lora+rag, full+rag) is a rag request on its own weights: its training is
priced apart (advisor.pricing prices every arm that trains from its run, whatever its serving method).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from advisor.costs.compute import Utilisation, default_utilisation, peak_flops
from advisor.costs.inference_memory import (
    InferenceMemory,
    inference_memory,
    kv_cache_bytes_per_token,
    serving_precision,
)
from advisor.costs.memory import usable_memory
from advisor.costs.settings import ServingSettings
from advisor.costs.shapes import ModelShape, param_counts
from harness import catalog
from harness.errors import UserError
from harness.units import GIB

SERVING_METHODS = ("prompt", "rag", "fine-tuned")
HOURS_PER_MONTH = 730  # 8,760 hours a year / 12
RAG_EMBEDDER = "all-minilm-l6-v2"  # the harness's default retriever embeds each query with it


@dataclass(frozen=True)
class RequestShape:
    """Tokens of one request by part. Defaults measured on the shipped support-intents task with
    SmolLM2's tokenizer (2026-11-23): message 24 tokens, instruction with the label list 57, chat template
    14, one worked example 36, answer 3 + end-of-turn; RAG chunks: the quillfeather handbook cut into the
    harness's 120-word chunks, 139 tokens each, 3 per prompt (the rag strategy's default top_k)."""

    input_tokens: int = 24
    output_tokens: int = 4
    template_tokens: int = 14
    instruction_tokens: int = 57
    shots: int = 4
    shot_tokens: int = 36
    rag_chunks: int = 3
    chunk_tokens: int = 139

    @classmethod
    def measured(cls, prompt_tokens: float | None, output_tokens: float | None) -> RequestShape:
        """A request as a run measured it: the whole prompt as sent (instruction, shots, retrieved context
        included) and the generated tokens."""
        return cls(
            input_tokens=max(1, round(prompt_tokens or 1)),
            output_tokens=max(1, round(output_tokens or 1)),
            template_tokens=0,
            instruction_tokens=0,
            shots=0,
            rag_chunks=0,
        )

    def prompt_tokens(self, method: str) -> int:
        """Prompting pays the instruction and the worked examples on every call, RAG the retrieved chunks;
        a fine-tuned model has learned the task and gets the message alone (the instruction: none setting)."""
        context = 0
        if method == "prompt":
            context = self.instruction_tokens + self.shots * self.shot_tokens
        elif method == "rag":
            context = self.instruction_tokens + self.rag_chunks * self.chunk_tokens
        return self.template_tokens + context + self.input_tokens


@dataclass(frozen=True)
class ServingEstimate:
    model: str
    method: str
    gpu: str
    monthly_requests: int
    prompt_tokens: int
    output_tokens: int
    gpus_per_replica: int
    batch: int  # requests decoded together
    memory: InferenceMemory  # one replica at that batch
    prefill_flops: float  # per request (query embedding included for RAG)
    prefill_seconds: float  # replica time per request
    ttft_seconds: float  # first token of one request on an idle replica (of a burst of serving_batch requests)
    output_tokens_per_second: float  # the replica's decode throughput, all requests together
    decode_step_seconds: float  # one step of the whole batch
    decode_bound: str  # memory bandwidth | compute
    replica_seconds_per_request: float
    requests_per_replica_hour: float  # at the load factor
    replicas: int
    usd_per_month: float
    usd_per_1k_requests: float  # marginal: replica-hours actually used per 1,000 requests
    prefill_mfu: Utilisation
    decode_bandwidth_utilisation: Utilisation
    load_factor: Utilisation
    notes: tuple[str, ...] = field(default_factory=tuple)
    settings: ServingSettings = ServingSettings()

    @property
    def fits(self) -> bool:
        return self.gpus_per_replica == 1

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(memory=self.memory.as_dict(), fits=self.fits, gpus=self.gpus, notes=list(self.notes))
        return data


def estimate_serving(
    model_shape: ModelShape | str,
    method: str,
    gpu: str,
    monthly_requests: int,
    *,
    request: RequestShape = RequestShape(),
    settings: ServingSettings = ServingSettings(),
) -> ServingEstimate:
    """What serving ``monthly_requests`` requests with ``method`` costs on catalog device ``gpu``; ``settings``:
    batch, tensor parallelism, weight and KV-cache precision (advisor.costs.settings.ServingSettings)."""
    if method not in SERVING_METHODS:
        raise UserError(f"method: unknown '{method}'; choose one of: {', '.join(SERVING_METHODS)}")
    if monthly_requests < 0:
        raise UserError(f"monthly_requests: {monthly_requests} is negative; use 0 or more")
    shape = ModelShape.from_catalog(model_shape) if isinstance(model_shape, str) else model_shape
    device = catalog.check_gpu(gpu)
    fp8 = settings.weight_precision == "fp8"
    if (fp8 or settings.kv_cache_dtype == "fp8") and not device.get("peak_tflops_fp8_dense"):
        raise UserError(f"weight_precision/kv_cache_dtype: fp8 needs FP8 tensor cores, which {gpu} has not")
    prefill_mfu = default_utilisation("serving", "prefill_mfu")
    bandwidth_utilisation = default_utilisation("serving", "decode_bandwidth_utilisation")
    load = default_utilisation("serving", "load_factor")
    max_batch = int(catalog.utilisation()["serving"]["max_batch"]["value"])
    usable = usable_memory(device)

    precision = serving_precision(device)
    n_params = param_counts(shape).total
    prompt, output = request.prompt_tokens(method), request.output_tokens

    def memory_at(batch: int) -> InferenceMemory:
        return inference_memory(
            shape, batch_size=batch, prompt_tokens=prompt, output_tokens=output, precision=precision, settings=settings
        )

    one = memory_at(1)
    per_request = one.kv_cache + one.logits
    gpus_per_replica = settings.tensor_parallel or max(1, math.ceil(one.total / usable))
    room_for_requests = gpus_per_replica * usable - one.weights - one.prefill_activations
    batch = settings.serving_batch or max(1, min(max_batch, int(room_for_requests // per_request)))
    memory = memory_at(batch)

    # compute-bound work (prefill, and decode once the batch is large) runs at the prefill MFU; FP8 weights run
    # FP8 matmuls (W8A8, as TensorRT-LLM's and vLLM's FP8 checkpoints do)
    replica_flops = gpus_per_replica * peak_flops(device, "fp8" if fp8 else precision) * prefill_mfu.value
    replica_bandwidth = gpus_per_replica * device["memory_bandwidth_gbs"] * 1e9 * bandwidth_utilisation.value
    prefill_flops = 2 * n_params * prompt
    if method == "rag":
        prefill_flops += 2 * catalog.embedders()[RAG_EMBEDDER]["params"] * request.input_tokens
    prefill_seconds = prefill_flops / replica_flops
    # a burst of serving_batch requests (a benchmark's concurrent start) is prefilled before any decodes
    ttft_seconds = max(prefill_seconds * (settings.serving_batch or 1), memory.weights / replica_bandwidth)
    # one decode step: read the weights once and each running request's KV cache (half-grown on average)
    kv_per_token = kv_cache_bytes_per_token(shape, precision, settings)
    bytes_per_step = memory.weights + batch * (prompt + output / 2) * kv_per_token
    memory_seconds = bytes_per_step / replica_bandwidth
    compute_seconds = 2 * n_params * batch / replica_flops
    step_seconds = max(memory_seconds, compute_seconds)
    replica_seconds = prefill_seconds + output * step_seconds / batch
    per_hour = 3600 * load.value / replica_seconds
    replicas = math.ceil(monthly_requests / (per_hour * HOURS_PER_MONTH)) if monthly_requests else 0
    usd_per_gpu_hour = device["usd_per_hour"]
    notes = []
    if gpus_per_replica > 1:
        notes.append(
            f"{shape.name} does not fit on one {gpu} for serving: {gpus_per_replica} per replica (tensor parallel)"
        )
    if memory.total > gpus_per_replica * usable:
        notes.append(
            f"batch {batch} needs {memory.total / GIB:.1f} GiB, more than {gpus_per_replica} x {usable / GIB:.1f} GiB "
            "usable: lower --serving-batch or raise --tensor-parallel"
        )
    return ServingEstimate(
        model=shape.name,
        method=method,
        gpu=gpu,
        monthly_requests=monthly_requests,
        prompt_tokens=prompt,
        output_tokens=output,
        gpus_per_replica=gpus_per_replica,
        batch=batch,
        memory=memory,
        prefill_flops=prefill_flops,
        prefill_seconds=prefill_seconds,
        ttft_seconds=ttft_seconds,
        output_tokens_per_second=output / replica_seconds,
        decode_step_seconds=step_seconds,
        decode_bound="memory bandwidth" if memory_seconds >= compute_seconds else "compute",
        replica_seconds_per_request=replica_seconds,
        requests_per_replica_hour=per_hour,
        replicas=replicas,
        usd_per_month=replicas * gpus_per_replica * HOURS_PER_MONTH * usd_per_gpu_hour,
        usd_per_1k_requests=1000 * gpus_per_replica * usd_per_gpu_hour / per_hour,
        prefill_mfu=prefill_mfu,
        decode_bandwidth_utilisation=bandwidth_utilisation,
        load_factor=load,
        notes=tuple(notes),
        settings=settings,
    )
