"""In-memory store: the default for the in-process ``Study``.

Every trial and report of a Study goes through it, and the whole trial (sampling included) must
cost well under a millisecond, so each call is a few dict/list operations and nothing is copied:
records hold the very dicts the caller passed in, and callers must not mutate them afterwards.
Records are built without the frozen dataclass ``__init__`` (which sets each field through
``object.__setattr__``); see ``_new``. A lock guards the writes so threads that share a Study
cannot hand out one trial number twice.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any, TypeVar

from ridgeline.store import base, lease
from ridgeline.store.base import _UNSET, Store
from ridgeline.store.lease import LeaseRecord
from ridgeline.store.records import (
    ACTIVE,
    PENDING,
    CheckpointRecord,
    CheckpointState,
    EventRecord,
    ExperimentRecord,
    MetricRecord,
    TrialRecord,
)

__all__ = ["MemoryStore"]

R = TypeVar("R")
_seq = attrgetter("seq")
_new_object = object.__new__


def _new(cls: type[R], fields: dict[str, Any]) -> R:
    """Build a frozen record from a dict holding *every* field, 3x faster than its ``__init__``.

    Frozen dataclasses block ``__setattr__`` but not writes to their ``__dict__``; equality,
    hashing and repr read the same attributes, so the result is indistinguishable.
    """
    obj = _new_object(cls)
    obj.__dict__.update(fields)
    return obj


def _replace(record: R, changes: dict[str, Any]) -> R:
    """``dataclasses.replace`` without re-running ``__init__`` (0.5 us instead of 4 us)."""
    obj = _new_object(type(record))
    d = obj.__dict__
    d.update(record.__dict__)
    d.update(changes)
    return obj


for _cls in (ExperimentRecord, TrialRecord, MetricRecord, CheckpointRecord, EventRecord):
    if "__slots__" in _cls.__dict__:  # pragma: no cover - guards a future change of records.py
        raise ImportError(f"MemoryStore's fast record construction needs __dict__ on {_cls}")


class _Write:
    """``with store._write:`` holds the store's lock for a write, after checking that each
    lease the handle holds is still its own (``LeaseLost`` otherwise). It keeps the store's
    lock, fences and leases rather than the store: no reference cycle outlives a dropped store.
    """

    __slots__ = ("_lock", "_fences", "_leases")

    def __init__(
        self, lock: threading.Lock, fences: dict[int, int], leases: dict[int, LeaseRecord]
    ) -> None:
        self._lock = lock
        self._fences = fences
        self._leases = leases

    def __enter__(self) -> None:
        self._lock.acquire()
        if self._fences:
            try:
                self._check_fences()
            except BaseException:
                self._lock.release()
                raise

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()

    def _check_fences(self) -> None:
        for experiment_id, token in self._fences.items():
            current = self._leases.get(experiment_id)
            if current is None or current.token != token:
                raise lease.lost(experiment_id, token, current)


class MemoryStore(Store):
    """Dicts and lists; lost when the process ends (``durable = False``)."""

    durable = False

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._leases: dict[int, LeaseRecord] = {}
        self._write = _Write(self._lock, self._fences, self._leases)
        self._experiments: dict[int, ExperimentRecord] = {}
        self._trials: dict[int, TrialRecord] = {}
        # Ids are never reused, even after a delete (as with the SQL store's AUTOINCREMENT).
        self._last_experiment_id = 0
        self._last_trial_id = 0
        self._trial_ids: dict[int, list[int]] = {}  # experiment -> trial ids by number
        self._requests: dict[int, dict[int, int]] = {}  # experiment -> request id -> trial id
        self._metric_seq = 0
        self._metric_keys: set[tuple[int, str, int]] = set()
        self._exp_metrics: dict[int, list[MetricRecord]] = {}
        self._trial_metrics: dict[int, list[MetricRecord]] = {}
        self._event_seq = 0
        self._events: dict[int, list[EventRecord]] = {}
        self._searcher_states: dict[int, dict[str, Any]] = {}
        self._checkpoints: dict[str, CheckpointRecord] = {}
        self._trial_checkpoints: dict[int, list[str]] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _experiment(self, experiment_id: int) -> ExperimentRecord:
        try:
            return self._experiments[experiment_id]
        except KeyError:
            raise base.no_experiment(experiment_id) from None

    def _trial(self, trial_id: int) -> TrialRecord:
        try:
            return self._trials[trial_id]
        except KeyError:
            raise base.no_trial(trial_id) from None

    # -- leases --------------------------------------------------------------------------------
    def acquire_lease(self, experiment_id: int, holder: str, ttl: float) -> int:
        with self._lock:
            self._experiment(experiment_id)
            now = time.time()
            current = self._leases.get(experiment_id)
            lease.refuse_unless_free(experiment_id, current, holder, now)
            token = (current.token if current else 0) + 1
            self._leases[experiment_id] = LeaseRecord(experiment_id, holder, token, now + ttl)
            self._fences[experiment_id] = token
            return token

    def renew_lease(self, experiment_id: int, token: int, ttl: float) -> None:
        with self._lock:
            current = self._leases.get(experiment_id)
            if current is None or current.token != token or current.holder is None:
                raise lease.lost(experiment_id, token, current)
            self._leases[experiment_id] = replace(current, expires_at=time.time() + ttl)

    def release_lease(self, experiment_id: int, token: int) -> bool:
        with self._lock:
            if self._fences.get(experiment_id) == token:
                del self._fences[experiment_id]
            current = self._leases.get(experiment_id)
            if current is None or current.token != token or current.holder is None:
                return False
            self._leases[experiment_id] = replace(current, holder=None, expires_at=0.0)
            return True

    def get_lease(self, experiment_id: int) -> LeaseRecord | None:
        self._experiment(experiment_id)
        return self._leases.get(experiment_id)

    # -- experiments ---------------------------------------------------------------------------
    def create_experiment(
        self,
        name: str,
        config: dict[str, Any],
        state: str = ACTIVE,
        *,
        unless: Callable[[ExperimentRecord], bool] | None = None,
    ) -> ExperimentRecord:
        with self._write:
            if unless is not None:
                for existing in self._experiments.values():
                    if unless(existing):
                        raise base.experiment_exists(existing)
            eid = self._last_experiment_id = self._last_experiment_id + 1
            rec = _new(
                ExperimentRecord,
                {
                    "id": eid,
                    "name": name,
                    "state": state,
                    "config": config,
                    "created_at": time.time(),
                    "coordinator": None,
                    "archived": False,
                },
            )
            self._experiments[eid] = rec
            self._trial_ids[eid] = []
            self._requests[eid] = {}
            self._exp_metrics[eid] = []
            self._events[eid] = []
            return rec

    def get_experiment(self, experiment_id: int) -> ExperimentRecord:
        return self._experiment(experiment_id)

    def list_experiments(self) -> list[ExperimentRecord]:
        return list(self._experiments.values())

    def update_experiment(
        self,
        experiment_id: int,
        *,
        state: str | None = None,
        config: dict[str, Any] | None = None,
        coordinator: dict[str, Any] | None = _UNSET,
        archived: bool | None = None,
    ) -> ExperimentRecord:
        with self._write:
            rec = self._experiment(experiment_id)
            changes = base.changed_fields(
                state=state, config=config, coordinator=coordinator, archived=archived
            )
            if changes:
                rec = self._experiments[experiment_id] = _replace(rec, changes)
            return rec

    def delete_experiment(self, experiment_id: int) -> None:
        with self._write:
            self._experiment(experiment_id)
            ids = set(self._trial_ids.pop(experiment_id))
            for tid in ids:
                del self._trials[tid]
                self._trial_metrics.pop(tid, None)
                for uuid in self._trial_checkpoints.pop(tid, ()):
                    del self._checkpoints[uuid]
            for tid, rec in list(self._trials.items()):  # children in other experiments
                if rec.parent_id in ids:
                    self._trials[tid] = _replace(rec, {"parent_id": None})
            self._metric_keys = {k for k in self._metric_keys if k[0] not in ids}
            for table in (self._requests, self._exp_metrics, self._events):
                table.pop(experiment_id, None)
            self._searcher_states.pop(experiment_id, None)
            self._leases.pop(experiment_id, None)
            self._fences.pop(experiment_id, None)
            del self._experiments[experiment_id]

    # -- trials --------------------------------------------------------------------------------
    def create_trial(
        self,
        experiment_id: int,
        request_id: int,
        params: dict[str, Any],
        parent_id: int | None = None,
        state: str = PENDING,
    ) -> TrialRecord:
        with self._write:
            requests = self._requests.get(experiment_id)
            if requests is None:
                raise base.no_experiment(experiment_id)
            existing = requests.get(request_id)
            if existing is not None:
                return self._trials[existing]
            if parent_id is not None and parent_id not in self._trials:
                raise base.no_parent(parent_id)
            ids = self._trial_ids[experiment_id]
            tid = self._last_trial_id = self._last_trial_id + 1
            rec = _new(
                TrialRecord,
                {
                    "id": tid,
                    "experiment_id": experiment_id,
                    "number": len(ids) + 1,
                    "request_id": request_id,
                    "params": params,
                    "state": state,
                    "created_at": time.time(),
                    "parent_id": parent_id,
                    "restarts": 0,
                    "exit_code": None,
                    "job": None,
                    "ended_at": None,
                },
            )
            self._trials[tid] = rec
            ids.append(tid)
            requests[request_id] = tid
            return rec

    def get_trial(self, trial_id: int) -> TrialRecord:
        return self._trial(trial_id)

    def list_trials(self, experiment_id: int) -> list[TrialRecord]:
        ids = self._trial_ids.get(experiment_id)
        if ids is None:
            raise base.no_experiment(experiment_id)
        trials = self._trials
        return [trials[i] for i in ids]

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
        with self._write:
            rec = self._trial(trial_id)
            if expect_state is not None and rec.state != expect_state:
                return None
            changes = base.changed_fields(
                state=state, exit_code=exit_code, job=job, restarts=restarts, ended_at=ended_at
            )
            if changes:
                rec = self._trials[trial_id] = _replace(rec, changes)
            return rec

    # -- metrics -------------------------------------------------------------------------------
    def add_metrics(
        self, trial_id: int, group: str, entries: Sequence[tuple[int, dict[str, Any]]]
    ) -> list[MetricRecord]:
        with self._write:
            trial = self._trial(trial_id)
            keys = self._metric_keys
            now = time.time()
            seq = self._metric_seq
            out: list[MetricRecord] = []
            for step, values in entries:
                key = (trial_id, group, step)
                if key in keys:
                    continue
                keys.add(key)
                seq += 1
                out.append(
                    _new(
                        MetricRecord,
                        {
                            "seq": seq,
                            "trial_id": trial_id,
                            "group": group,
                            "step": step,
                            "values": values,
                            "time": now,
                        },
                    )
                )
            if out:
                self._metric_seq = seq
                self._exp_metrics[trial.experiment_id].extend(out)
                per_trial = self._trial_metrics.get(trial_id)
                if per_trial is None:
                    self._trial_metrics[trial_id] = out.copy()
                else:
                    per_trial.extend(out)
            return out

    def add_metrics_batch(
        self, batches: Sequence[tuple[int, str, Sequence[tuple[int, dict[str, Any]]]]]
    ) -> list[list[MetricRecord]]:
        for trial_id, _, _ in batches:  # checked first: the batch is stored whole or not at all
            if trial_id not in self._trials:
                raise base.no_trial(trial_id)
        return [self.add_metrics(trial_id, group, entries) for trial_id, group, entries in batches]

    def read_metrics(
        self, experiment_id: int, after: int = 0, group: str | None = None
    ) -> list[MetricRecord]:
        records = self._exp_metrics.get(experiment_id)
        if records is None:
            raise base.no_experiment(experiment_id)
        if after > 0:
            records = records[bisect_right(records, after, key=_seq) :]
        if group is None:
            return list(records) if after <= 0 else records
        return [r for r in records if r.group == group]

    def trial_metrics(self, trial_id: int, group: str | None = None) -> list[MetricRecord]:
        if trial_id not in self._trials:
            raise base.no_trial(trial_id)
        records = self._trial_metrics.get(trial_id, ())
        if group is None:
            return list(records)
        return [r for r in records if r.group == group]

    # -- searcher snapshots and events ---------------------------------------------------------
    def save_searcher_state(self, experiment_id: int, state: dict[str, Any]) -> None:
        with self._write:
            self._experiment(experiment_id)
            self._searcher_states[experiment_id] = state

    def load_searcher_state(self, experiment_id: int) -> dict[str, Any] | None:
        self._experiment(experiment_id)
        return self._searcher_states.get(experiment_id)

    def add_event(self, experiment_id: int, kind: str, data: dict[str, Any]) -> EventRecord:
        with self._write:
            events = self._events.get(experiment_id)
            if events is None:
                raise base.no_experiment(experiment_id)
            self._event_seq += 1
            rec = _new(
                EventRecord,
                {
                    "seq": self._event_seq,
                    "experiment_id": experiment_id,
                    "kind": kind,
                    "data": data,
                    "time": time.time(),
                },
            )
            events.append(rec)
            return rec

    def read_events(self, experiment_id: int, after: int = 0) -> list[EventRecord]:
        events = self._events.get(experiment_id)
        if events is None:
            raise base.no_experiment(experiment_id)
        if after > 0:
            return events[bisect_right(events, after, key=_seq) :]
        return list(events)

    # -- checkpoints ---------------------------------------------------------------------------
    def add_checkpoint(
        self,
        uuid: str,
        trial_id: int,
        steps_completed: int,
        metadata: dict[str, Any],
    ) -> CheckpointRecord:
        with self._write:
            existing = self._checkpoints.get(uuid)
            if existing is not None:
                return base.same_checkpoint(existing, trial_id)
            if trial_id not in self._trials:
                raise base.no_trial(trial_id)
            rec = _new(
                CheckpointRecord,
                {
                    "uuid": uuid,
                    "trial_id": trial_id,
                    "steps_completed": steps_completed,
                    "created_at": time.time(),
                    "metadata": metadata,
                    "state": CheckpointState.COMPLETED,
                },
            )
            self._checkpoints[uuid] = rec
            self._trial_checkpoints.setdefault(trial_id, []).append(uuid)
            return rec

    def get_checkpoint(self, uuid: str) -> CheckpointRecord:
        try:
            return self._checkpoints[uuid]
        except KeyError:
            raise base.no_checkpoint(uuid) from None

    def list_checkpoints(self, trial_id: int) -> list[CheckpointRecord]:
        if trial_id not in self._trials:
            raise base.no_trial(trial_id)
        cps = self._checkpoints
        records = [cps[u] for u in self._trial_checkpoints.get(trial_id, ())]
        records.sort(key=_checkpoint_order)
        return records

    def set_checkpoint_state(self, uuid: str, state: str) -> CheckpointRecord:
        with self._write:
            rec = self.get_checkpoint(uuid)
            if rec.state != state:
                rec = self._checkpoints[uuid] = _replace(rec, {"state": state})
            return rec

    def close(self) -> None:
        """Nothing to release; the data stays readable until the store is dropped."""


def _checkpoint_order(c: CheckpointRecord) -> tuple[int, float, str]:
    """Oldest progress first, the same order the SQL store uses."""
    return (c.steps_completed, c.created_at, c.uuid)
