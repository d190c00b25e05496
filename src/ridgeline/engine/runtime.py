"""What the coordinator knows about a trial while it runs, and how a process exit is judged.

The store holds what is durable (state, restarts, exit code); a ``TrialRuntime`` holds what
lives only as long as the coordinator: the job, the attempt's credential, and what was asked of
and said by the running process. ``exit_status`` turns those facts into the trial's outcome and
is pure, so every case is unit-tested without processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ridgeline.schedulers.base import Job
from ridgeline.store.records import (
    CANCELED,
    COMPLETED,
    FAILED,
    INVALID_HP,
    PAUSED,
    STOPPED,
    ExperimentState,
    TrialState,
)


@dataclass
class TrialRuntime:
    """One trial's live state in the coordinator (reset at each launch, see ``new_attempt``)."""

    job: Job | None = None
    attempt: int = 0  # launches by this coordinator, counting from 1
    stop_reason: str | None = None  # the coordinator asked it to stop (then SIGTERM, SIGKILL)
    released: bool = False  # told "no more operations" since launch
    preempt_acked: bool = False  # acknowledged a preemption (it is checkpointing to exit)
    invalid_hp: bool = False  # reported InvalidHP
    resubmission: bool = False  # this trial re-runs a failed one (resubmit_failed_trials)
    progress: dict[str, Any] = field(default_factory=dict)  # latest progress report
    lost: str | None = None  # why it was declared lost (silent too long), if it was

    def new_attempt(self, job: Job) -> None:
        """A fresh process: what the previous one was told or said no longer applies."""
        self.job = job
        self.attempt += 1
        self.stop_reason = None
        self.released = False
        self.preempt_acked = False
        self.invalid_hp = False
        self.progress = {}
        self.lost = None


@dataclass(frozen=True)
class ExitFacts:
    """Everything that decides what a trial's process exit means."""

    exit_code: int | None  # None: unknown (the process was re-attached and left no status)
    experiment_state: str  # ACTIVE, PAUSED or CANCELED
    stopping: bool  # the coordinator asked it to stop
    invalid_hp: bool
    has_metrics: bool
    closed: bool  # the searcher said: no more work for it now
    final: bool  # ... and for good
    released: bool  # told "done", maybe given new work while exiting
    preempt_acked: bool
    lost: bool = False  # it went silent and was killed: a failure whatever its exit code


def exit_status(facts: ExitFacts) -> TrialState:
    """The trial state a process exit leads to. A failure is never called a success: an exit
    code other than 0 is FAILED unless the coordinator itself ended the process; an unknown
    code counts as success only when the trial reported metrics."""
    if facts.experiment_state == ExperimentState.CANCELED:
        return CANCELED
    if facts.lost:
        return FAILED
    if facts.stopping:
        return STOPPED
    if facts.invalid_hp:
        return INVALID_HP
    succeeded = facts.exit_code == 0 or (facts.exit_code is None and facts.has_metrics)
    if not succeeded:
        return FAILED
    if facts.closed:
        return COMPLETED if facts.final else PAUSED
    if facts.released:  # told "done", then given new work while exiting
        return PAUSED
    if facts.preempt_acked or facts.experiment_state == ExperimentState.PAUSED:
        return PAUSED  # the user paused the experiment
    return COMPLETED


def describe_exit(exit_code: int | None) -> str:
    """An exit code in words, for logs and messages."""
    if exit_code is None:
        return "exit code unknown (re-attached)"
    if exit_code < 0:
        return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"


__all__ = ["ExitFacts", "TrialRuntime", "describe_exit", "exit_status"]
