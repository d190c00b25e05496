"""``results.csv`` kept current while a coordinator runs: SHERPA's results table follows the
engine's events (``ridgeline.engine.observers``), and the file follows the table.

A report's row reaches the file within ``WRITE_DELAY`` seconds (a burst of reports costs one
write), a trial's final row at once; writes run on a worker thread, so the loop never waits on
the disk. ``finish`` completes the file when the run ends. Rows that arrive before the
coordinator's loop runs (a resume's replay, a warm start) only enter the table: the first write
carries them.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

from ridgeline.results import ResultsFile, ResultsTable

log = logging.getLogger("ridgeline")

WRITE_DELAY = 0.5  # seconds: many reports in a burst cost one results.csv write


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class LiveResults:
    """An engine observer: the table gets each observation and trial end, the file follows."""

    def __init__(self, table: ResultsTable, path: Path, delay: float = WRITE_DELAY) -> None:
        self.table = table
        self.file = ResultsFile(path)
        self.delay = delay
        self._timer: asyncio.TimerHandle | None = None
        self._snapshot: tuple[int, list[str]] = (0, [])
        self._queued = False
        self._finishing = False

    # -- engine events -----------------------------------------------------------------------
    def trial_observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        self.table.add_observation(number, step, params, objective, context)
        if self._timer is None:
            loop = _running_loop()
            if loop is not None:
                self._timer = loop.call_later(self.delay, self.write)

    def trial_ended(self, number: int, status: str) -> None:
        """The final row, written at once; a trial without one (only NaN objectives) is named
        in the log, where the coordinator's other messages go."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.table.finalize(number, status)
        for warning in caught:
            log.warning("%s", warning.message)
        self.write()

    # -- the file ----------------------------------------------------------------------------
    def write(self) -> None:
        """Bring results.csv up to date: on a worker thread while the run goes on (only new
        rows are appended), here and now once ``finish`` was called."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        snapshot = (len(self.table.rows), self.table.columns())
        if self._finishing:
            self.file.update(self.table.rows, *snapshot)  # waits for a write in flight
            return
        loop = _running_loop()
        if loop is None:
            return  # not running yet: the first write carries these rows
        self._snapshot = snapshot  # before the flag: a queued write sees the newest
        if not self._queued:
            self._queued = True
            loop.run_in_executor(None, self._write_off_loop)

    def _write_off_loop(self) -> None:
        self._queued = False  # before reading the snapshot: later rows queue again
        count, columns = self._snapshot
        try:
            self.file.update(self.table.rows, count, columns)
        except OSError as exc:  # the final write at the end reports it if it persists
            log.warning("could not write %s: %s", self.file.path, exc)

    def finish(self) -> None:
        """The run is ending: write the whole file now (raises ``OSError`` when it cannot be
        written); later rows are written on the calling thread too."""
        self._finishing = True
        self.write()


__all__ = ["WRITE_DELAY", "LiveResults"]
