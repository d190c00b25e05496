"""Noticing trial attempts that went silent: a lost node, a frozen process, a cut network.

A batch system may show a job RUNNING for minutes after its node died, and a stopped process
(SIGSTOP, a hung mount) never exits at all; only silence tells. Each attempt's clock starts at
its first contact (a job waiting in a cluster's queue is not lost) and every authenticated
request resets it. One timer sleeps until the earliest deadline, so an idle coordinator wakes
about once per interval whatever the number of trials, and never polls in short steps.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any

from ridgeline.errors import ConfigError

log = logging.getLogger("ridgeline")

#: Seconds of silence after which a running attempt is declared lost, unless set otherwise.
DEFAULT_HEARTBEAT_SECONDS = 60.0
OFF = ("off", "false", "no", "none")
SLACK = 0.001  # seconds


def heartbeat_setting(value: Any, name: str = "heartbeat_seconds") -> float:
    """The interval a user's setting gives: seconds > 0, or 0.0 for off (``off``, ``false``,
    ``0`` or ``None``). Anything else is a ``ConfigError`` naming ``name``."""
    if value is None or value is False:
        return 0.0
    if isinstance(value, str):
        text = value.strip().lower()
        if text in OFF:
            return 0.0
        try:
            value = float(text)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(
            f"{name} must be a number of seconds > 0, or off (got {value!r:.60}); e.g. {name}=60"
        )
    if value < 0:
        raise ConfigError(f"{name} must be > 0 seconds, or off (got {value!r}); e.g. {name}=60")
    return float(value)


class Watchdog:
    """Calls ``on_silent(number, seconds)`` once for each attempt with no ``contact`` for
    ``interval`` seconds. Runs in the coordinator's loop."""

    def __init__(self, interval: float, on_silent: Callable[[int, float], None]) -> None:
        self.interval = interval
        self.on_silent = on_silent
        self._last: dict[int, float] = {}  # trial number -> loop time of its last contact
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0  # when the timer should fire
        self.wakeups = 0  # timer firings, for tests and benchmarks

    def contact(self, number: int) -> None:
        """The attempt of trial ``number`` was heard from now (it starts being watched)."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._last[number] = now
        if self._timer is None:
            self._arm(loop, now + self.interval)

    def forget(self, number: int) -> None:
        """The attempt ended (or a new one starts and has not been heard from yet)."""
        self._last.pop(number, None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._due = when
        self._timer = loop.call_at(when, self._check)

    def _check(self) -> None:
        self._timer = None
        self.wakeups += 1
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = now - self._due
        if late > self.interval / 4 and self._last:
            # The loop itself did not run (the coordinator was stopped, suspended or blocked):
            # nobody listened, so no silence counts; the trials' beats wait in their sockets.
            log.warning(
                "The coordinator did not run for %.3g s; trials' silence counts from now", late
            )
            self._last = dict.fromkeys(self._last, now)
            self._arm(loop, now + self.interval)
            return
        due = now + SLACK  # the loop may run a timer a clock tick early
        silent = [(n, now - t) for n, t in self._last.items() if t + self.interval <= due]
        for number, _ in silent:
            del self._last[number]
        if self._last:
            self._arm(loop, min(self._last.values()) + self.interval)
        for number, seconds in silent:
            self.on_silent(number, seconds)


__all__ = ["DEFAULT_HEARTBEAT_SECONDS", "Watchdog", "heartbeat_setting"]
