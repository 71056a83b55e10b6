"""The daemons' worker thread: runs a core's ``StartJob`` off the event loop and reports ``JobDone``.

One thread per daemon, one job at a time (torch releases the GIL in its ops, so the loop keeps answering
heartbeats and NACKs meanwhile). A job is timed in the thread that runs it: a UE's training and capability
jobs by ``policy.capability.measurement_clock()`` (thread CPU time with one torch thread), the BS's training
step by the wall clock (the record's ``consume_s``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from testbed.node.actions import CancelJob, JobDone, StartJob
from testbed.node.runtime import event
from testbed.policy.capability import measurement_clock

log = logging.getLogger(__name__)


def _timed(job: StartJob) -> tuple[Any, float]:
    clock: Callable[[], float] = time.monotonic if job.kind == "consume" else measurement_clock()
    start = clock()
    result = job.run()
    return result, clock() - start


class Worker:
    """``start`` / ``cancel`` from the loop; ``finished()`` returns the jobs done since the last call."""

    def __init__(self, name: str) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-worker")
        self._jobs: dict[tuple[Any, ...], Future[tuple[Any, float]]] = {}

    def start(self, job: StartJob) -> None:
        self._jobs[job.key] = self.executor.submit(_timed, job)

    def cancel(self, action: CancelJob) -> None:
        job = self._jobs.pop(action.key, None)
        if job is None:
            return
        kind, *rest = action.key
        ran = not job.cancel()  # running: it finishes, nobody picks it up
        event(log, "job_discarded", kind=kind, round=rest[0] if rest else None, ran=ran)

    def finished(self) -> list[JobDone]:
        done = []
        for key, job in list(self._jobs.items()):
            if job.done():
                del self._jobs[key]
                if job.cancelled():
                    continue
                exc = job.exception()
                if exc is not None:  # the cores catch their jobs' failures; this is a bug, not a round's fault
                    log.error("job %s raised %s: %s", key, type(exc).__name__, exc, exc_info=exc)
                    done.append(JobDone(key, None, 0.0))
                else:
                    done.append(JobDone(key, *job.result()))
        return done

    def shutdown(self) -> list[JobDone]:
        """Cancel what is queued, wait for the running job; return what finished (e.g. a BS step to record)."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        return self.finished()
