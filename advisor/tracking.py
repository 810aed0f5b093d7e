"""MLflow tracking (``--mlflow [URI]`` on ``advisor compare`` and ``advisor report``): a finished, priced comparison
logged as one parent run (experiment = the task's name) with one nested run per row of the comparison (each arm's
run, learning-curve rows included), and one run nested under its row for each of the row's tuning trials and extra
seeds (tagged ``advisor.role`` = trial | seed), so the arms stay one level deep in the UI.

- params: strategy, variant, where it ran, and the run's settings (the record's ``run_info.params``, flattened with
  dots); the parent: the task, the model, the goals and the compare settings;
- metrics: quality, p50/p95 latency, peak memory (MiB), train seconds, serving $ per 1k requests, train $, data $
  (from the priced rows, so logged after pricing); the parent: what the whole comparison cost;
- artifacts: each run's record JSON; results.json and report.html (and results.csv / predictions.parquet when they
  exist) on the parent.

Keys never reach the store: records hold none (an endpoint's key stays in its environment variable), and a setting
named like a key or a value shaped like one is left out all the same (``harness.endpoint_checks``).

MLflow is an optional extra (``pip install -e '.[mlflow]'``), imported only inside these functions.
``check_tracking`` runs before a compare computes anything, so a missing package or an unreachable store costs no
run. MLflow 3 refuses a plain folder (its file store, in maintenance mode) unless ``MLFLOW_ALLOW_FILE_STORE`` is set,
so the default is MLflow's own default, ``sqlite:///mlflow.db`` (artifacts in ``./mlruns``); a folder given
explicitly is used as MLflow's file store, with that opt-out set for this process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import click

from harness.endpoint_checks import KEY_LIKE, SECRET_KEYS
from harness.errors import UserError
from harness.typedjson import to_jsonable

if TYPE_CHECKING:  # the recommendation loads numpy: not for `advisor --help`, which imports this module
    from advisor.pricing import PricedRun
    from advisor.recommend import Analysis

DEFAULT_URI = "sqlite:///mlflow.db"  # MLflow 3's default tracking URI; `mlflow ui` in the same folder shows it
INSTALL = "pip install -e '.[mlflow]'"
MAX_PARAM_CHARS = 6000  # MLflow's limit on a param's value
MAX_TAG_CHARS = 5000
PARENT_ARTIFACTS = ("results.json", "report.html", "results.csv", "predictions.parquet")
F = TypeVar("F", bound=Callable[..., Any])


def mlflow_option(fn: F) -> F:
    """``--mlflow [URI]``: given alone, the default store."""
    return click.option(
        "--mlflow",
        "mlflow_uri",
        metavar="[URI]",
        is_flag=False,
        flag_value=DEFAULT_URI,
        default=None,
        help=(
            f"Log the comparison to MLflow: a parent run and a nested run per arm (needs {INSTALL}). URI: a "
            f"tracking server (http://...), a database (sqlite:///mlflow.db) or a folder (MLflow's file store); "
            f"alone: {DEFAULT_URI}. Put it after the folder or task file."
        ),
    )(fn)


def _is_folder(uri: str) -> bool:
    """A plain path or file:// URI: MLflow's file store."""
    scheme = urlsplit(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")  # C:\... on Windows


def _mlflow() -> Any:
    """The mlflow module, quiet; a one-line error naming the install command when it is missing."""
    try:
        import mlflow
    except ImportError:
        raise UserError(f"--mlflow: MLflow is not installed; install it with {INSTALL}") from None
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # "creating tables", "creating experiment": not ours
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return mlflow


def _client(uri: str) -> Any:
    mlflow = _mlflow()
    if _is_folder(uri):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # asked for by name: honour it (MLflow 3)
    try:
        with warnings.catch_warnings(), _quick_http():
            warnings.simplefilter("ignore")  # the file store's deprecation warning: the README says so
            client = mlflow.tracking.MlflowClient(tracking_uri=uri)
            client.search_experiments(max_results=1)  # reach the store now: a bad URI fails before any run
    except Exception as err:  # MlflowException, a refused connection, a bad URI: all one line
        raise UserError(f"--mlflow {uri}: cannot use this tracking store: {_first_line(err)}") from None
    return client


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """A tracking server that does not answer fails the check in seconds, not after MLflow's retries (minutes);
    the user's own settings of these variables win."""
    quick = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}
    added = [key for key in quick if key not in os.environ]
    os.environ.update({key: quick[key] for key in added})
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__


def check_tracking(uri: str | None) -> None:
    """Before a compare runs: MLflow is installed and ``uri`` is a store it can use (None: no tracking)."""
    if uri is not None:
        _client(uri)


@dataclass
class Logged:
    """Where a comparison went: the store, the experiment, the parent run and how many runs in all."""

    uri: str
    experiment: str
    parent_run_id: str
    runs: int

    def line(self) -> str:
        return f"logged {self.runs} runs to MLflow {self.uri}, experiment {self.experiment!r}, run {self.parent_run_id}"


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Nested settings as dotted keys: {"lora": {"rank": 8}} -> ("lora.rank", 8)."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    else:
        yield prefix, value


def _secret(key: str, value: Any) -> bool:
    """A setting named like a key, or a value shaped like one: never logged."""
    leaf = key.rsplit(".", 1)[-1].lower().replace("-", "_")
    return leaf in SECRET_KEYS or leaf.endswith(("_key", "_token", "_secret")) or bool(KEY_LIKE.search(str(value)))


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(to_jsonable(value), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 1] + "…"


def params_of(settings: dict[str, Any]) -> dict[str, str]:
    """Settings as MLflow params: flattened, strings of at most 6000 characters, secrets left out."""
    return {key: _param_value(value) for key, value in flatten(settings) if key and not _secret(key, value)}


def run_params(run: PricedRun) -> dict[str, str]:
    """A row's params: what it is, where it ran, and its settings (``run_info.params``)."""
    info, row = run.record.run_info, run.row
    fixed = {
        "strategy": row.strategy,
        "variant": row.variant,
        "endpoint": row.endpoint or info.params.get("endpoint") or "local",  # NAME@endpoint variants
        "role": info.role,
        "seed": info.seed,
        "model": info.model.name,
        "num_processes": info.num_processes,
        "sharding": info.sharding,
        "config_hash": info.config_hash,
        "data_fraction": row.data_fraction,
    }
    own = params_of({k: v for k, v in info.params.items() if k not in fixed})
    return {**params_of({k: v for k, v in fixed.items() if v is not None}), **own}


def run_metrics(run: PricedRun) -> dict[str, float]:
    """A row's measured and priced figures (those it has: a failed run has none, a trial no test score)."""
    row, costs = run.row, run.costs
    values: dict[str, float | int | None] = {
        "quality": row.quality,
        "quality_std": row.quality_std,
        "validation_quality": row.validation_quality,
        "latency_p50_ms": row.latency_ms_p50,
        "latency_p95_ms": row.latency_ms_p95,
        "memory_peak_mib": row.memory_peak_mib,
        "train_seconds": row.train_seconds,
        "wall_seconds": row.wall_seconds,
        "serve_usd_per_1k_requests": costs.serve_usd_per_1k,
        "serve_usd_per_month": costs.serve_usd_per_month,
        "train_usd": costs.train_usd,
        "data_usd": costs.data_usd,
        "api_usd_spent": row.api_usd_spent,
    }
    return {key: float(v) for key, v in values.items() if v is not None and math.isfinite(float(v))}


def parent_params(analysis: Analysis) -> dict[str, str]:
    comparison = analysis.pricing.comparison
    task = comparison.task
    return params_of(
        {
            "task": task.name,
            "kind": task.kind,
            "metric": task.metric,
            "model": task.model.name,
            "model_source": task.model.source,
            "deployment_gpu": task.deployment.gpu,
            "n_train": task.n_train,
            "n_validation": task.n_validation,
            "n_test": task.n_test,
            "device": comparison.device.gpu or comparison.device.device,
            "goals": to_jsonable(task.goals),
            "compare": to_jsonable(comparison.options),
        }
    )


def parent_metrics(analysis: Analysis) -> dict[str, float]:
    """What the whole comparison cost (every run, trials and seeds), and the recommended arm's quality."""
    metrics: dict[str, float] = {}
    if analysis.cost is not None:
        total = analysis.cost.total
        metrics.update(
            comparison_usd=total.usd,
            comparison_gpu_hours=total.gpu_hours,
            comparison_machine_hours=total.machine_hours,
            comparison_runs=float(total.runs),
        )
    if analysis.chosen is not None:
        metrics["recommended_quality"] = float(analysis.chosen.quality)
    return {key: value for key, value in metrics.items() if math.isfinite(value)}


def _tags(role: str, **more: str | None) -> dict[str, str]:
    tags = {"advisor.role": role, **{k: v for k, v in more.items() if v is not None}}
    return {key: value[:MAX_TAG_CHARS] for key, value in tags.items()}


class _Logger:
    """One comparison into one experiment, through MlflowClient (no global active run)."""

    def __init__(self, client: Any, experiment_id: str, out_dir: Path) -> None:
        self.client, self.experiment_id, self.out_dir = client, experiment_id, out_dir
        self.count = 0

    def start(self, name: str, parent: str | None, tags: dict[str, str]) -> str:
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        if parent is not None:
            tags = {**tags, MLFLOW_PARENT_RUN_ID: parent}  # what makes it nested in the UI and in searches
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.count += 1
        return str(run.info.run_id)

    def values(self, run_id: str, params: dict[str, str], metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric, Param

        now = _now_ms()
        self.client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
            params=[Param(key, value) for key, value in params.items()],
        )

    def artifact(self, run_id: str, path: Path, folder: str | None = None) -> None:
        if path.is_file():
            self.client.log_artifact(run_id, str(path), folder)

    def run(self, run: PricedRun, parent: str, role: str) -> None:
        """One row (or one of its trials or seeds), and what belongs to it nested under it."""
        row = run.row
        status = "FINISHED" if run.record.ok else "FAILED"
        run_id = self.start(f"{row.strategy} {row.variant}", parent, _tags(role, **{"advisor.error": row.error}))
        self.values(run_id, run_params(run), run_metrics(run))
        self.artifact(run_id, self.out_dir / run.stored.path, "record")
        for trial in run.trials:
            self.run(trial, run_id, "trial")
        for repeat in run.repeats:
            self.run(repeat, run_id, "seed")
        self.client.set_terminated(run_id, status)


def _now_ms() -> int:
    return int(time.time() * 1000)


def log_comparison(uri: str, out_dir: Path, analysis: Analysis) -> Logged:
    """Log a priced, rendered comparison (``advisor.report.publish``'s analysis, its files in ``out_dir``)."""
    client = _client(uri)
    name = analysis.pricing.comparison.task.name
    rec = analysis.recommendation
    parent: str | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            experiment = client.get_experiment_by_name(name)
            experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
            logger = _Logger(client, str(experiment_id), Path(out_dir))
            tags = {
                "advisor.output": str(out_dir),
                "advisor.recommended": f"{rec.strategy} {rec.variant}" if rec.strategy else None,
                "advisor.verdict": rec.verdict,
                "mlflow.note.content": rec.verdict,  # the run's description in the UI
            }
            parent = logger.start(f"compare {Path(out_dir).resolve().name}", None, _tags("comparison", **tags))
            logger.values(parent, parent_params(analysis), parent_metrics(analysis))
            for run in analysis.pricing.runs:
                logger.run(run, parent, "final")
            for artifact in PARENT_ARTIFACTS:
                logger.artifact(parent, Path(out_dir) / artifact)
            client.set_terminated(parent, "FINISHED")
    except Exception as err:  # a store gone away, a refused write: one line, and the results stay on disk
        if parent is not None:
            with contextlib.suppress(Exception):
                client.set_terminated(parent, "FAILED")
        raise UserError(
            f"--mlflow {uri}: logging failed: {_first_line(err)}; the results are kept in {out_dir}: log them "
            f"later with advisor report {out_dir} --mlflow {uri}"
        ) from None
    return Logged(uri, name, parent, logger.count)
