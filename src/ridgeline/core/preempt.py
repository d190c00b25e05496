"""``PreemptContext``: should this trial checkpoint and exit now?

A background thread long-polls the coordinator, so ``should_preempt()`` is a flag read, cheap
enough to call every batch.
"""

from __future__ import annotations

import enum
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ridgeline.trial.client import TrialClient


class PreemptMode(enum.Enum):
    WorkersAskChief = "WORKERS_ASK_CHIEF"
    ChiefOnly = "CHIEF_ONLY"
    WorkersAskMaster = "WORKERS_ASK_MASTER"


class PreemptContext:
    def __init__(self, client: TrialClient | None) -> None:
        self._client = client
        self._flag = threading.Event()
        self._acknowledged = False
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        if client is not None:
            self._thread = threading.Thread(target=self._watch, name="preempt", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        from ridgeline.trial.client import TrialClient

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
        if not self._flag.is_set():
            return False
        if auto_ack:
            self.acknowledge_preemption_signal()
        return True

    def acknowledge_preemption_signal(self) -> None:
        if not self._acknowledged and self._client is not None:
            self._client.acknowledge_preemption()
        self._acknowledged = True

    def close(self) -> None:
        self._closing.set()
