"""SLURM's command-line tools as ridgeline needs them: the argv each call takes, and what their
answers mean. No state here; ``schedulers/slurm.py`` decides when to call them.

``squeue -t all`` lists pending and running jobs and, for ``MinJobAge`` (300 s by default)
after their end, finished ones with their final state, so one call tells every state the
scheduler needs. A job missing from it has been purged, or never reached the controller.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Sequence

__all__ = [
    "ACTIVE",
    "TIMEOUT_S",
    "parse_exit_code",
    "parse_sbatch",
    "parse_squeue",
    "scancel_argv",
    "squeue_argv",
    "squeue_unknown_ids",
]

#: How long one call of a SLURM tool may take before it counts as failed.
TIMEOUT_S = 30.0

#: States of a job that has not ended yet (``squeue --help``); every other state is final.
ACTIVE = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "RESV_DEL_HOLD",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "SPECIAL_EXIT",
    }
)

_EXIT_CODE = re.compile(r"\bExitCode=(\d+):(\d+)")
_JOB_STATE = re.compile(r"\bJobState=(\S+)")


def parse_sbatch(stdout: str) -> str | None:
    """The job id from ``sbatch --parsable``'s answer (``N``, or ``N;cluster``)."""
    job_id = stdout.strip().split(";")[0]
    return job_id if job_id.isdigit() else None


def squeue_argv(job_ids: Sequence[str]) -> list[str]:
    """One ``squeue`` call for all of ``job_ids``: ``<id> <state>`` per line, finished jobs
    included."""
    return ["squeue", "--noheader", "--states=all", "--format=%i %T", f"--jobs={','.join(job_ids)}"]


def parse_squeue(stdout: str) -> dict[str, str]:
    """``{job id: state}`` from ``squeue_argv``'s output."""
    states: dict[str, str] = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return states


def squeue_unknown_ids(result: subprocess.CompletedProcess[str]) -> bool:
    """True when ``squeue`` failed only because none of the ids is known any more (it says so
    for a single purged id instead of printing nothing)."""
    return result.returncode != 0 and "Invalid job id" in result.stderr


def parse_exit_code(scontrol_show_job: str) -> tuple[str, int] | None:
    """``(state, exit code)`` from ``scontrol show job``'s text: SLURM's ``ExitCode=N:S`` is
    the batch script's exit code N, or signal S that ended it (negative here, as Popen says)."""
    state, code = _JOB_STATE.search(scontrol_show_job), _EXIT_CODE.search(scontrol_show_job)
    if state is None or code is None:
        return None
    status, signal_number = int(code.group(1)), int(code.group(2))
    return state.group(1), (-signal_number if signal_number else status)


def scancel_argv(job_id: str, force: bool) -> list[list[str]]:
    """The ``scancel`` calls that end a job. Gently: SIGTERM to every process of a running job
    (``--full`` includes the batch script and the trial under it; the job runs on until they
    exit), and a pending job is simply cancelled. ``force``: cancel the job, which SLURM does
    with SIGTERM and, after the cluster's ``KillWait``, SIGKILL (it treats ``--signal=KILL``
    the same way)."""
    if force:
        return [["scancel", job_id]]
    return [
        ["scancel", "--full", "--signal=TERM", "--state=RUNNING", job_id],
        ["scancel", "--state=PENDING", job_id],
    ]
