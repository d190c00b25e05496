"""``SGEScheduler`` with SHERPA's signature, and the argument checks cluster schedulers share.

``SGEScheduler`` constructs, so runner scripts that import or build it (many choose
LocalScheduler at run time) work unchanged; submitting through it raises ``SchedulerError``
until Grid Engine scheduling lands. ``SLURMScheduler`` (``schedulers/slurm.py``) is real.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.errors import SchedulerError
from ridgeline.schedulers.base import Job, Scheduler

__all__ = ["SGEScheduler", "check_sherpa_arguments"]


def check_sherpa_arguments(cls_name: str, submit_options: Any, environment: Any) -> None:
    """SHERPA's cluster schedulers take ``submit_options`` and ``environment`` as strings."""
    if not isinstance(submit_options, str):
        raise SchedulerError(
            f"{cls_name} submit_options must be a string such as '-N example -P project', "
            f"got {submit_options!r}"
        )
    if not isinstance(environment, str):
        raise SchedulerError(
            f"{cls_name} environment must be the path of a file to source, got {environment!r}"
        )


class SGEScheduler(Scheduler):
    """SHERPA's Grid Engine scheduler (``submit_options`` for ``qsub``, ``environment`` a file
    to source before the trial). Every way of running a job says it is not available yet."""

    system = "Sun Grid Engine"

    def __init__(self, submit_options: str, environment: str, output_dir: str = "") -> None:
        check_sherpa_arguments(type(self).__name__, submit_options, environment)
        self.submit_options = submit_options
        self.environment = environment
        self.output_dir = str(output_dir)

    def _unavailable(self) -> SchedulerError:
        return SchedulerError(
            f"{type(self).__name__}: cluster scheduling ({self.system}) is not available yet in "
            f"ridgeline; run with LocalScheduler() or SLURMScheduler() for now"
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
