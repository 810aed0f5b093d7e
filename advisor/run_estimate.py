"""One planned run of a compare estimated before it runs (``advisor plan``): how many GPUs it holds and for how long,
from the estimator's own functions - ``estimate_training`` (memory, GPUs, FLOPs at the utilisation curve, the fixed
part per job), ``job_overhead`` (the fixed part of a job that trains nothing), ``estimate_serving`` (evaluation
requests per replica-hour) - on the task's model shape and the planned GPU. No formula is re-derived here.

  training run        wall = FLOP GPU-hours / its GPUs + fixed seconds / 3600 (evaluation inside the fixed part)
  served trial        wall = fixed seconds / 3600 on a serving replica's GPUs: a tuned arm's final run that serves
                      its chosen trial's weights trains nothing (harness.compare; advisor.comparison_cost's rule)
  evaluation run      wall = fixed seconds / 3600 on a serving replica's GPUs (start-up, model load, evaluation)
  endpoint run        no GPU; wall = requests / max_concurrency x ENDPOINT_SECONDS_PER_REQUEST; tokens x its price
  evaluation seconds  = requests / the serving model's requests per replica-hour x 3600
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from advisor.costs import RequestShape, estimate_serving, estimate_training
from advisor.costs.compute import SECONDS_PER_HOUR
from advisor.costs.job_overhead import STORED_BYTES_PER_WEIGHT, JobBytes, job_bytes, job_overhead
from advisor.costs.settings import split_settings
from advisor.costs.shapes import param_counts
from advisor.costs.training import TrainingEstimate
from harness import catalog
from harness.errors import UserError
from harness.shapes import ModelShape
from harness.spec import Task
from harness.strategies import STRATEGIES, TrainingConfig, Variant, traits
from harness.strategies.base import training_config

# No catalog holds a hosted endpoint's latency: an assumed round trip for a short chat completion, used only to
# place endpoint runs in time (they hold no GPU, so no GPU-hour or dollar depends on it)
ENDPOINT_SECONDS_PER_REQUEST = 1.0


@dataclass(frozen=True)
class Estimate:
    """What one run needs and takes."""

    gpus: int  # 0: an endpoint run
    train_hours: float  # wall clock of the FLOP part (FLOP GPU-hours / gpus)
    fixed_hours: float  # wall clock of the fixed part per job, evaluation included
    usd_per_gpu_hour: float
    examples: int = 0  # training items (0: trains nothing)
    requests: int = 0  # evaluation requests (validation, test, latency, load test)
    input_tokens: int = 0  # endpoint runs: all requests together
    output_tokens: int = 0
    api_usd: float | None = None  # endpoint runs at a per-token price; None: none known
    serves_trial: bool = False
    notes: tuple[str, ...] = ()

    @property
    def hours(self) -> float:
        return self.train_hours + self.fixed_hours


@dataclass(frozen=True)
class RunEstimator:
    """Estimates the runs of one task on one GPU type, in a cluster of ``gpus_per_node`` x ``nodes``."""

    task: Task
    shape: ModelShape
    gpu: str
    precision: str  # what the harness trains in on that GPU (advisor.costs.memory.default_precision)
    n_train: int  # after the validation split is carved out
    n_validation: int
    n_test: int
    gpus_per_node: int
    nodes: int
    corpus_docs: int = 0  # a qa task's knowledge documents: trained on as plain text (harness.training.build_items)
    mean_seq_len: int | None = None  # tokens per training example for time; None: max_seq_len

    @property
    def usd_per_gpu_hour(self) -> float:
        return float(catalog.gpus()[self.gpu]["usd_per_hour"])

    def run(
        self, variant: Variant, *, role: str, serves_trial: bool = False, with_validation: bool = False
    ) -> Estimate:
        """One run of ``variant`` as compare makes it: ``role`` trial (validation) or final (test); ``serves_trial``:
        a final that loads its chosen trial's weights; ``with_validation``: a final that scores validation too."""
        requests = self.n_validation if role == "trial" else self.n_test + self._latency_requests()
        requests += self.n_validation if with_validation else 0
        if variant.params.get("endpoint"):
            return self._endpoint(variant, role, requests)
        serving = estimate_serving(
            self.shape, traits(variant.strategy).serving_method, self.gpu, 0, request=self.request_shape(variant)
        )
        # evaluation seconds = requests / requests per replica-hour x 3600 (comparison_cost's serving price basis)
        eval_s = requests / serving.requests_per_replica_hour * SECONDS_PER_HOUR
        replica = serving.gpus_per_replica
        if replica > self.gpus_per_node * self.nodes:
            raise UserError(
                f"{variant.strategy} {variant.name}: serving {self.shape.name} needs {replica} x {self.gpu}, the "
                f"cluster has {self.nodes} x {self.gpus_per_node}; add GPUs"
            )
        if not traits(variant.strategy).trains:
            # a job that trains nothing: start-up, model load and evaluation; it saves no checkpoint
            job = JobBytes(model=param_counts(self.shape).total * STORED_BYTES_PER_WEIGHT, checkpoint=0)
            fixed = job_overhead(job, self.gpu, compute_seconds=0, gpus=replica, eval_seconds=eval_s)
            return Estimate(replica, 0.0, fixed.seconds / SECONDS_PER_HOUR, self.usd_per_gpu_hour, requests=requests)
        return self._training(variant, eval_s, requests, replica, serves_trial)

    def _latency_requests(self) -> int:
        # the first latency_requests test examples are also timed one at a time (advisor.comparison_cost._requests)
        return min(self.task.spec.evaluation.latency_requests, self.n_test)

    def request_shape(self, variant: Variant) -> RequestShape:
        """Tokens of one request: the estimator's defaults with the variant's shots or top_k; the answer: the
        defaults' (measured on a classification task) for classification, the task's generation cap otherwise."""
        params, method = variant.params, traits(variant.strategy).serving_method
        output = RequestShape.output_tokens if self.task.kind == "classification" else self.task.max_new_tokens
        if method == "prompt":
            return RequestShape(shots=int(params.get("shots", RequestShape.shots)), output_tokens=output)
        if method == "rag":
            top_k = int(params.get("top_k") or RequestShape.rag_chunks)
            # without a corpus, RAG retrieves labelled examples: each one is a shot's length
            chunk = RequestShape.chunk_tokens if self.task.knowledge_path else RequestShape.shot_tokens
            return RequestShape(rag_chunks=top_k, chunk_tokens=chunk, output_tokens=output)
        return RequestShape(output_tokens=output)

    def _training(self, variant: Variant, eval_s: float, requests: int, replica: int, serves_trial: bool) -> Estimate:
        config_type = STRATEGIES[variant.strategy].config_type
        assert issubclass(config_type, TrainingConfig)
        config, fraction = training_config(config_type, dict(variant.params))
        # a data fraction trains on its first ceil(fraction x n) examples (harness.training.training_subset)
        examples = math.ceil(fraction * self.n_train) + self.corpus_docs
        kwargs, settings = split_settings(config.memory_settings())
        if self.mean_seq_len:
            settings = dataclasses.replace(settings, mean_seq_len=self.mean_seq_len)
        method = traits(variant.strategy).memory_method
        assert method is not None

        def estimate(gpus: int | None) -> TrainingEstimate:
            return estimate_training(
                self.shape,
                method,
                self.gpu,
                examples=examples,
                epochs=config.epochs,
                precision=self.precision,
                settings=dataclasses.replace(settings, gpus=gpus),
                eval_seconds=eval_s,
                min_optimizer_steps=config.min_optimizer_steps,
                **kwargs,
            )

        alone = estimate(None)
        fewest = alone.gpus_needed
        if fewest is None:
            raise UserError(
                f"{variant.strategy} {variant.name}: its activations alone overflow one {self.gpu}; lower batch_size "
                f"or max_seq_len, or turn on gradient_checkpointing in the task file"
            )
        # a run spanning nodes takes whole ones: accelerate launches as many processes on each machine
        gpus = fewest if fewest <= self.gpus_per_node else math.ceil(fewest / self.gpus_per_node) * self.gpus_per_node
        if gpus > self.gpus_per_node * self.nodes:
            raise UserError(
                f"{variant.strategy} {variant.name}: needs {fewest} x {self.gpu} (FSDP shards), the cluster has "
                f"{self.nodes} x {self.gpus_per_node}; add nodes (--nodes), or lower batch_size or turn on "
                f"gradient_checkpointing in the task file"
            )
        trained = alone if gpus == 1 else estimate(gpus)  # steps and utilisation over that many devices
        if serves_trial:
            # the chosen trial's weights loaded and scored (advisor.pricing.fixed_part's job: its base model, its
            # checkpoint), on a serving replica's GPUs; its training is the trial's
            job = job_bytes(
                trained.total_params, method, trained_params=trained.trainable_params, precision=self.precision
            )
            fixed = job_overhead(job, self.gpu, compute_seconds=0, gpus=replica, eval_seconds=eval_s)
            return Estimate(
                replica,
                0.0,
                fixed.seconds / SECONDS_PER_HOUR,
                self.usd_per_gpu_hour,
                examples=examples,
                requests=requests,
                serves_trial=True,
            )
        return Estimate(
            trained.gpus,
            trained.gpu_hours / trained.gpus,  # the FLOP GPU-hours shared by its devices: wall clock
            trained.fixed.seconds / SECONDS_PER_HOUR,
            self.usd_per_gpu_hour,
            examples=examples,
            requests=requests,
            notes=tuple(n for n in trained.notes if "does not fit one" not in n),
        )

    def _endpoint(self, variant: Variant, role: str, requests: int) -> Estimate:
        endpoint = self.task.endpoints[variant.params["endpoint"]]
        request = self.request_shape(variant)
        load_test = self.task.spec.evaluation.load_test if role == "final" else None
        levels = load_test.concurrency if load_test else []
        n_load = len(levels) * (load_test.requests if load_test else 0)
        total = requests + n_load
        # wall = requests / requests in flight x seconds per request, the load test level by level
        seconds = requests / endpoint.spec.max_concurrency * ENDPOINT_SECONDS_PER_REQUEST
        seconds += sum(
            (load_test.requests if load_test else 0) / level * ENDPOINT_SECONDS_PER_REQUEST for level in levels
        )
        tokens_in = total * request.prompt_tokens(traits(variant.strategy).serving_method)
        tokens_out = total * request.output_tokens
        price = endpoint.price if endpoint.spec.self_hosted is None else None
        notes = []
        if endpoint.spec.self_hosted is not None:
            notes.append("self-hosted: priced per GPU-hour from its measured load test, not planned here")
        elif price is None:
            notes.append(f"no price known for {endpoint.spec.model}: not priced")
        return Estimate(
            0,
            0.0,
            seconds / SECONDS_PER_HOUR,
            self.usd_per_gpu_hour,
            requests=total,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            api_usd=price.usd(tokens_in, tokens_out) if price else None,
            notes=tuple(notes),
        )
