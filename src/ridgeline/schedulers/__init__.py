"""Where trial processes run. ``sherpa.schedulers.LocalScheduler`` and friends."""

from __future__ import annotations

from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.dask import DaskScheduler
from ridgeline.schedulers.local import LocalScheduler
from ridgeline.schedulers.polling import JobStatus, PollingScheduler
from ridgeline.schedulers.sge import SGEScheduler
from ridgeline.schedulers.slurm import SLURMScheduler

_JobStatus = JobStatus  # SHERPA's name

__all__ = [
    "DaskScheduler",
    "Job",
    "JobStatus",
    "LocalScheduler",
    "PollingScheduler",
    "SGEScheduler",
    "SLURMScheduler",
    "Scheduler",
]
