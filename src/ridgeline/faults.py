"""Crash points: where a test can make a process die as if the power went out.

``RIDGELINE_CRASH_AT=NAME`` kills the process with SIGKILL the first time it reaches the
point ``crash_point(NAME)``; ``NAME:N`` the N-th time. No cleanup runs: no ``finally``, no
flush, no exit handler, exactly what a crash or ``kill -9`` leaves behind. The variable is read
once, at import; unset, a crash point costs one comparison.

Points (where a coordinator crash matters): ``suggestion_stored`` (a new trial's row is
written), ``trial_running`` (its RUNNING row is written), ``trial_exit_seen`` (a trial process
ended, nothing recorded yet), ``checkpoint_files_written`` (a checkpoint's files exist, its row
not yet), ``checkpoint_registered`` (its row exists, nothing else done yet), ``metric_stored``
(a searcher metric is stored, the searcher has not decided on it), ``trial_stopping`` (the
coordinator is about to tell a running trial to stop).
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "RIDGELINE_CRASH_AT"


def _parse(spec: str) -> tuple[str, int] | None:
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    return name, (max(1, int(nth)) if nth.isdigit() else 1)


_TARGET = _parse(os.environ.get(CRASH_ENV, "").strip())
_reached = 0


def crash_point(name: str) -> None:
    """Die here (SIGKILL, at once) if ``$RIDGELINE_CRASH_AT`` names this point and visit."""
    if _TARGET is None or name != _TARGET[0]:
        return
    global _reached
    _reached += 1
    if _reached >= _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["CRASH_ENV", "crash_point"]
