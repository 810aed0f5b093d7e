"""The one small interface every strategy implements, the traits it declares, and the shared training config.

A strategy turns (task, one variant of its config) into a ``Prepared`` predictor: a model, its tokenizer, and a
function that builds the chat messages for one example. Evaluation, metering and recording are the same for
every strategy and live outside (``harness.evaluate``, ``harness.runner``). What a strategy *is* - whether it
trains, how it is served and priced, how much memory it needs, where it can run - is its ``StrategyTraits``,
declared beside its implementation and read by the advisor; nothing else keeps a table keyed by strategy name.

Nothing here imports torch: the advisor reads the registry without it (a strategy's ``prepare`` imports what it
needs to run).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum, IntEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from harness.record import StrategyInfo, TrainInfo
from harness.schema import doc
from harness.steps import DEFAULT_MIN_OPTIMIZER_STEPS, StepPlan, step_plan

if TYPE_CHECKING:
    from harness.runner import RunContext
    from harness.spec import Example


class Rung(IntEnum):
    """The decision ladder's rungs, simplest first (prompt -> RAG -> fine-tune -> fine-tune + RAG): the simpler of
    two arms that cost about the same wins. A fine-tuned model served with retrieval sits above every arm that does
    one of the two: it keeps both a training pipeline and an index (corpus, embedder, refreshes) running."""

    PROMPT = 0  # the base model as it is, with an instruction and examples
    RETRIEVAL = 1  # plus context retrieved for each request
    ADAPTER = 2  # a few trained weights beside the frozen base
    FULL = 3  # every weight trained
    ADAPTER_RETRIEVAL = 4  # trained adapters, and context retrieved for each request
    FULL_RETRIEVAL = 5  # every weight trained, and context retrieved for each request


class LabelledExamples(Enum):
    """Which labelled examples an arm consumes (what its data costs)."""

    SHOTS = "shots"  # the k in-context examples
    RETRIEVAL_INDEX = "retrieval_index"  # the indexed training set, when the index holds it (none over a corpus)
    TRAINING_SET = "training_set"  # the examples it trained on


@dataclass(frozen=True)
class Requirement:
    """A Python package a strategy imports, and how to install it."""

    module: str  # what `import` takes
    pip: str  # what pip takes
    extra: str  # this project's optional extra that brings it


@dataclass(frozen=True)
class StrategyTraits:
    """What a strategy is, for everything outside its ``prepare``: the advisor's pricing, recommendation and
    report, the memory preflight, and compare's planning."""

    display_name: str  # "LoRA"
    ladder_rank: Rung
    colour: str  # its colour in the report's charts, #rrggbb
    trains: bool  # fine-tunes weights (runs as several processes with --num-processes)
    serving_method: str  # how advisor.costs.serving prices a request (its SERVING_METHODS)
    labelled_examples: LabelledExamples
    memory_method: str | None  # advisor.costs.memory's training method (MEMORY_METHODS); None: trains nothing
    utilisation_key: str | None  # training utilisation in data/catalog/utilisation.yaml; None: trains nothing
    shardable: bool  # FSDP may shard its model states over several GPUs (else data parallel)
    devices: tuple[str, ...] = ("cpu", "cuda")  # where it can run
    device_reason: str = ""  # why it needs those devices, for the error
    packages: tuple[Requirement, ...] = ()  # what it needs beyond the core install
    # among the arms a task runs when its file lists none (harness.strategies.default_strategies); False: it runs
    # only when listed (an arm combining two others, which adds runs a first comparison does not need)
    runs_by_default: bool = True

    def __post_init__(self) -> None:
        if self.trains != (self.memory_method is not None) or self.trains != (self.utilisation_key is not None):
            raise ValueError(
                "a strategy that trains has a memory method and a utilisation key; one that does not, neither"
            )


def device_need(traits: StrategyTraits) -> str:
    """What a strategy needs to run on, in words: 'a CUDA GPU (bitsandbytes' 4-bit kernels)'."""
    needs = "a CUDA GPU" if traits.devices == ("cuda",) else " or ".join(traits.devices)
    return needs + (f" ({traits.device_reason})" if traits.device_reason else "")


def unavailable_reason(name: str, traits: StrategyTraits, device: str) -> str | None:
    """Why strategy ``name`` cannot run on ``device`` ('cpu', 'cuda', 'cuda:1', ...) - one line with the fix - or
    None when it can."""
    kind = "cuda" if device.startswith("cuda") else "cpu"
    if kind not in traits.devices:
        return (
            f"strategies.{name}: {traits.display_name} needs {device_need(traits)}; this run is on {device}: run on a "
            f"GPU machine (--device cuda), or leave {name} out with --skip {name}"
        )
    for package in traits.packages:
        needs = (
            f"strategies.{name}: {traits.display_name} needs the {package.module} package: "
            f"pip install '{package.pip}' (or pip install -e '.[{package.extra}]')"
        )
        try:
            __import__(package.module)  # as `import bitsandbytes` would: a broken install raises here
        except ModuleNotFoundError:
            return needs
        except Exception as err:
            what = str(err).splitlines()[0] if str(err) else type(err).__name__
            return f"{needs}; importing it failed: {what}"
    return None


@dataclass(frozen=True)
class Variant:
    """One run of a strategy: e.g. prompt '4-shot' or lora 'r8'."""

    strategy: str
    name: str
    params: dict[str, Any]  # everything that determines this run's result; recorded and hashed


@dataclass
class Prepared:
    """What a strategy hands to the shared evaluator."""

    model: Any
    tokenizer: Any
    build_messages: Callable[[Example], list[dict[str, str]]]
    endpoint: Any = None  # endpoint variants: the harness.endpoints.EndpointClient that answers (model is None)
    train_info: TrainInfo | None = None  # set by fine-tuning strategies
    info: StrategyInfo = field(default_factory=StrategyInfo)  # what the strategy chose


def endpoints_field() -> Any:
    """``endpoints:`` of a strategy that runs the base model as it is (prompting, RAG)."""
    return field(
        default_factory=list,
        metadata=doc(
            "Endpoints (names under the task's top-level `endpoints`) to run every variant on too, with exactly the "
            "messages the local variant builds: '4-shot@gpt-4o-mini'. The local variants still run."
        ),
    )


def with_endpoints(local: list[Variant], endpoints: list[str]) -> list[Variant]:
    """The local variants, then each of them again on every endpoint (``name@endpoint``)."""
    on_endpoints = [
        Variant(v.strategy, f"{v.name}@{e}", {**v.params, "endpoint": e})
        for e in dict.fromkeys(endpoints)
        for v in local
    ]
    return local + on_endpoints


class Strategy(Protocol):
    @property
    def name(self) -> str:
        """The key in the registry and in task files (``strategies: {name: ...}``)."""

    @property
    def traits(self) -> StrategyTraits: ...

    @property
    def config_type(self) -> type:
        """The dataclass of its task-file settings (its field docs are the documentation)."""

    def variants(self, config: Any) -> list[Variant]:
        """The runs this config asks for (most strategies: exactly one)."""

    def prepare(self, ctx: RunContext, variant: Variant) -> Prepared:
        """Load (and train, if needed) a model for this variant."""


@dataclass
class TrainingConfig:
    """Fine-tuning settings shared by the lora, qlora and full strategies."""

    epochs: float = field(default=2.0, metadata=doc("Passes over the training examples.", gt=0))
    learning_rate: float | list[float] = field(
        default=1e-4, metadata=doc("Peak learning rate (AdamW, linear decay after warm-up).", gt=0, tunable=True)
    )
    batch_size: int = field(
        default=8, metadata=doc("Examples per optimizer step per device (before gradient accumulation).", min=1)
    )
    gradient_accumulation: int = field(default=1, metadata=doc("Micro-batches accumulated per optimizer step.", min=1))
    min_optimizer_steps: int = field(
        default=DEFAULT_MIN_OPTIMIZER_STEPS,
        metadata=doc(
            "Fewest optimizer steps a run takes (0: no minimum). When examples x epochs / global batch gives fewer, "
            "the batch size is lowered to the largest that reaches it (not below 1), then, at batch 1, the epochs "
            "are raised to reach it; train_info records the batch size and epochs used. A small dataset otherwise "
            "gets a few dozen updates (150 examples x 2 epochs at batch 8: 38), too few to learn the task.",
            min=0,
        ),
    )
    max_seq_len: int = field(
        default=384,
        metadata=doc(
            "Longest training sequence in tokens; longer prompts are cut from the left, the answer is kept.", min=16
        ),
    )
    warmup_ratio: float = field(
        default=0.1, metadata=doc("Fraction of steps with linear learning-rate warm-up.", min=0, max=1)
    )
    weight_decay: float = field(default=0.0, metadata=doc("AdamW weight decay.", min=0))
    gradient_checkpointing: bool = field(
        default=False, metadata=doc("Recompute activations in the backward pass: less memory, ~30% more compute.")
    )
    instruction: str = field(
        default="task",
        metadata=doc(
            "System prompt the model is trained and served with: 'task' = the task's instruction, as prompting "
            "uses it; "
            "'none' = no instruction (the model learns the task from the examples; shorter prompts make training and "
            "serving cheaper, and the record shows by how much).",
            choices=("task", "none"),
        ),
    )

    data_fractions: list[float] = field(
        default_factory=lambda: [1.0],
        metadata=doc(
            "Train on nested subsets of train too, one run each (e.g. [0.25, 0.5, 1.0]): the points of the learning "
            "curve the report fits to estimate how many examples the quality goal needs.",
            gt=0,
            max=1,
        ),
    )

    def system_prompt(self, task_instruction: str) -> str | None:
        return task_instruction if self.instruction == "task" else None

    def step_plan(self, examples: int, processes: int = 1) -> StepPlan:
        """The batch size, epochs and optimizer steps a run on ``examples`` training items over ``processes``
        takes, with the minimum applied (``harness.steps.step_plan``)."""
        return step_plan(
            examples, self.epochs, self.batch_size, self.gradient_accumulation, processes, self.min_optimizer_steps
        )

    def memory_settings(self) -> dict[str, Any]:
        """The settings that decide this run's memory, as ``advisor.costs.memory.training_memory`` takes them.
        Every batch is taken at ``max_seq_len`` tokens, the longest a batch can be, and at the configured batch
        size (the most a run uses: the step minimum only lowers it)."""
        return {
            "batch_size": self.batch_size,
            "seq_len": self.max_seq_len,
            "gradient_checkpointing": self.gradient_checkpointing,
            "gradient_accumulation": self.gradient_accumulation,
        }


C = TypeVar("C", bound=TrainingConfig)


def grid(config: Any) -> list[dict[str, Any]]:
    """The candidate settings of ``config``: every tunable field (``doc(tunable=True)``) given as a list is an axis,
    and the points come in priority order - each list's first value first, then one step away from it on one axis
    (the earlier axis first), and so on: ``tuning.trials`` takes the first N. Without lists: one point."""
    axes = {
        f.name: list(dict.fromkeys(v if isinstance(v := getattr(config, f.name), list) else [v]))
        for f in fields(config)
        if f.metadata.get("tunable")
    }
    order = sorted(
        itertools.product(*(range(len(values)) for values in axes.values())),
        key=lambda index: (sum(index), tuple(reversed(index))),  # nearest the first values first
    )
    return [{name: axes[name][i] for name, i in zip(axes, index, strict=True)} for index in order]


def varied(config: Any) -> set[str]:
    """The tunable fields of ``config`` that list more than one value (what a variant's name must show)."""
    return {f.name for f in fields(config) if f.metadata.get("tunable") and len(set(_listed(config, f.name))) > 1}


def _listed(config: Any, name: str) -> list[Any]:
    value = getattr(config, name)
    return value if isinstance(value, list) else [value]


def grid_variants(strategy: str, config: Any, name: Namer, *, drop: tuple[str, ...] = ()) -> list[Variant]:
    """One variant per grid point, in priority order: the config's values with the point's filled in, named by
    ``name(point params, varied fields)``; ``drop``: config keys that are not run parameters."""
    base = {k: v for k, v in vars(config).items() if k not in drop}
    axes = varied(config)
    variants = []
    for point in grid(config):
        params = {**base, **point}
        variants.append(Variant(strategy, name(params, axes), params))
    return variants


Namer = Callable[[dict[str, Any], set[str]], str]  # (a grid point's params, the varied fields) -> variant name


def training_variants(strategy: str, config: TrainingConfig, name: Namer) -> list[Variant]:
    """A fine-tuning strategy's grid, each point on all of train (its data-fraction runs come after the choice:
    ``fraction_variant``)."""
    return [
        Variant(v.strategy, v.name, {**v.params, "data_fraction": 1.0})
        for v in grid_variants(strategy, config, name, drop=("data_fractions",))
    ]


def fraction_variant(variant: Variant, fraction: float) -> Variant:
    """``variant`` trained on a nested subset of train: ``r8-25pct`` (a learning-curve point)."""
    if fraction == 1:
        return variant
    name = f"{variant.name}-{fraction * 100:g}pct"
    return Variant(variant.strategy, name, {**variant.params, "data_fraction": fraction})


def lr_label(params: dict[str, Any]) -> str:
    return f"lr{params['learning_rate']:g}"


def training_config(cls: type[C], params: dict[str, Any]) -> tuple[C, float]:
    """The config and data fraction of one fine-tuning variant, from its params. Keys ``cls`` does not have are
    left out, so one strategy's variant can be re-read as another's (the memory preflight's alternatives)."""
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in params.items() if k in known and k != "data_fractions"}
    fraction = params.get("data_fraction", 1.0)
    config = cls(**values, data_fractions=[fraction])
    # a tunable setting the params do not hold (a record from before grids) is its grid's first value
    return dataclasses.replace(config, **grid(config)[0]), fraction
