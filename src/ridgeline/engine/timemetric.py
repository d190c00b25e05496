"""Determined 0.38 ASHA input: validation reports that carry the searcher metric and the time
metric (``searcher.time_metric``) become the searcher's reports, at the time metric's value.

A report without a usable time metric drives nothing; the log says so once per kind of
problem, and an experiment whose validations never carried it cannot end COMPLETED (see
``problem``)."""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any

from ridgeline.values import MAX_STEP

log = logging.getLogger("ridgeline")

__all__ = ["TimeMetric"]


class TimeMetric:
    """Reads (time, metric) from validation reports and remembers what went wrong."""

    def __init__(self, name: str, searcher_metric: str) -> None:
        self.name = name
        self.searcher_metric = searcher_metric
        self.seen = False  # a validation carried both metrics
        self.missing = False  # one carried the searcher metric without the time metric
        self.unusable = False  # one carried a time metric that is not a number >= 0

    def searcher_input(self, number: int, values: dict[str, Any]) -> tuple[int, float] | None:
        """(time, metric) for the searcher, or None (no searcher metric, or no usable time).
        The searcher metric is already known to be a number (checked with the report)."""
        if self.searcher_metric not in values:
            return None
        metric = float(values[self.searcher_metric])
        if self.name not in values:
            if not self.missing:
                log.warning(
                    "Trial %d reported validation metrics %s without the time metric %r "
                    "(searcher.time_metric); ASHA ranks trials at that time and ignores these "
                    "reports: add it, e.g. report_validation_metrics(steps_completed=n, "
                    "metrics={%r: ..., %r: n})",
                    number,
                    sorted(values),
                    self.name,
                    self.searcher_metric,
                    self.name,
                )
            self.missing = True
            return None
        raw = values[self.name]
        time = _whole(raw)
        if time is None:
            if not self.unusable:
                log.warning(
                    "Trial %d reported the time metric %r as %r, which is not a number >= 0; "
                    "ASHA ignores such reports: report how far the trial has trained, e.g. "
                    "the batches completed",
                    number,
                    self.name,
                    raw,
                )
            self.unusable = True
            return None
        self.seen = True
        return time, metric

    def problem(self) -> str | None:
        """Why the experiment cannot end COMPLETED: its validations never gave ASHA a time."""
        if self.seen or not (self.missing or self.unusable):
            return None
        how = "without it" if self.missing else "with a value that is not a number >= 0"
        return (
            f"validations carried the searcher metric {self.searcher_metric!r} but never a "
            f"usable time metric {self.name!r} (searcher.time_metric; reported {how}), so ASHA "
            f"could not rank any trial; report it with the validation metrics"
        )


def _whole(value: Any) -> int | None:
    """The time as Determined reads it (a number truncated to a whole one); None if unusable."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    if not math.isfinite(number) or number < 0 or number > MAX_STEP:
        return None
    return int(value) if isinstance(value, numbers.Integral) else int(number)
