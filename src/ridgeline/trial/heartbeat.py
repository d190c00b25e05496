"""The trial process's heartbeat: a daemon thread that tells the coordinator it lives.

The coordinator declares an attempt lost after ``RIDGELINE_HEARTBEAT_SECONDS`` without a word
from it (``ridgeline.engine.watchdog``); a trial may rightly stay silent longer than that
between reports, so this thread speaks for it, four times per interval, on a connection of its
own (a ``Connection`` serves one thread). It beats only while the process runs: a process
frozen by SIGSTOP or a dead node stops its beats too, which is the point. Imported only when
the coordinator asked for beats; one thread per process, whichever door made the client.

In a trial of several ranks under torchrun (``RANK`` set), only rank 0 beats: the chief speaks
for the trial, so a frozen chief is lost even while its workers, blocked waiting for it,
still run.
"""

from __future__ import annotations

import os
import threading
import time

from ridgeline.trial import env
from ridgeline.trial.client import TrialClient

BEATS_PER_INTERVAL = 4
_lock = threading.Lock()
_started = False


def interval() -> float | None:
    """The coordinator's interval from the environment (None: no beats wanted)."""
    try:
        seconds = float(os.environ.get(env.HEARTBEAT_SECONDS, ""))
    except ValueError:
        return None
    return seconds if 0 < seconds < float("inf") else None


def start(client: TrialClient) -> bool:
    """Start this process's heartbeat for ``client``'s attempt, once; True if it started now."""
    global _started
    seconds = interval()
    if seconds is None or os.environ.get("RANK", "0") != "0":
        return False
    with _lock:
        if _started:
            return False
        _started = True
    period = seconds / BEATS_PER_INTERVAL
    # Its own client and connection; it retries for at most one period per beat.
    beater = TrialClient(client.master, client.token, client.trial_id, retry_seconds=period)
    thread = threading.Thread(
        target=_beat, args=(beater, period), name="ridgeline-heartbeat", daemon=True
    )
    thread.start()
    return True


def _beat(client: TrialClient, period: float) -> None:
    try:
        while True:
            try:
                alive = client.heartbeat()
            except Exception:  # noqa: BLE001 - a beat that went wrong is retried, not fatal
                alive = True
            if not alive:
                return  # the coordinator refused this attempt: nothing more to say
            time.sleep(period)
    finally:
        client.close()
