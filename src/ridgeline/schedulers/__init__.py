"""Where trial processes run. ``sherpa.schedulers.LocalScheduler`` and friends.

Each class loads with its module on first use (``ridgeline/lazy.py``), so a program that runs
inside a job (``ridgeline.launch.worker``) imports the small modules here without every
scheduler behind them.
"""

from __future__ import annotations

import importlib

from ridgeline.lazy import load_attribute

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ridgeline.schedulers.base import Job, Scheduler
    from ridgeline.schedulers.dask import DaskScheduler
    from ridgeline.schedulers.local import LocalScheduler
    from ridgeline.schedulers.polling import JobStatus, PollingScheduler
    from ridgeline.schedulers.sge import SGEScheduler
    from ridgeline.schedulers.slurm import SLURMScheduler

    _JobStatus = JobStatus  # SHERPA's name

#: Where each name lives (module under ridgeline.schedulers, its name there).
_WHERE = {
    "DaskScheduler": ("dask", "DaskScheduler"),
    "Job": ("base", "Job"),
    "JobStatus": ("polling", "JobStatus"),
    "_JobStatus": ("polling", "JobStatus"),  # SHERPA's name
    "LocalScheduler": ("local", "LocalScheduler"),
    "PollingScheduler": ("polling", "PollingScheduler"),
    "SGEScheduler": ("sge", "SGEScheduler"),
    "SLURMScheduler": ("slurm", "SLURMScheduler"),
    "Scheduler": ("base", "Scheduler"),
}


def _resolve(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(name)
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(f"ridgeline.schedulers.{module}"), attribute)


def __getattr__(name: str) -> Any:
    return load_attribute(__name__, globals(), name, _resolve)


def __dir__() -> list[str]:
    return __all__


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
