"""The runs of a compare, arm by arm: each arm's trials on the validation split, its choice, then its final runs
(the chosen setting on test, at each data fraction, with each seed), every run through one ``Executor``.

With an executor that takes several runs at once (Ray), the arms run side by side, an arm's trials side by side
and then its final runs side by side; what depends on something waits for it: a final run for its arm's choice,
the +rag arms for the rag arm's chosen retrieval. Endpoint runs go one at a time, so that each starts with what
the budgets have left. With the local executor everything runs one after another, in plan order.

``results.json`` is written after every run, from the rows finished so far, so an interrupted compare keeps what
finished; running it again skips runs whose record has the same config hash (``--fresh`` recomputes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from harness import checkpoints
from harness.compare_options import CompareOptions
from harness.endpoints import CompareBudgets
from harness.executors import Executor
from harness.io import atomic_write_json
from harness.job import Job
from harness.record import Hardware, RunInfo, RunRecord
from harness.runstore import Comparison, StoredRun, config_hash, reusable, write_results
from harness.spec import Datasets, Example, Task
from harness.strategies import Variant, traits
from harness.strategies.tuned_rag import fill_retrieval, inherits_retrieval
from harness.tuning import ArmPlan, FinalRun, checkpoint_dir, choose, final_path, trial_path
from harness.workers import one_line, store_record, validation_line

API_CACHE = "api-cache"  # under the output folder: one JSON file per endpoint request answered

# (variant, this device, processes per run, sharding) -> why the run cannot fit, or None: the advisor's memory model,
# so that what cannot fit fails before training, not an hour in
Preflight = Callable[[Variant, Hardware, int, str], "str | None"]

T = TypeVar("T")
R = TypeVar("R")


@dataclasses.dataclass
class RunData:
    """The checked datasets and the splits every run of the compare uses."""

    data: Datasets
    train: list[Example]
    validation: list[Example]
    test: list[Example]


class CompareRun:
    """One compare's runs: what they share (task, splits, options, executor, budgets) and what has finished."""

    def __init__(
        self,
        task: Task,
        splits: RunData,
        options: CompareOptions,
        executor: Executor,
        comparison: Comparison,
        arms: list[ArmPlan],
        *,
        budgets: CompareBudgets,
        preflight: Preflight | None,
        sharding: Callable[[Variant, int], str],
        log: Callable[[str], None],
    ):
        self.task, self.splits, self.options, self.executor = task, splits, options, executor
        self.comparison, self.budgets, self.preflight = comparison, budgets, preflight
        self.sharding, self.log = sharding, log
        self.out_dir = options.folder(task)
        self.seed = comparison.options.seed
        self.device = comparison.device.device
        # the rag arm runs before the arms that take its chosen retrieval (they wait for it when arms run together)
        self.arms = sorted(arms, key=lambda arm: any(inherits_retrieval(v) for v in arm.candidates))
        self.finished: list[list[StoredRun]] = [[] for _ in self.arms]  # per arm, its rows so far
        self.fingerprint = task.fingerprint()
        self.total = sum(arm.run_count for arm in self.arms)
        self.started = 0
        self.lock = threading.RLock()  # the rows, the counter, the budgets, results.json
        self.endpoint_turn = threading.Lock()  # endpoint runs one at a time: each gets what the budgets left
        self.stopping = threading.Event()
        self.chosen_rag: dict[str, Any] | None = None  # the local rag arm's chosen setting: the +rag arms' retrieval
        self.rag_chosen = threading.Event()
        if not any(arm.strategy == "rag" and arm.endpoint is None for arm in self.arms):
            self.rag_chosen.set()
        self.late: list[tuple[int, StoredRun]] = []  # a run on test whose record was written as the interrupt came

    # -- the whole compare ------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run every arm; the number of finished runs kept. KeyboardInterrupt: every run in flight is stopped and
        what finished is kept (re-raised for the caller's one-line message)."""
        try:
            self._each(self._run_arm, list(enumerate(self.arms)))
        except BaseException:
            self.stopping.set()
            self.executor.stop()
            self._save()
            raise
        return self.kept()

    def kept(self) -> int:
        with self.lock:
            for index, run in self.late:
                if run.path not in {r.path for r in self.finished[index]}:
                    self.finished[index].append(run)
            self.late.clear()
            self._save()
            return sum(r.record.ok for rows in self.finished for r in rows)

    def _each(self, work: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """``work`` on each item: one after another, or - when the executor takes several runs at once - side by
        side in threads (each waits on its run's task). The first failure is raised after the others stop."""
        if not self.executor.concurrent_runs or len(items) < 2:
            return [work(item) for item in items]
        pool = ThreadPoolExecutor(max_workers=len(items))
        futures: list[Future[R]] = [pool.submit(work, item) for item in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            self.stopping.set()
            self.executor.stop()  # the runs in flight end; their threads return
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _save(self) -> None:
        with self.lock:
            self.comparison.runs = [run for rows in self.finished for run in rows]
            write_results(self.out_dir, self.comparison)

    # -- one arm ----------------------------------------------------------------------------------------------
    def _run_arm(self, indexed: tuple[int, ArmPlan]) -> None:
        index, arm = indexed
        local_rag = arm.strategy == "rag" and arm.endpoint is None
        try:
            self._tune_and_finish(index, arm, local_rag)
        finally:
            if local_rag:
                self.rag_chosen.set()  # chosen, or failed: the +rag arms go on (with rag's defaults)

    def _tune_and_finish(self, index: int, arm: ArmPlan, local_rag: bool) -> None:
        if any(inherits_retrieval(v) for v in arm.candidates):
            self.rag_chosen.wait()
        arm.candidates = [fill_retrieval(v, self.chosen_rag, self.task) for v in arm.candidates]
        tried = arm.candidates if arm.tuned else []
        trials = list(zip(tried, self._each(self._trial(arm), tried), strict=True))
        if arm.tuned:
            picked = choose([(v, r.record) for v, r in trials])
            if picked is None:  # every trial failed: the arm's row is its first failure, with every trial
                first = trials[0][1]
                with self.lock:
                    self.finished[index] = [StoredRun(first.record, first.path, trials=[r for _, r in trials])]
                self._save()
                return
            chosen = picked[0]
            self.log(
                f"{arm.strategy}: chose {chosen.name} on validation "
                f"({validation_line(trials, chosen)}); only it is scored on test"
            )
        else:
            chosen = arm.candidates[0]
        if local_rag:
            self.chosen_rag = chosen.params
            self.rag_chosen.set()
        finals = arm.finals(chosen)
        done: dict[int, StoredRun] = {}  # by position in finals
        trial_of = dict((v.name, r) for v, r in trials)

        def final_run(position: int) -> None:
            run = self._final(index, arm, chosen, finals[position], trial_of.get(chosen.name))
            with self.lock:
                done[position] = run
                self.finished[index] = _rows(finals, done, chosen, [r for _, r in trials])
            self._save()

        self._each(final_run, range(len(finals)))
        for variant, trial in trials if arm.trains and arm.tuned else []:
            meta = trial.record.meta_info
            self.executor.discard(checkpoint_dir(self.out_dir, variant), meta.node if meta else None)
        if arm.trains and arm.tuned:
            with contextlib.suppress(OSError):  # the last arm's: checkpoints/ is empty now (another arm's: not yet)
                (self.out_dir / "checkpoints").rmdir()

    def _trial(self, arm: ArmPlan) -> Callable[[Variant], StoredRun]:
        def trial(variant: Variant) -> StoredRun:
            keep: dict[str, Any] = {"save_checkpoint": checkpoint_dir(self.out_dir, variant)} if arm.trains else {}
            path = trial_path(self.out_dir, variant)
            return self._run_one(
                variant, path, role="trial", run_seed=self.seed, validation=self.splits.validation, **keep
            )

        return trial

    def _final(self, index: int, arm: ArmPlan, chosen: Variant, final: FinalRun, trial: StoredRun | None) -> StoredRun:
        path = final_path(self.out_dir, final)
        serves_trial = arm.tuned and final.variant == chosen and final.first_seed
        extra: dict[str, Any] = {}
        near = None
        if serves_trial and arm.trains and trial is not None:
            folder = checkpoint_dir(self.out_dir, chosen)
            # the driver sees the folder (this machine, shared storage), or a Ray node holds it: the trial's
            if checkpoints.exists(folder) or (self.executor.remote_storage and trial.record.ok):
                extra["load_checkpoint"] = folder
                near = trial.record.meta_info.node if trial.record.meta_info else None
        if not arm.tuned and final.variant == chosen and final.first_seed:
            extra["validation"] = self.splits.validation  # no trials: the one run scores validation too
        run = self._run_one(final.variant, path, role="final", run_seed=final.seed, near=near, arm_index=index, **extra)
        if serves_trial and trial is not None and run.record.ok and run.record.validation is None:
            scored = trial.record.validation
            assert scored is not None  # choose() takes only trials with a validation score
            run.record.validation = dataclasses.replace(scored, from_trial=trial.path)
            atomic_write_json(path, run.record.to_json())
        return run

    # -- one run ----------------------------------------------------------------------------------------------
    def _run_one(
        self,
        variant: Variant,
        path: Path,
        *,
        role: str,
        run_seed: int,
        near: str | None = None,
        arm_index: int | None = None,
        **job_extra: Any,
    ) -> StoredRun:
        """One run (reused when a finished record has the same config hash). ``arm_index``: a final run's arm."""
        if self.stopping.is_set():
            raise KeyboardInterrupt  # stopping: start nothing new
        options, task = self.options, self.task
        trains = traits(variant.strategy).trains
        n = options.num_processes if trains and not job_extra.get("load_checkpoint") else 1
        digest = config_hash(
            self.fingerprint,
            variant,
            seed=run_seed,
            limit=options.limit,
            device=self.device,
            model=task.model_ref,
            num_processes=n,
            endpoint=task.endpoint_identity(variant.params),
            role=role,
        )
        with self.lock:
            self.started += 1
            label = f"[{self.started}/{self.total}] {variant.strategy} {variant.name}" + (
                f" seed {run_seed}" if run_seed != self.seed else ""
            )
        stored = str(path.relative_to(self.out_dir))
        record = None if options.fresh else reusable(path, digest)
        if record:
            self.log(f"{label}: reusing finished run ({path}); --fresh recomputes")
            return StoredRun(record, stored)
        sharding = self.sharding(variant, n) if n > 1 else "none"
        where = f"{self.device} ({self.executor.name})" if self.executor.name != "local" else self.device
        what = "trial on validation" if role == "trial" else "on test"
        self.log(f"{label} ({what}): running on {where}" + (f" x {n} processes ({sharding})" if n > 1 else "") + " ...")
        run_info = RunInfo(
            task=task.name,
            strategy=variant.strategy,
            variant=variant.name,
            params=variant.params,
            config_hash=digest,
            seed=run_seed,
            limit=options.limit,
            device=self.device,
            model=task.model_ref.shown(task.path.parent),
            num_processes=n,
            sharding=sharding,
            role=role,
        )
        endpoint = task.endpoint_of(variant.params)
        path.parent.mkdir(parents=True, exist_ok=True)
        turn = self.endpoint_turn if endpoint is not None else contextlib.nullcontext()
        with turn:
            job = Job(
                task=task,
                data=self.splits.data,
                train=self.splits.train,
                test=self.splits.test,
                variant=variant,
                run_info=run_info,
                record_path=path,
                progress=options.progress,
                api_cache=self.out_dir / API_CACHE,
                api_cache_read=not options.fresh,
                api_budget_usd=self.budgets.left(endpoint),
                **job_extra,
            )
            try:
                reason = self.preflight(variant, self.comparison.device, n, sharding) if self.preflight else None
                if reason:
                    record = store_record(job, RunRecord.failed(run_info, reason))
                else:
                    record = self.executor.run(job, n, options.accelerate_config, near)
            except KeyboardInterrupt:
                finished_anyway = reusable(path, digest)  # the worker may have written its record just before
                if finished_anyway and arm_index is not None and run_seed == self.seed:
                    with self.lock:
                        self.late.append((arm_index, StoredRun(finished_anyway, stored)))
                raise
            with self.lock:
                self.budgets.spend(record)
        self.log(f"{label}: {one_line(record)}")
        return StoredRun(record, stored)


def _rows(
    finals: list[FinalRun], done: dict[int, StoredRun], chosen: Variant, trials: list[StoredRun]
) -> list[StoredRun]:
    """An arm's rows from its final runs finished so far (``done``: by position in ``finals``): one per data
    fraction (its first seed's run, with the other seeds' runs as repeats), sorted by fraction; the chosen
    setting's row carries the trials."""
    rows = []
    for i, final in enumerate(finals):
        if not final.first_seed or i not in done:
            continue
        row = done[i]
        row.repeats = [
            done[j]
            for j, other in enumerate(finals)
            if not other.first_seed and other.variant.name == final.variant.name and j in done
        ]
        if final.variant == chosen:
            row.trials = trials
        rows.append(row)
    return sorted(rows, key=lambda r: r.record.run_info.params.get("data_fraction", 1.0))
