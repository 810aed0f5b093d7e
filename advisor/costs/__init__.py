"""Cost models: memory, training compute, serving and data, itemised, from data/catalog/*.yaml. No torch.

  estimate_training(model, method, gpu, examples, seq_len, epochs, batch_size, rank, ...) -> TrainingEstimate
  job_overhead(job_bytes(...), gpu, compute_seconds=..., gpus=..., measured=...) -> JobOverhead (a job's fixed
  part: start-up, model load, evaluation, checkpoint save, billing rounding; TrainingEstimate.fixed)
  estimate_serving(model, method, gpu, monthly_requests, request=RequestShape(...))      -> ServingEstimate
  data_cost(examples, DataCostConfig(...))                                                -> DataCost
  calibrate_utilisation(run records, gpu) -> {strategy: Utilisation}  (measured, for estimate_training)
  measured_training(run record) -> MeasuredTraining (its FLOPs, seconds, hardware); gpu_hours(flops, device,
  precision, utilisation) and gpu_hours_usd(hours, usd_per_hour) price those FLOPs on another device

Every result has ``.as_dict()``; its items are in bytes, FLOPs, hours and USD.
"""

from advisor.costs.compute import (
    MeasuredTraining,
    Utilisation,
    calibrate_utilisation,
    default_utilisation,
    gpu_hours,
    gpu_hours_usd,
    measured_training,
    training_flops,
)
from advisor.costs.data_cost import DataCost, DataCostConfig, data_cost, data_cost_config
from advisor.costs.inference_memory import inference_memory
from advisor.costs.job_overhead import JobBytes, JobOverhead, MeasuredPhases, job_bytes, job_overhead
from advisor.costs.memory import MEMORY_METHODS, PRECISIONS, training_memory
from advisor.costs.serving import SERVING_METHODS, RequestShape, ServingEstimate, estimate_serving
from advisor.costs.settings import ServingSettings, TrainingSettings
from advisor.costs.shapes import ModelShape, lora_trainable_params, param_counts
from advisor.costs.training import TrainingEstimate, estimate_training

__all__ = [
    "MEMORY_METHODS",
    "PRECISIONS",
    "SERVING_METHODS",
    "DataCost",
    "DataCostConfig",
    "JobBytes",
    "JobOverhead",
    "MeasuredPhases",
    "MeasuredTraining",
    "ModelShape",
    "RequestShape",
    "ServingEstimate",
    "ServingSettings",
    "TrainingEstimate",
    "TrainingSettings",
    "Utilisation",
    "calibrate_utilisation",
    "data_cost",
    "data_cost_config",
    "default_utilisation",
    "estimate_serving",
    "estimate_training",
    "gpu_hours",
    "gpu_hours_usd",
    "inference_memory",
    "job_bytes",
    "job_overhead",
    "lora_trainable_params",
    "measured_training",
    "param_counts",
    "training_flops",
    "training_memory",
]
