"""``SGEScheduler`` and ``SLURMScheduler`` with SHERPA's signatures.

They construct now, so runner scripts that import or build them (many choose LocalScheduler
at run time) work unchanged; submitting through them raises ``SchedulerError`` until cluster
scheduling lands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.errors import SchedulerError
from ridgeline.schedulers.base import Job, Scheduler

__all__ = ["SGEScheduler", "SLURMScheduler"]


class _ClusterScheduler(Scheduler):
    """Holds SHERPA's arguments; every way of running a job says it is not available yet."""

    system = ""

    def __init__(self, submit_options: str, environment: str, output_dir: str = "") -> None:
        if not isinstance(submit_options, str):
            raise SchedulerError(
                f"{type(self).__name__} submit_options must be a string such as "
                f"'-N example -P project', got {submit_options!r}"
            )
        if not isinstance(environment, str):
            raise SchedulerError(
                f"{type(self).__name__} environment must be the path of a file to source, "
                f"got {environment!r}"
            )
        self.submit_options = submit_options
        self.environment = environment
        self.output_dir = str(output_dir)

    def _unavailable(self) -> SchedulerError:
        return SchedulerError(
            f"{type(self).__name__}: cluster scheduling ({self.system}) is not available yet in "
            f"ridgeline; run with LocalScheduler() for now"
        )

    def check(self) -> None:
        raise self._unavailable()

    def submit(
        self, command: Sequence[str], env: Mapping[str, str], name: str, cwd: str | None = None
    ) -> Job:
        raise self._unavailable()

    async def wait(self, job: Job) -> int | None:
        raise self._unavailable()

    def kill(self, job: Job, force: bool = False) -> None:
        raise self._unavailable()

    def submit_job(self, command: Any, env: Any = None, job_name: str = "") -> Any:
        raise self._unavailable()

    def get_status(self, job_id: Any) -> int:
        raise self._unavailable()

    def kill_job(self, job_id: Any) -> None:
        raise self._unavailable()


class SGEScheduler(_ClusterScheduler):
    """SHERPA's Grid Engine scheduler (``submit_options`` for ``qsub``, ``environment`` a file
    to source before the trial)."""

    system = "Sun Grid Engine"


class SLURMScheduler(_ClusterScheduler):
    """SHERPA's SLURM scheduler (``submit_options`` for ``sbatch``, ``environment`` a file to
    source before the trial)."""

    system = "SLURM"
