"""Schedulers written to SHERPA's interface: ``submit_job(command, env, job_name)`` returning a
job id, ``get_status(job_id)`` returning a ``JobStatus`` and ``kill_job(job_id)``.

``PollingScheduler`` runs such an object as a ridgeline ``Scheduler``: it submits through
``submit_job`` and learns a job's end by asking ``get_status`` every ``poll_interval`` seconds,
since that interface has no way to wait. ``as_scheduler`` picks what ``optimize`` runs.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.errors import ConfigError, SchedulerError
from ridgeline.schedulers.base import Job, Scheduler

__all__ = ["JobStatus", "PollingScheduler", "as_scheduler", "speaks_sherpa"]

_SHERPA_METHODS = ("submit_job", "get_status", "kill_job")


class JobStatus:
    """SHERPA's ``_JobStatus`` codes, which ``get_status`` returns."""

    finished = 1
    running = 2
    failed = 3
    queued = 4
    killed = 5
    other = 6


#: The exit code a job that ended with each status stands for: ``other`` (ended for a reason
#: the scheduler cannot name) counts as failed, as in SHERPA.
_EXIT_CODES = {
    JobStatus.finished: 0,
    JobStatus.failed: 1,
    JobStatus.other: 1,
    JobStatus.killed: -15,
}


def speaks_sherpa(obj: Any) -> bool:
    """True when ``obj`` has SHERPA's three scheduler methods."""
    return all(callable(getattr(obj, m, None)) for m in _SHERPA_METHODS)


class PollingScheduler(Scheduler):
    """A ridgeline ``Scheduler`` over an object with SHERPA's scheduler methods.

    The job's environment is this process's environment plus the trial's variables (SHERPA's
    schedulers copied ``os.environ`` themselves, so user code may expect only the extras).
    ``cwd`` cannot be passed through SHERPA's interface: jobs start where ``submit_job``
    starts them. Job ids live only in the object's memory, so a resumed search cannot
    re-attach to jobs that outlived their coordinator (``reattach`` finds none).
    """

    def __init__(self, inner: Any, poll_interval: float = 0.5) -> None:
        if not speaks_sherpa(inner):
            missing = [m for m in _SHERPA_METHODS if not callable(getattr(inner, m, None))]
            raise ConfigError(
                f"{type(inner).__name__} lacks {', '.join(missing)}: a SHERPA-style scheduler "
                f"needs submit_job(command, env, job_name), get_status(job_id), kill_job(job_id)"
            )
        self.inner = inner
        self.poll_interval = poll_interval
        self.output_dir = str(getattr(inner, "output_dir", "") or "")

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        del cwd
        if not getattr(self.inner, "output_dir", None) and self.output_dir:
            self.inner.output_dir = self.output_dir
        extra = {k: v for k, v in env.items() if os.environ.get(k) != v}
        job_id = self.inner.submit_job(list(command), extra, name)
        return Job(name, {"job_id": job_id}, job_id)

    async def wait(self, job: Job) -> int | None:
        job_id = job.handle if job.handle is not None else job.info.get("job_id")
        while True:
            status = self.inner.get_status(job_id)
            if status in _EXIT_CODES:
                return _EXIT_CODES[status]
            if status not in (JobStatus.running, JobStatus.queued):
                raise SchedulerError(
                    f"{type(self.inner).__name__}.get_status({job_id!r}) returned {status!r}; "
                    f"it must return one of sherpa.schedulers._JobStatus's codes"
                )
            await asyncio.sleep(self.poll_interval)

    def kill(self, job: Job, force: bool = False) -> None:
        del force  # SHERPA's interface has one way to end a job
        self.inner.kill_job(job.handle if job.handle is not None else job.info.get("job_id"))

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()


def as_scheduler(obj: Any) -> Scheduler:
    """``obj`` as the scheduler a search runs on: a ridgeline ``Scheduler`` as it is, one that
    only implements SHERPA's methods through ``PollingScheduler``."""
    native = isinstance(obj, Scheduler) and type(obj).submit is not Scheduler.submit
    if native:
        return obj
    if speaks_sherpa(obj):
        return PollingScheduler(obj)
    raise ConfigError(
        f"scheduler must be a ridgeline scheduler such as LocalScheduler(), or an object with "
        f"SHERPA's submit_job(command, env, job_name), get_status(job_id) and kill_job(job_id); "
        f"got {type(obj).__name__}"
    )
