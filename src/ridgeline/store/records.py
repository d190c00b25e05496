"""Immutable records the store hands out. Every field is plain data (JSON-able dicts, numbers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ExperimentState(StrEnum):
    """An experiment's lifecycle. Members are strings, so the store keeps plain text."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    ERROR = "ERROR"


class TrialState(StrEnum):
    """A trial's lifecycle; SHERPA's statuses (COMPLETED, FAILED, STOPPED) are a subset."""

    PENDING = "PENDING"  # created, no process yet
    RUNNING = "RUNNING"  # a process was started for it
    PAUSED = "PAUSED"  # exited on request with a checkpoint, to resume later
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"  # stopped early by the searcher, a stopping rule or the user
    CANCELED = "CANCELED"  # the experiment was killed
    INVALID_HP = "INVALID_HP"  # the trial rejected its hyperparameters; it does not count


class CheckpointState(StrEnum):
    COMPLETED = "COMPLETED"
    DELETED = "DELETED"


# Short names used across the code base (one spelling of each state, from the enums above).
ACTIVE = ExperimentState.ACTIVE
ERROR = ExperimentState.ERROR
PENDING = TrialState.PENDING
RUNNING = TrialState.RUNNING
PAUSED = TrialState.PAUSED
COMPLETED = TrialState.COMPLETED
FAILED = TrialState.FAILED
STOPPED = TrialState.STOPPED
CANCELED = TrialState.CANCELED
INVALID_HP = TrialState.INVALID_HP
TRIAL_DONE_STATES = frozenset({COMPLETED, FAILED, STOPPED, CANCELED, INVALID_HP})
EXPERIMENT_DONE_STATES = frozenset(
    {ExperimentState.COMPLETED, ExperimentState.CANCELED, ExperimentState.ERROR}
)


@dataclass(frozen=True)
class ExperimentRecord:
    id: int
    name: str
    state: str
    config: dict[str, Any]
    created_at: float
    # Where the live coordinator listens: {"host", "port", "pid", "token"}; None when none ran.
    coordinator: dict[str, Any] | None = None
    # Hidden from ``experiment list`` unless asked for (Determined's archive); kept otherwise.
    archived: bool = False


@dataclass(frozen=True)
class TrialRecord:
    id: int  # unique across the store
    experiment_id: int
    number: int  # 1-based within its experiment; SHERPA's Trial-ID
    request_id: int  # the searcher's id for the Create that made it; unique per experiment
    params: dict[str, Any]
    state: str
    created_at: float
    parent_id: int | None = None
    restarts: int = 0
    exit_code: int | None = None
    # What the scheduler needs to find the process again: {"pid", "start_time", "resource", ...}
    job: dict[str, Any] | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class MetricRecord:
    seq: int  # store-wide cursor, strictly increasing in insertion order
    trial_id: int
    group: str  # "validation" (the searcher's input), "training", or a user group
    step: int
    values: dict[str, Any]
    time: float


@dataclass(frozen=True)
class CheckpointRecord:
    uuid: str
    trial_id: int
    steps_completed: int
    created_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    state: str = "COMPLETED"  # or "DELETED"


@dataclass(frozen=True)
class EventRecord:
    seq: int
    experiment_id: int
    kind: str
    data: dict[str, Any]
    time: float
