"""Group commit of metric reports, off the event loop.

Each request queues its rows and waits. One flush at a time takes everything queued, commits it
in one transaction on a worker thread, and then, back in the loop and in queue order, hands each
request its inserted records (``apply``) before answering it. So:

* the commit never runs on the loop, which keeps answering other requests meanwhile;
* a request is answered only once its rows are durable, and a request's rows are all stored or
  none are;
* many concurrent requests cost one commit, not one each;
* ``apply`` (the engine, the searcher, results.csv) sees the reports in the order they arrived,
  even when the request that sent them has gone away meanwhile.

A batch that fails as a whole is retried request by request, so one bad request cannot fail
the others that happened to share its transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ridgeline.errors import LeaseLost, StorageUnavailable
from ridgeline.store.base import Store
from ridgeline.store.records import MetricRecord

log = logging.getLogger("ridgeline")

T = TypeVar("T")
#: ``(trial_id, group, [(step, values), ...])``: rows for ``Store.add_metrics_batch``.
Rows = tuple[int, str, Sequence[tuple[int, dict[str, Any]]]]


@dataclass
class _Request(Generic[T]):
    rows: list[Rows]
    apply: Callable[[list[list[MetricRecord]]], Awaitable[T]]
    future: asyncio.Future[T]
    stored: list[list[MetricRecord]] = field(default_factory=list)


class MetricWriter:
    """Commits queued reports in groups on a worker thread; see the module docstring."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[_Request[Any]] = []
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """True while rows are queued or being committed."""
        return self._task is not None

    async def write(
        self, rows: list[Rows], apply: Callable[[list[list[MetricRecord]]], Awaitable[T]]
    ) -> T:
        """Commit ``rows``; then, in the loop, ``await apply(records inserted per rows entry)``.
        Returns what ``apply`` returned. Raises what the store or ``apply`` raised. Requests are
        applied one after another: ``apply`` may yield to the loop (a big request should), and
        the next request's ``apply`` still waits for it to finish."""
        loop = asyncio.get_running_loop()
        request: _Request[T] = _Request(rows, apply, loop.create_future())
        self._queue.append(request)
        if self._task is None:
            self._task = loop.create_task(self._drain())
        # A request that goes away still has its rows committed and applied.
        return await asyncio.shield(request.future)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                group, self._queue = self._queue, []
                await self._commit(loop, group)
                for request in group:
                    await self._finish(request)
        finally:
            self._task = None

    async def _commit(self, loop: asyncio.AbstractEventLoop, group: list[_Request[Any]]) -> None:
        rows = [r for request in group for r in request.rows]
        try:
            stored = await loop.run_in_executor(None, self.store.add_metrics_batch, rows)
        except (StorageUnavailable, LeaseLost) as exc:  # no request can succeed: fail them all
            for request in group:
                request.future.set_exception(exc)
            return
        except Exception as exc:
            if len(group) == 1:
                group[0].future.set_exception(exc)
                return
            log.debug("group commit of %d requests failed (%s); committing each", len(group), exc)
            for request in group:
                try:
                    request.stored = await loop.run_in_executor(
                        None, self.store.add_metrics_batch, request.rows
                    )
                except Exception as single:
                    request.future.set_exception(single)
            return
        start = 0
        for request in group:
            request.stored = stored[start : start + len(request.rows)]
            start += len(request.rows)

    @staticmethod
    async def _finish(request: _Request[Any]) -> None:
        if request.future.done():  # the commit failed
            return
        try:
            result = await request.apply(request.stored)
        except Exception as exc:
            request.future.set_exception(exc)
        else:
            request.future.set_result(result)


__all__ = ["MetricWriter", "Rows"]
