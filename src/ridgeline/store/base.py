"""The store interface: the durable record of experiments, trials, metrics and checkpoints.

The engine is the only writer. Reads by cursor (``read_metrics(after=...)``) so nothing is ever
rescanned. Every implementation must pass ``ridgeline.testing.store_conformance``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from ridgeline.errors import ExperimentExists, StoreError
from ridgeline.store.lease import LeaseRecord
from ridgeline.store.records import (
    ACTIVE,
    PENDING,
    CheckpointRecord,
    EventRecord,
    ExperimentRecord,
    MetricRecord,
    TrialRecord,
)

_UNSET: Any = object()


class Store(ABC):
    """Abstract store. Methods raise ``ridgeline.errors.StoreError`` for unknown ids."""

    #: True when records survive the process (SQL); False for the in-memory store.
    durable: bool = False

    def __init__(self) -> None:
        # experiment id -> the fencing token this handle holds; while it holds one, every
        # write checks that the token is still current (LeaseLost otherwise).
        self._fences: dict[int, int] = {}

    # -- leases ------------------------------------------------------------------------------
    @abstractmethod
    def acquire_lease(self, experiment_id: int, holder: str, ttl: float) -> int:
        """Take the experiment's lease for ``ttl`` seconds; returns the fencing token, one
        more than the previous holder's.

        Raises ``LeaseHeld`` (naming the holder and the expiry) while another holder's lease
        is live, unless that holder ran on this host and its process is gone. From now on
        every write through this handle checks the token and raises ``LeaseLost`` once another
        holder has taken the lease over."""

    @abstractmethod
    def renew_lease(self, experiment_id: int, token: int, ttl: float) -> None:
        """Extend the lease to ``ttl`` seconds from now; ``LeaseLost`` when ``token`` is no
        longer current (even if expired, a lease nobody took over is renewed)."""

    @abstractmethod
    def release_lease(self, experiment_id: int, token: int) -> bool:
        """Give the lease up (False, and nothing changes, when ``token`` is not current); the
        handle stops fencing its writes on it."""

    @abstractmethod
    def get_lease(self, experiment_id: int) -> LeaseRecord | None:
        """The experiment's lease (None when it was never taken)."""

    def fence(self, experiment_id: int) -> int | None:
        """The fencing token this handle holds on the experiment, if any."""
        return self._fences.get(experiment_id)

    # -- experiments -------------------------------------------------------------------------
    @abstractmethod
    def create_experiment(
        self,
        name: str,
        config: dict[str, Any],
        state: str = ACTIVE,
        *,
        unless: Callable[[ExperimentRecord], bool] | None = None,
    ) -> ExperimentRecord:
        """Record a new experiment. With ``unless``, check and create are one transaction:
        when an existing experiment satisfies ``unless``, nothing is created and
        ``ExperimentExists`` names it (two processes racing to create one never both do)."""

    @abstractmethod
    def get_experiment(self, experiment_id: int) -> ExperimentRecord: ...

    @abstractmethod
    def list_experiments(self) -> list[ExperimentRecord]: ...

    @abstractmethod
    def update_experiment(
        self,
        experiment_id: int,
        *,
        state: str | None = None,
        config: dict[str, Any] | None = None,
        coordinator: dict[str, Any] | None = _UNSET,
        archived: bool | None = None,
    ) -> ExperimentRecord: ...

    @abstractmethod
    def delete_experiment(self, experiment_id: int) -> None:
        """Remove the experiment and every row that belongs to it (trials, metrics,
        checkpoint records, events, searcher state, lease), in one transaction where the store
        has them. Files are the caller's business. A trial of another experiment that named
        one of these trials as its parent keeps its row, with no parent."""

    # -- trials ------------------------------------------------------------------------------
    @abstractmethod
    def create_trial(
        self,
        experiment_id: int,
        request_id: int,
        params: dict[str, Any],
        parent_id: int | None = None,
        state: str = PENDING,
    ) -> TrialRecord:
        """Create a trial, numbered 1, 2, ... within the experiment.

        Idempotent on ``(experiment_id, request_id)``: a second call returns the existing trial
        unchanged, so a coordinator that crashed between deciding and recording can replay.
        """

    @abstractmethod
    def get_trial(self, trial_id: int) -> TrialRecord: ...

    @abstractmethod
    def list_trials(self, experiment_id: int) -> list[TrialRecord]:
        """All trials of an experiment, ordered by number."""

    @abstractmethod
    def update_trial(
        self,
        trial_id: int,
        *,
        expect_state: str | None = None,
        state: str | None = None,
        exit_code: int | None = _UNSET,
        job: dict[str, Any] | None = _UNSET,
        restarts: int | None = None,
        ended_at: float | None = _UNSET,
    ) -> TrialRecord | None:
        """Change fields of a trial. With ``expect_state``, a compare-and-set: returns None and
        changes nothing when the trial's current state differs."""

    # -- metrics -----------------------------------------------------------------------------
    @abstractmethod
    def add_metrics(
        self, trial_id: int, group: str, entries: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[MetricRecord]:
        """Append ``(step, values)`` reports. A report whose ``(trial, group, step)`` exists is
        skipped (retries are safe). Returns the records actually inserted, in order."""

    def add_metrics_batch(
        self, batches: Sequence[tuple[int, str, Sequence[tuple[int, dict[str, Any]]]]]
    ) -> list[list[MetricRecord]]:
        """``add_metrics`` for several ``(trial_id, group, entries)`` at once, in one transaction
        where the store has them: all are recorded or none. A ``(trial, group, step)`` repeated
        in the batch is recorded once, for its first occurrence. Returns, per batch entry, the
        records actually inserted."""
        return [self.add_metrics(trial_id, group, entries) for trial_id, group, entries in batches]

    @abstractmethod
    def read_metrics(
        self, experiment_id: int, after: int = 0, group: str | None = None
    ) -> list[MetricRecord]:
        """Metrics of an experiment with ``seq > after``, in ``seq`` order."""

    @abstractmethod
    def trial_metrics(self, trial_id: int, group: str | None = None) -> list[MetricRecord]: ...

    # -- searcher snapshots and events -------------------------------------------------------
    @abstractmethod
    def save_searcher_state(self, experiment_id: int, state: dict[str, Any]) -> None: ...

    @abstractmethod
    def load_searcher_state(self, experiment_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    def add_event(self, experiment_id: int, kind: str, data: dict[str, Any]) -> EventRecord: ...

    @abstractmethod
    def read_events(self, experiment_id: int, after: int = 0) -> list[EventRecord]: ...

    # -- checkpoints -------------------------------------------------------------------------
    @abstractmethod
    def add_checkpoint(
        self,
        uuid: str,
        trial_id: int,
        steps_completed: int,
        metadata: dict[str, Any],
    ) -> CheckpointRecord: ...

    @abstractmethod
    def get_checkpoint(self, uuid: str) -> CheckpointRecord: ...

    @abstractmethod
    def list_checkpoints(self, trial_id: int) -> list[CheckpointRecord]: ...

    @abstractmethod
    def set_checkpoint_state(self, uuid: str, state: str) -> CheckpointRecord: ...

    def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections. Idempotent."""


def experiment_exists(existing: ExperimentRecord) -> StoreError:
    """The ``ExperimentExists`` an exclusive ``create_experiment`` raises."""
    return ExperimentExists(
        f"experiment {existing.id} ({existing.name!r}) already exists", existing.id
    )


# -- what every implementation shares ---------------------------------------------------------
def no_experiment(experiment_id: int) -> StoreError:
    """The error for an experiment id the store does not hold."""
    return StoreError(f"no experiment with id {experiment_id!r}")


def no_trial(trial_id: int) -> StoreError:
    """The error for a trial id the store does not hold."""
    return StoreError(f"no trial with id {trial_id!r}")


def no_parent(parent_id: int) -> StoreError:
    """The error for a ``create_trial`` whose parent trial the store does not hold."""
    return StoreError(f"no parent trial with id {parent_id!r}")


def no_checkpoint(uuid: str) -> StoreError:
    """The error for a checkpoint uuid the store does not hold."""
    return StoreError(f"no checkpoint with uuid {uuid!r}")


def same_checkpoint(existing: CheckpointRecord, trial_id: int) -> CheckpointRecord:
    """``existing``, for an ``add_checkpoint`` that repeats its uuid: a retried report returns
    the record, and the same uuid for another trial is an error."""
    if existing.trial_id != trial_id:
        raise StoreError(
            f"checkpoint {existing.uuid!r} belongs to trial {existing.trial_id}, "
            f"not trial {trial_id}"
        )
    return existing


def changed_fields(
    *,
    state: str | None = None,
    config: dict[str, Any] | None = None,
    coordinator: Any = _UNSET,
    archived: bool | None = None,
    restarts: int | None = None,
    exit_code: Any = _UNSET,
    job: Any = _UNSET,
    ended_at: Any = _UNSET,
) -> dict[str, Any]:
    """The fields an ``update_experiment`` or ``update_trial`` call changes, by name (empty:
    none). None leaves a field that cannot be None as it is; ``_UNSET`` leaves one that can.
    Plain ``if``s: the in-memory store runs this on every state change of every trial."""
    changes: dict[str, Any] = {}
    if state is not None:
        changes["state"] = state
    if config is not None:
        changes["config"] = config
    if coordinator is not _UNSET:
        changes["coordinator"] = coordinator
    if archived is not None:
        changes["archived"] = bool(archived)
    if restarts is not None:
        changes["restarts"] = restarts
    if exit_code is not _UNSET:
        changes["exit_code"] = exit_code
    if job is not _UNSET:
        changes["job"] = job
    if ended_at is not _UNSET:
        changes["ended_at"] = ended_at
    return changes
