"""Who holds an experiment's lease, and when a holder is known to be gone.

A lease is the store's guarantee that one coordinator at a time runs an experiment: acquiring
it returns a fencing token, and every later write of that store handle checks that its token is
still the current one. The holder string names the process (``host:pid:start``) so a refusal
can say who holds it, and so a holder that died on this host can be replaced at once instead of
after its lease expires (a shortcut only: the fence is what makes a stale holder harmless).
Stdlib only: importing the store must stay cheap.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from ridgeline.errors import LeaseHeld, LeaseLost
from ridgeline.schedulers.local import process_start_time

__all__ = [
    "DEFAULT_TTL",
    "LeaseRecord",
    "lease_ttl",
    "this_holder",
    "holder_gone",
    "holder_pid",
    "describe_holder",
]

DEFAULT_TTL = 20.0  # seconds; a coordinator renews every third of it


@dataclass(frozen=True)
class LeaseRecord:
    experiment_id: int
    holder: str | None  # None once released
    token: int  # the fencing token: grows by one with every acquisition
    expires_at: float  # time.time() after which another holder may take it over

    def live(self, now: float | None = None) -> bool:
        return self.holder is not None and self.expires_at > (time.time() if now is None else now)


def lease_ttl() -> float:
    """The lease time-to-live: ``RIDGELINE_LEASE_TTL`` seconds, else ``DEFAULT_TTL``."""
    raw = os.environ.get("RIDGELINE_LEASE_TTL")
    if raw:
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if value > 0:
            return value
    return DEFAULT_TTL


def _start_time(pid: int) -> int | None:
    return process_start_time(pid)


def this_holder() -> str:
    """This process as a lease holder: ``host:pid:start-time``."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid) or 0}"


def _parse(holder: str) -> tuple[str, int, int] | None:
    host, _, rest = holder.rpartition(":")
    host, _, pid = host.rpartition(":")
    try:
        return host, int(pid), int(rest)
    except ValueError:
        return None


def holder_pid(holder: str) -> int | None:
    """The pid in a holder string (None when it names no process)."""
    parsed = _parse(holder)
    return parsed[1] if parsed else None


def holder_gone(holder: str) -> bool:
    """True when ``holder`` ran on this host and that process (same pid and start time) no
    longer exists; False whenever that cannot be known."""
    parsed = _parse(holder)
    if parsed is None:
        return False
    host, pid, started = parsed
    if host != socket.gethostname() or pid <= 0:
        return False
    now_started = _start_time(pid)
    return now_started is None or (started != 0 and now_started != started)


def local_holder_pid(holder: str | None) -> int | None:
    """The pid of ``holder`` when it is a live process on this host (same pid and start
    time), so that signalling it reaches that very process; else None."""
    parsed = _parse(holder) if holder else None
    if parsed is None:
        return None
    host, pid, started = parsed
    if host != socket.gethostname() or _start_time(pid) != started:
        return None
    return pid


def describe_holder(holder: str | None) -> str:
    """``host … pid …`` for messages."""
    if holder is None:
        return "nobody"
    parsed = _parse(holder)
    if parsed is None:
        return repr(holder)
    return f"host {parsed[0]}, pid {parsed[1]}"


def refuse_unless_free(
    experiment_id: int, current: LeaseRecord | None, holder: str, now: float
) -> None:
    """Raise ``LeaseHeld`` when ``current`` is live and its holder is not known to be gone."""
    if current is None or not current.live(now) or current.holder is None:
        return
    if holder_gone(current.holder):
        return

    left = current.expires_at - now
    raise LeaseHeld(
        f"experiment {experiment_id} is already run by a coordinator on "
        f"{describe_holder(current.holder)} (lease {current.token}, expires in {left:.0f} s "
        f"unless renewed); stop that coordinator first, or wait for it to end",
        current.holder,
        current.expires_at,
    )


def lost(experiment_id: int, token: int, current: LeaseRecord | None) -> Exception:
    """The ``LeaseLost`` for a handle whose ``token`` is no longer current."""
    if current is None or current.holder is None:
        now_held = "it was released"
    else:
        now_held = f"lease {current.token} is held by {describe_holder(current.holder)}"
    return LeaseLost(
        f"lost the lease on experiment {experiment_id} (held token {token}; {now_held}): "
        f"another coordinator took it over, so this one may no longer write"
    )
