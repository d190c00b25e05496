"""An asyncio event loop on simulated time, so the real coordinator runs searches in seconds.

``VirtualClockLoop.time()`` is a virtual clock. It stands still while the loop has work: ready
callbacks, I/O, or work handed to threads through ``run_in_executor`` (the store's group
commits, lease renewals). Only when nothing is left to do now does it jump ahead, to the
earliest of the loop's timers (``call_later``, ``asyncio.sleep``, long-poll timeouts,
heartbeats) and its own *events* (``sleep``): simulated work, such as a trial training for
an hour, that ends at a point in time (on a microsecond grid). Events are released one at a
time, each after everything before it has settled, as in a discrete-event simulation;
simultaneous ones by their ``rank``, then in the order they were scheduled. Timers keep
asyncio's rules.

Nothing here knows about ridgeline: code written for a real loop (aiohttp, the coordinator's
timers) runs unchanged. Real sockets still work, but time does not wait for them.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import math
import selectors
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any, TypeVar, TypeVarTuple

__all__ = ["ClockStalled", "VirtualClockLoop"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

THREAD_WAIT = 1.0  # real seconds to block for thread work before looking again
RESOLUTION = 1e-9  # simulated seconds: timers this close to now are due now
GRID_DIGITS = 6  # events are due on whole microseconds


class ClockStalled(RuntimeError):
    """Nothing can happen any more on the virtual clock, yet the run has not ended."""


class _Selector(selectors.BaseSelector):
    """The real selector, polled without blocking; the loop decides what an idle wait means."""

    def __init__(self, loop: VirtualClockLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:  # there is work now: time stands still
            pass
        elif self._loop._threads:  # a thread works for the loop: its answer comes first
            ready = self._real.select(THREAD_WAIT)
        else:
            self._loop._advance(timeout)
        self._loop._catch_up()
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is simulated; see the module docstring.

    ``start``: the clock's first reading. ``idle_limit``: simulated seconds the clock may run
    on timers alone, without an event: then nothing simulated is going on, and timers (long
    polls, heartbeats, lease renewals) would tick forever, so ``ClockStalled`` is raised.
    With nothing at all left to wait for, it is raised at once."""

    def __init__(self, start: float = 0.0, idle_limit: float = 3600.0) -> None:
        self._now = float(start)
        self._events: list[tuple[float, int, int, asyncio.Future[None]]] = []
        self._sequence = 0
        self._timers: list[asyncio.TimerHandle] = []  # every call_at, to jump to exact times
        self._threads = 0  # run_in_executor calls not yet answered
        self._idle_limit = idle_limit
        self._idle_since: float | None = None  # when the last event was released
        super().__init__(_Selector(self))
        # asyncio runs the timers due within this of now; _catch_up moves the clock to them.
        self._clock_resolution: float = RESOLUTION

    def time(self) -> float:
        return self._now

    def sleep(self, delay: float, rank: int = 0) -> asyncio.Future[None]:
        """A future that completes ``delay`` simulated seconds from now, as an event (see the
        module docstring); cancel it to withdraw the event."""
        future: asyncio.Future[None] = self.create_future()
        self._sequence += 1
        # On a grid: the rounding errors timers leave in the clock never part simultaneous ends.
        when = round(self._now + max(0.0, delay), GRID_DIGITS)
        heapq.heappush(self._events, (when, rank, self._sequence, future))
        return future

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        heapq.heappush(self._timers, handle)
        return handle

    def run_in_executor(
        self, executor: Executor | None, func: Callable[[*Ts], T], *args: *Ts
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._threads += 1
        future.add_done_callback(self._thread_done)
        return future

    async def shutdown_default_executor(self) -> None:
        self._threads += 1  # the executor is joined on a thread of its own
        try:
            await super().shutdown_default_executor()
        finally:
            self._threads -= 1

    def _thread_done(self, future: asyncio.Future[Any]) -> None:
        self._threads -= 1

    def _next_event(self) -> float:
        while self._events and self._events[0][3].done():  # cancelled meanwhile
            heapq.heappop(self._events)
        return self._events[0][0] if self._events else math.inf

    def _next_timer(self) -> float:
        """When the earliest pending timer is due, exactly (``now + timeout`` may round below
        it, and a deadline one rounding away would then never be reached)."""
        timers = self._timers
        while timers and (timers[0].cancelled() or timers[0].when() <= self._now):
            heapq.heappop(timers)  # withdrawn, or due already (run by now)
        return timers[0].when() if timers else math.inf

    def _catch_up(self) -> None:
        """asyncio runs the timers due within its clock resolution of now: the clock moves to
        the last of them, or a deadline a rounding error ahead would be waited for again and
        again (a long-poll's remaining wait) with no time passing."""
        timers, horizon = self._timers, self._now + self._clock_resolution
        while timers and timers[0].when() < horizon:
            handle = heapq.heappop(timers)
            if not handle.cancelled():
                self._now = max(self._now, handle.when())
                horizon = self._now + self._clock_resolution

    def _advance(self, timeout: float | None) -> None:
        """Nothing to do now: move to the next event (releasing it) or the next timer."""
        timer = math.inf
        if timeout is not None:
            timer = self._next_timer()
            if timer == math.inf:  # a timer that did not come through call_at
                timer = self._now + max(timeout, math.ulp(self._now))
        event = self._next_event()
        if event == math.inf:
            self._check_idle(timer)
        else:
            self._idle_since = None
        if event <= timer:
            self._now = max(self._now, event)
            future = heapq.heappop(self._events)[3]
            future.set_result(None)
            return
        self._now = timer

    def _check_idle(self, timer: float) -> None:
        if timer == math.inf:
            raise ClockStalled(
                f"nothing is left to happen at simulated time {self._now:g} s: no timer, no "
                f"event, no thread at work, and the run has not ended"
            )
        if self._idle_since is None:
            self._idle_since = self._now
        elif timer - self._idle_since > self._idle_limit:
            raise ClockStalled(
                f"nothing simulated has happened for {timer - self._idle_since:g} simulated "
                f"seconds (since {self._idle_since:g} s); only timers are left, and the run "
                f"has not ended"
            )
