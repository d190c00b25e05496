"""Where trial processes run. ``sherpa.schedulers.LocalScheduler`` and friends."""

from __future__ import annotations

from ridgeline.schedulers.base import Job, Scheduler
from ridgeline.schedulers.local import LocalScheduler

__all__ = ["Job", "LocalScheduler", "Scheduler"]
