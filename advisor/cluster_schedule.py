"""List scheduling of a compare's runs on a cluster of identical nodes (``advisor plan``): pure, no I/O.

Each job asks for a number of GPUs and a wall-clock duration, and may depend on other jobs (a tuned arm's final
runs wait for its trials: the choice needs their validation scores). The schedule is event-driven list
scheduling: whenever a job ends (and at time 0), the jobs whose dependencies have all ended are tried in order of
their work, largest GPU-hours (GPUs x hours) first; each one that finds room starts at once. A job of at most one
node's GPUs takes them on one node (accelerate's processes of one run share a machine), on the node with the fewest
free GPUs that still hold it (best fit: whole nodes stay free for the multi-node runs); a job of more takes whole
free nodes (``accelerate launch --num_machines``). A job of 0 GPUs (an endpoint run) starts as soon as it is ready.
Smaller ready jobs may start while a larger one waits for room (greedy backfilling, no reservations): a large job
can wait while smaller ones keep the GPUs it needs busy, so the wall clock is an honest schedule, not an optimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """What the scheduler needs to know about one run."""

    id: int
    gpus: int  # 0: needs no GPU (an endpoint run)
    hours: float  # wall clock once started
    depends_on: tuple[int, ...] = ()  # ids of jobs that must end first


@dataclass(frozen=True)
class Slot:
    """Where and when a job runs."""

    start_h: float
    end_h: float
    nodes: tuple[int, ...]  # the node(s) it holds GPUs on; () for a job of 0 GPUs


class ScheduleError(ValueError):
    """A job that can never start: more GPUs than the cluster has, or a dependency that is not a job."""


def nodes_needed(gpus: int, gpus_per_node: int) -> int:
    """Whole nodes a job of ``gpus`` spans: ceil(gpus / gpus per node) (1 for a job that fits one)."""
    return max(1, math.ceil(gpus / gpus_per_node))


def schedule(jobs: list[Job], *, gpus_per_node: int, nodes: int) -> dict[int, Slot]:
    """Each job's slot on ``nodes`` x ``gpus_per_node`` GPUs (module docstring)."""
    if gpus_per_node < 1 or nodes < 1:
        raise ScheduleError("a cluster needs at least one node of at least one GPU")
    known = {job.id for job in jobs}
    for job in jobs:
        if job.gpus > gpus_per_node * nodes:
            raise ScheduleError(f"job {job.id} needs {job.gpus} GPUs; the cluster has {gpus_per_node * nodes}")
        if missing := [d for d in job.depends_on if d not in known]:
            raise ScheduleError(f"job {job.id} depends on {missing}, which are not jobs")
    free = [gpus_per_node] * nodes  # free GPUs per node now
    running: list[tuple[float, Job, tuple[int, ...]]] = []  # (end_h, job, nodes)
    slots: dict[int, Slot] = {}
    ended: dict[int, float] = {}
    waiting = list(jobs)
    now = 0.0
    while waiting:
        ready = [job for job in waiting if all(d in ended for d in job.depends_on)]
        # largest work first; ties: the order the runs were planned in (the stable sort keeps it)
        for job in sorted(ready, key=lambda j: -(j.gpus * j.hours)):
            placed = _place(job, free, gpus_per_node)
            if placed is None:
                continue
            slots[job.id] = Slot(now, now + job.hours, placed)
            running.append((now + job.hours, job, placed))
            waiting.remove(job)
        if not running:
            if waiting:  # nothing runs and nothing can start: a dependency cycle
                raise ScheduleError(f"jobs {[j.id for j in waiting]} wait on each other")
            break
        now = min(end for end, _, _ in running)
        for end, job, held in [r for r in running if r[0] <= now]:
            running.remove((end, job, held))
            ended[job.id] = end
            _release(job, held, free, gpus_per_node)
    return slots


def _place(job: Job, free: list[int], gpus_per_node: int) -> tuple[int, ...] | None:
    """Take the GPUs ``job`` needs from ``free`` and say on which nodes; None when there is no room now."""
    if job.gpus == 0:
        return ()
    if job.gpus <= gpus_per_node:
        fitting = [n for n, f in enumerate(free) if f >= job.gpus]
        if not fitting:
            return None
        node = min(fitting, key=lambda n: (free[n], n))  # best fit
        free[node] -= job.gpus
        return (node,)
    whole = [n for n, f in enumerate(free) if f == gpus_per_node][: nodes_needed(job.gpus, gpus_per_node)]
    if len(whole) < nodes_needed(job.gpus, gpus_per_node):
        return None
    for n in whole:
        free[n] = 0  # the whole node: accelerate launches the same number of processes on each machine
    return tuple(whole)


def _release(job: Job, held: tuple[int, ...], free: list[int], gpus_per_node: int) -> None:
    for n in held:
        free[n] += job.gpus if job.gpus <= gpus_per_node else gpus_per_node
