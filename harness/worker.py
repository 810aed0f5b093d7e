"""Worker process for one run: ``python -m harness.worker JOB`` (started by ``harness.compare``).

Runs the job (``harness.runner.execute``), which writes the run's record atomically to ``job.record_path``;
exits 0 even when the run failed (the failure is in the record), 130 on Ctrl-C. Started as one of several
processes by ``accelerate launch`` (``harness.launch``), it trains with the others, and only the main process
evaluates and writes the record. There a failed run exits 1, so that the launcher stops the other processes
instead of leaving them waiting in a collective; a process other than the main one that fails writes its error
beside the record (``harness.distributed.error_path``) for the compare to report.
"""

from __future__ import annotations

import signal
import sys
import traceback
from types import FrameType

from harness import distributed
from harness.job import Job
from harness.runner import execute


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(job_path: str) -> int:
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # the compare's Ctrl-C stops it, however started
    distributed.die_with_parent()
    job = Job.load(job_path)
    try:
        record = execute(job)
    except KeyboardInterrupt:
        return 130
    except BaseException as err:  # only a non-main process gets here (run_variant records failures)
        message = f"process {distributed.rank()} of {distributed.world_size()}: {type(err).__name__}: {err}"
        distributed.error_path(job.record_path, distributed.rank()).write_text(message.splitlines()[0] + "\n")
        traceback.print_exc()
        return 1
    if record is None:  # a non-main process of a multi-process run: it trained; the main process records
        return 0
    return 1 if distributed.world_size() > 1 and not record.ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
