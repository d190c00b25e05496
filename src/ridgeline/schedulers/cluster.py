"""The argument checks SHERPA's cluster schedulers (``SLURMScheduler``, ``SGEScheduler``)
share."""

from __future__ import annotations

from typing import Any

from ridgeline.errors import SchedulerError

__all__ = ["check_sherpa_arguments"]


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
