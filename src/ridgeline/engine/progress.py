"""The live progress display of a search, for both doors and the in-process Study.

One rich console carries the bar and the log: while the bar is up, the ``ridgeline`` logger's
terminal handler is swapped for one that prints through the bar's console (above the bar),
so a log line never lands in the middle of it. The bar shows trials done of the budget, how
many run, completed, failed and were stopped, the training length spent (in the searcher's
unit) of its budget, the best value, the elapsed time and an estimate of the time left.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import TYPE_CHECKING, Any

from ridgeline.store.records import (
    COMPLETED,
    FAILED,
    RUNNING,
    STOPPED,
    TRIAL_DONE_STATES,
)

if TYPE_CHECKING:
    from rich.console import Console

    from ridgeline.engine.coordinator import Coordinator
    from ridgeline.engine.engine import Engine

__all__ = ["Progress", "length_unit"]


def length_unit(searcher: dict[str, Any] | None) -> str:
    """What one unit of training is: the ``searcher:`` length unit (batches, epochs, records)
    when it names one, ``steps`` for a Core-API length without a unit, and ``iterations``
    for SHERPA searches (no ``searcher:`` mapping)."""
    if not searcher:
        return "iterations"
    for key in ("max_length", "length_per_round", "max_time"):
        value = searcher.get(key)
        if isinstance(value, dict) and value:
            return str(next(iter(value)))
    if searcher.get("time_metric"):
        return str(searcher["time_metric"])
    return "steps"


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class _ConsoleHandler(logging.Handler):
    """Log records printed through the progress console, above the live bar."""

    def __init__(self, console: Console, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(formatter or logging.Formatter("%(levelname)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False)
        except Exception:  # a log line must never end the search
            self.handleError(record)


class Progress:
    """A live progress line over an engine (a coordinator's, or a Study's)."""

    def __init__(
        self,
        total: int | None,
        length_budget: int | None = None,
        unit: str = "iterations",
        console: Console | None = None,
    ) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.length_budget = length_budget
        self.unit = unit
        self.console = console or Console(stderr=True)
        self.started = time.monotonic()
        self.progress = Bar(
            TextColumn("trials"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[states]}"),
            TextColumn("{task.fields[trained]}"),
            TextColumn("{task.fields[best]}"),
            TextColumn("elapsed"),
            TimeElapsedColumn(),  # ticks between events too
            TextColumn("{task.fields[eta]}"),
            console=self.console,
            transient=False,
        )
        self.task = self.progress.add_task(
            "trials", total=total, states="", trained="", best="", eta="ETA -"
        )
        self._swapped: list[tuple[logging.Handler, logging.Handler]] = []
        self._running = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, coordinator: Coordinator | None = None) -> None:
        self.started = time.monotonic()
        self.progress.reset(self.task, total=self.progress.tasks[0].total)  # elapsed from now
        self._route_log()
        self.progress.start()
        self._running = True
        if coordinator is not None:
            self.update(coordinator)

    def stop(self) -> None:
        if self._running:
            self.progress.stop()
            self._running = False
        self._restore_log()

    def _route_log(self) -> None:
        """Swap the ridgeline logger's terminal handlers for one on the bar's console."""
        logger = logging.getLogger("ridgeline")
        terminal = {
            id(stream) for stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
        }
        for handler in list(logger.handlers):
            if not isinstance(handler, logging.StreamHandler) or isinstance(
                handler, logging.FileHandler
            ):
                continue
            if id(handler.stream) not in terminal:  # a file or a capture: not the terminal
                continue
            replacement = _ConsoleHandler(self.console, handler.formatter)
            replacement.setLevel(handler.level)
            replacement._ridgeline = getattr(handler, "_ridgeline", False)  # type: ignore[attr-defined]
            logger.removeHandler(handler)
            logger.addHandler(replacement)
            self._swapped.append((handler, replacement))

    def _restore_log(self) -> None:
        logger = logging.getLogger("ridgeline")
        for original, replacement in self._swapped:
            logger.removeHandler(replacement)
            logger.addHandler(original)
        self._swapped = []

    # -- updates -----------------------------------------------------------------------------
    def update(self, coordinator: Coordinator) -> None:
        """The coordinator's ``on_progress`` hook."""
        self.refresh(coordinator.engine, coordinator.results.best().get("Objective"))

    def refresh(self, engine: Engine, best: float | None) -> None:
        states = [r.state for r in engine.records.values()]
        done = sum(1 for state in states if state in TRIAL_DONE_STATES)
        counts = [(states.count(RUNNING), "running"), (states.count(COMPLETED), "completed")]
        counts += [(states.count(s), s.lower()) for s in (FAILED, STOPPED) if s in states]
        trained_now = engine.length_trained()
        trained = f"trained {trained_now}"
        if self.length_budget:
            trained += f" of {self.length_budget}"
        trained += f" {self.unit}"
        fraction = self._fraction(engine, done, trained_now)
        elapsed = time.monotonic() - self.started
        eta = "ETA -"
        if fraction >= 1:
            eta = "ETA 0:00:00"
        elif fraction > 0:
            eta = f"ETA {_clock(elapsed * (1 - fraction) / fraction)}"
        shown = best is not None and isinstance(best, int | float) and math.isfinite(best)
        self.progress.update(
            self.task,
            completed=done,
            states=", ".join(f"{n} {name}" for n, name in counts),
            trained=trained,
            best=f"best {best:.6g}" if shown else "",
            eta=eta,
        )

    def _fraction(self, engine: Engine, done: int, trained: int) -> float:
        """How much of the search is done, for the ETA: the least of the estimates at hand
        (the searcher's own, the share of the length budget spent, the share of the trial
        budget ended), so the ETA errs long rather than short; 0 when none is known."""
        estimates = []
        try:
            searcher = float(engine.searcher.progress())
        except Exception:
            searcher = 0.0
        if searcher > 0:
            estimates.append(searcher)
        if self.length_budget:
            estimates.append(trained / self.length_budget)
        total = self.progress.tasks[0].total
        if total:
            estimates.append(done / total)
        return min(max(min(estimates), 0.0), 1.0) if estimates else 0.0


class StudyProgress:
    """Follows a Study's engine as an engine observer: redraws after every observation and
    every trial's end; the Study stops it when the search is done."""

    def __init__(self, engine: Engine, progress: Progress, best: Any) -> None:
        self.engine = engine
        self.progress = progress
        self.best = best  # () -> the best objective so far, or None
        self.progress.start()
        self.redraw()

    def redraw(self) -> None:
        if self.progress._running:
            self.progress.refresh(self.engine, self.best())

    def trial_observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        self.redraw()

    def trial_ended(self, number: int, status: str) -> None:
        self.redraw()
