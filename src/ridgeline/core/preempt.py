"""``PreemptContext``: should this trial checkpoint and exit now?

A background thread long-polls the coordinator, so ``should_preempt()`` is a flag read, cheap
enough to call every batch.
"""

from __future__ import annotations

import enum
import threading
from typing import TYPE_CHECKING

from ridgeline.trial.client import TrialClient

if TYPE_CHECKING:
    from ridgeline.core.distributed import DistributedContext
    from ridgeline.trial.client import TrialClient


class PreemptMode(enum.Enum):
    WorkersAskChief = "WORKERS_ASK_CHIEF"
    ChiefOnly = "CHIEF_ONLY"
    WorkersAskMaster = "WORKERS_ASK_MASTER"


class PreemptContext:
    """In a distributed trial the chief watches and, in ``WorkersAskChief`` mode (the
    default), every ``should_preempt()`` call passes its answer to the workers, so all ranks
    stop at the same step; in ``WorkersAskMaster`` mode every rank watches for itself."""

    def __init__(
        self,
        client: TrialClient | None,
        distributed: DistributedContext | None = None,
        mode: PreemptMode = PreemptMode.WorkersAskChief,
    ) -> None:
        self._client = client
        self._dist = distributed if distributed is not None and distributed.size > 1 else None
        self._mode = PreemptMode(mode)
        self._flag = threading.Event()
        self._acknowledged = False
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        watches = self._dist is None or self._dist.rank == 0
        if client is not None and (watches or self._mode == PreemptMode.WorkersAskMaster):
            self._thread = threading.Thread(target=self._watch, name="preempt", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        assert self._client is not None
        # A connection of its own: the main thread's requests must not wait behind a long-poll.
        watcher = TrialClient(self._client.master, self._client.token, self._client.trial_id)
        try:
            while not self._closing.is_set():
                if watcher.preemption(wait=10.0):
                    self._flag.set()
                    return
        except Exception:  # the main thread's own calls report coordinator trouble
            return
        finally:
            watcher.close()

    def should_preempt(self, auto_ack: bool = True) -> bool:
        dist = self._dist
        if dist is None or self._mode == PreemptMode.WorkersAskMaster:
            answer = self._flag.is_set()
        elif dist.rank == 0:
            answer = self._flag.is_set()
            if self._mode == PreemptMode.WorkersAskChief:
                dist.broadcast(answer)
        elif self._mode == PreemptMode.ChiefOnly:
            raise RuntimeError(
                f"preempt.should_preempt() was called on a worker (rank {dist.rank}) in "
                "ChiefOnly mode; use PreemptMode.WorkersAskChief to ask from every rank"
            )
        else:
            answer = bool(dist.broadcast(None))
        if answer and auto_ack:
            self.acknowledge_preemption_signal()
        return answer

    def acknowledge_preemption_signal(self) -> None:
        if self._dist is not None and self._dist.rank != 0:
            return  # the chief acknowledges for the trial
        if not self._acknowledged and self._client is not None:
            self._client.acknowledge_preemption()
        self._acknowledged = True

    def close(self) -> None:
        self._closing.set()
