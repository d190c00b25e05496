"""``SearcherContext``: the stream of operations (absolute training lengths) for this trial."""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ridgeline.values import check_objective

if TYPE_CHECKING:
    from ridgeline.core.distributed import DistributedContext
    from ridgeline.trial.client import TrialClient

log = logging.getLogger("ridgeline.core")


class SearcherMode(enum.Enum):
    WorkersAskChief = "WORKERS_ASK_CHIEF"
    ChiefOnly = "CHEIF_ONLY"  # sic: Determined's spelling, kept for scripts that compare it


class Unit(enum.Enum):
    EPOCHS = "EPOCHS"
    RECORDS = "RECORDS"
    BATCHES = "BATCHES"


class SearcherOperation:
    """Train until ``length`` (absolute), then ``report_completed(metric)`` exactly once."""

    def __init__(
        self, client: TrialClient | None, op_id: int, length: int, is_chief: bool = True
    ) -> None:
        self._client = client
        self._id = op_id
        self._length = length
        self._completed = False
        self._is_chief = is_chief

    @property
    def length(self) -> int:
        return self._length

    def _only_chief(self, call: str) -> None:
        if not self._is_chief:
            raise RuntimeError(
                f"op.{call}() was called on a worker: only the chief (distributed.rank == 0) "
                "reports to the searcher; the workers get the same operations"
            )

    def report_progress(self, length: float) -> None:
        self._only_chief("report_progress")
        if self._completed:
            raise RuntimeError("report_progress() after report_completed() on this operation")
        if self._client is not None:
            self._client.report_progress(length=float(length))

    def report_completed(self, searcher_metric: float) -> None:
        self._only_chief("report_completed")
        if self._completed:
            raise RuntimeError(
                f"report_completed() was already called for the operation to length "
                f"{self._length}; call it exactly once per operation"
            )

        value = check_objective(searcher_metric, f"operation to length {self._length}")
        if self._client is not None:
            self._client.complete_operation(self._id, value)
        else:
            log.info("searcher metric at length %s: %s", self._length, value)
        self._completed = True


class SearcherContext:
    """Yields operations as the searcher issues them; blocks while it decides (long-poll).

    Only the chief asks the coordinator. In ``WorkersAskChief`` mode (the default) the chief
    passes each operation's length on to the workers, which iterate the same operations (and
    must not report them); in ``ChiefOnly`` mode only the chief may iterate."""

    def __init__(
        self,
        client: TrialClient | None,
        max_length: int | None,
        unit: str | None,
        distributed: DistributedContext | None = None,
    ):
        self._client = client
        self._max_length = max_length
        self._unit = unit
        self._dist = distributed

    def operations(
        self, searcher_mode: SearcherMode = SearcherMode.WorkersAskChief, auto_ack: bool = True
    ) -> Iterator[SearcherOperation]:
        dist = self._dist
        if dist is None or dist.size == 1:
            yield from self._chief_operations()
        elif dist.rank == 0:
            share = searcher_mode == SearcherMode.WorkersAskChief
            yield from self._chief_operations(dist if share else None)
            if share:
                dist.broadcast(None)
        elif searcher_mode == SearcherMode.ChiefOnly:
            raise RuntimeError(
                "searcher.operations(searcher_mode=ChiefOnly) was called on a worker "
                f"(rank {dist.rank}); use WorkersAskChief to give the workers the operations"
            )
        else:
            while True:
                length = dist.broadcast(None)
                if length is None:
                    return
                yield SearcherOperation(None, -1, int(length), is_chief=False)

    def _chief_operations(
        self, workers: DistributedContext | None = None
    ) -> Iterator[SearcherOperation]:
        if self._client is None:
            ops: Iterator[SearcherOperation] = self._local_operations()
        else:
            ops = self._remote_operations()
        for op in ops:
            if workers is not None:
                workers.broadcast(op.length)
            yield op
            if not op._completed:
                raise RuntimeError(
                    f"the operation to length {op.length} was left without "
                    f"report_completed(metric); call it once training reaches op.length"
                )

    def _local_operations(self) -> Iterator[SearcherOperation]:
        yield SearcherOperation(None, 0, self._max_length or 1)

    def _remote_operations(self) -> Iterator[SearcherOperation]:
        assert self._client is not None
        while True:
            reply = self._client.next_operation()
            op = reply.get("op")
            if op is not None:
                yield SearcherOperation(self._client, int(op["id"]), int(op["length"]))
            elif reply.get("done"):
                return

    def acknowledge_out_of_ops(self) -> None:
        """Nothing to do: the coordinator knows when it issued no further operation."""

    def get_configured_units(self) -> Unit | None:
        return Unit[self._unit.upper()] if self._unit else None
