"""The argument checks the cluster schedulers (``SLURMScheduler``, ``SGEScheduler``,
``DaskScheduler``) share."""

from __future__ import annotations

from typing import Any

from ridgeline.errors import SchedulerError

__all__ = ["check_gpus_per_trial", "check_sherpa_arguments"]


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


def check_gpus_per_trial(cls_name: str, gpus_per_trial: Any) -> int:
    """GPUs asked for each job: a whole number, 0 for none."""
    if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int):
        raise SchedulerError(
            f"{cls_name} gpus_per_trial must be a whole number, got {gpus_per_trial!r}"
        )
    if gpus_per_trial < 0:
        raise SchedulerError(f"{cls_name} gpus_per_trial must be >= 0, got {gpus_per_trial}")
    return gpus_per_trial
