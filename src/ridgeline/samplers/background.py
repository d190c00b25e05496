"""Model-based suggestions off the coordinator's event loop.

Fitting a GP or TPE takes from milliseconds to a second; the coordinator must keep answering
trials meanwhile. ``BackgroundSampler`` wraps such a sampler. In a plain loop (the in-process
``Study``, tests) it simply calls it. When a driver has installed a worker with ``install``,
``propose`` hands the work to that worker on a snapshot of the history and answers ``WAIT``;
the worker wakes the driver when the suggestion is ready, and the next ``propose`` returns
it. The generator the worker uses is drawn from the experiment's ``rng`` on the caller's
thread, so a run that sees the same history gets the same suggestions.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import WAIT, History, Sampler

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["BackgroundSampler", "install", "uninstall"]


@dataclass
class _Worker:
    executor: Executor
    wake: Callable[[], object]  # called from the worker thread when a suggestion is ready
    time_limit: float | None


_worker: _Worker | None = None


def install(executor: Executor, wake: Callable[[], object], time_limit: float | None) -> None:
    """Run model-based proposals on ``executor`` (one coordinator per process installs it);
    ``time_limit`` caps each proposal (samplers with a ``time_limit`` of None get it)."""
    global _worker
    _worker = _Worker(executor, wake, time_limit)


def uninstall() -> None:
    global _worker
    _worker = None


def _snapshot(history: History) -> History:
    """A copy the worker can read while the engine goes on updating the original."""
    copy = History(lower_is_better=history.lower_is_better)
    copy.trials = list(history.trials)  # TrialViews are frozen: sharing them is safe
    copy.active = dict(history.active)
    copy.curves = {k: list(v) for k, v in history.curves.items()}
    return copy


class BackgroundSampler(Sampler):
    """Wraps a slow, stateless-between-calls sampler (GP, TPE) for the coordinator."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self._lock = threading.Lock()
        self._future: Future[Any] | None = None
        self._ready: list[Any] = []  # a finished suggestion (or the error it raised)

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        worker = _worker
        if worker is None:
            return self.inner.propose(space, history, pending, rng)
        with self._lock:
            if self._ready:
                out = self._ready.pop()
                if isinstance(out, BaseException):
                    raise out
                return out
            if self._future is not None:
                return WAIT
            if worker.time_limit is not None and getattr(self.inner, "time_limit", 0) is None:
                self.inner.time_limit = worker.time_limit  # type: ignore[attr-defined]
            child = random.Random(rng.getrandbits(64))
            future = worker.executor.submit(
                self.inner.propose, space, _snapshot(history), [dict(p) for p in pending], child
            )
            self._future = future
        future.add_done_callback(lambda f: self._done(f, worker.wake))
        return WAIT

    def _done(self, future: Future[Any], wake: Callable[[], object]) -> None:
        error = future.exception()
        with self._lock:
            self._ready = [error if error is not None else future.result()]
            self._future = None
        wake()

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state)
