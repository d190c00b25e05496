"""Grid Engine's command-line tools as ridgeline needs them: the argv each call takes, and
what their answers mean. No state here; ``schedulers/sge.py`` decides when to call them.

``qstat`` lists a user's pending and running jobs only: a job that ended leaves the listing,
and ``qacct -j`` then tells how it ended (once the accounting file has been flushed).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "TIMEOUT_S",
    "is_active",
    "is_queued",
    "parse_qacct",
    "parse_qstat",
    "parse_qsub",
    "parse_settings",
    "qdel_argv",
    "qstat_argv",
]

#: How long one call of a Grid Engine tool may take before it counts as failed.
TIMEOUT_S = 30.0

_JOB_ID = re.compile(r"^(\d+)(?:\.\S*)?$")
_QACCT_FIELD = re.compile(r"^(\w+)\s+(.*?)\s*$")


def qstat_argv() -> list[str]:
    """One ``qstat`` call: every pending and running job of this user, one line each."""
    return ["qstat"]


def parse_qstat(stdout: str, job_ids: Sequence[str]) -> dict[str, str]:
    """``{job id: state}`` (``qw``, ``r``, ``dr``, ``Eqw``, ...) of ``job_ids`` among the
    listed jobs (the two header lines and other jobs are skipped)."""
    wanted = set(job_ids)
    states: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0] in wanted:
            states[parts[0]] = parts[4]
    return states


def is_active(state: str) -> bool:
    """A listed job has not ended, unless it is in an error state (``Eqw``): Grid Engine
    keeps such a job listed, never to run, until someone deletes it."""
    return "E" not in state


def is_queued(state: str) -> bool:
    """Pending (``qw``), held (``hqw``) or waiting to be re-run (``Rq``); not yet running."""
    return "q" in state


def parse_qsub(stdout: str) -> str | None:
    """The job id from ``qsub -terse``'s answer (``N``, or ``N.1-4:1`` for an array job)."""
    match = _JOB_ID.match(stdout.strip())
    return match.group(1) if match else None


def parse_qacct(stdout: str) -> tuple[int, str] | None:
    """``(exit status, failed)`` from ``qacct -j``'s record: the job script's exit status
    (128 + N when signal N ended it) and why Grid Engine itself failed the job ("0" when it
    did not; "100 : assumedly after job" after a ``qdel``). The last record counts."""
    exit_status: int | None = None
    failed = "0"
    for line in stdout.splitlines():
        match = _QACCT_FIELD.match(line)
        if not match:
            continue
        key, value = match.groups()
        if key == "failed":
            failed = value
        elif key == "exit_status" and value.split()[0].isdigit():
            exit_status = int(value.split()[0])
    return None if exit_status is None else (exit_status, failed)


def parse_settings(stdout: str) -> dict[str, str]:
    """``{name: value}`` of a ``qconf -s...`` listing (one ``name  value`` per line), such as
    ``qconf -sp PE``'s parallel environment."""
    settings = {}
    for line in stdout.splitlines():
        match = _QACCT_FIELD.match(line)
        if match:
            settings[match.group(1)] = match.group(2)
    return settings


def qdel_argv(job_id: str, force: bool) -> list[str]:
    """``qdel``: a job submitted with ``-notify`` first gets SIGUSR2 (turned into SIGTERM for
    the trial by its job script), then SIGKILL after the queue's ``notify`` time; a pending
    job is simply removed. ``force`` (``-f``, for Grid Engine managers) removes it at once."""
    return ["qdel", "-f", job_id] if force else ["qdel", job_id]
