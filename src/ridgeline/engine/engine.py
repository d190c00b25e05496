"""The engine: the one writer. Events in (trial created, report, exit), searcher actions out.

Drivers (the in-process Study, the asyncio coordinator) call the event methods and carry out the
actions that reach outside: launching (``Train``), stopping (``Stop``), finishing
(``Shutdown``). Creates are applied here, so the store always holds every trial the searcher
asked for before anyone hears of it. Observations and trial ends are passed on to ``observers``
(SHERPA's results table), so drivers never update such followers by hand.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from ridgeline.engine.observers import Observers
from ridgeline.errors import ObservationError
from ridgeline.faults import crash_point
from ridgeline.samplers.base import History
from ridgeline.searchers.base import Action, Close, Create, Pause, Searcher, Shutdown, Stop, Train
from ridgeline.space import SearchSpace
from ridgeline.store.base import Store
from ridgeline.store.records import (
    COMPLETED,
    PAUSED,
    PENDING,
    RUNNING,
    TRIAL_DONE_STATES,
    CheckpointRecord,
    TrialRecord,
)
from ridgeline.values import check_objective

OBJECTIVE_KEY = "objective"
VALIDATION = "validation"


@dataclass
class Operation:
    """A trial's current unit of work: train until ``length`` (absolute), then report."""

    id: int
    length: float
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        return cls(int(data["id"]), data["length"], bool(data["done"]))


def new_seed() -> int:
    """A fresh 63-bit seed, recorded with the experiment so any run can be repeated."""
    return int.from_bytes(os.urandom(8), "big") >> 1


class Engine:
    """Applies searcher actions to the store and keeps the history the searcher reads."""

    def __init__(
        self,
        store: Store,
        experiment_id: int,
        space: SearchSpace,
        searcher: Searcher,
        lower_is_better: bool,
        seed: int,
        searcher_group: str = VALIDATION,
        source_checkpoint: str | None = None,
    ) -> None:
        self.store = store
        self.searcher_group = searcher_group  # the metric group whose reports drive the searcher
        self.experiment_id = experiment_id
        self.space = space
        self.searcher = searcher
        self.history = History(lower_is_better=lower_is_better)
        self.rng = random.Random(seed)
        self.records: dict[int, TrialRecord] = {}  # trial number -> latest record
        self.stop_requested: set[int] = set()
        self.shutdown = False
        self._user_requests = 0  # trials added by the user take request ids -1, -2, ...
        # Core API: each trial's current operation, and the trials
        # that have no further work now (their operation stream ends).
        self.ops: dict[int, Operation] = {}
        self.closed: set[int] = set()
        self.final: set[int] = set()  # closed for good (Close, Stop); others are paused
        # A trial created from a parent starts from the checkpoint the parent had then.
        self.warm_starts: dict[int, str] = {}  # trial number -> checkpoint uuid
        # The experiment's trials (all but clones) start from this one (searcher.source_*):
        # a fresh start from its weights, so its steps are not counted as trained here.
        self.source_checkpoint = source_checkpoint
        self._op_counter = 0
        self._trained = 0  # see length_trained
        # Crash safety: the newest searcher-group metric the searcher was shown (reports after
        # it are replayed to the searcher on resume), trials stored after the last snapshot
        # (their Create is replayed by the searcher, not launched blindly), and the actions a
        # replay produced for the driver to carry out.
        self._seen_seq = 0
        self._event_seq = 0  # the newest event written (trial pauses and exits among them)
        self.unclaimed: set[int] = set()
        self.replayed: list[Action] = []
        self.observers = Observers()  # told of observations and trial ends, after the searcher
        searcher.bind(space, self.history, self.rng)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> list[Action]:
        return self._apply(self.searcher.start())

    def resume(self) -> None:
        """Rebuild history and searcher state from the store after a restart."""
        numbers_by_id: dict[int, int] = {}
        for record in self.store.list_trials(self.experiment_id):
            self._remember(record)
            numbers_by_id[record.id] = record.number
            if record.request_id < 0:
                self._user_requests = max(self._user_requests, -record.request_id)
        for metric in self.store.read_metrics(self.experiment_id, group=self.searcher_group):
            number = numbers_by_id.get(metric.trial_id)
            if OBJECTIVE_KEY not in metric.values:
                continue  # a group report (validation metrics), not a searcher observation
            value = metric.values[OBJECTIVE_KEY]
            if not isinstance(value, int | float) or isinstance(value, bool):
                value = math.nan  # not a number: seen, never the best
            if number is not None:
                self._observe(number, metric.step, float(value))
        state = self.store.load_searcher_state(self.experiment_id)
        if state is not None:
            self.searcher.load_state_dict(state["searcher"])
            version, internal, gauss = state["rng"]
            self.rng.setstate((version, tuple(internal), gauss))
            self.shutdown = state["shutdown"]
            self.stop_requested = set(state.get("stop_requested", ()))
            self.ops = {int(k): Operation.from_json(v) for k, v in state.get("ops", {}).items()}
            self.closed = set(state.get("closed", ()))
            self.final = set(state.get("final", ()))
            self.warm_starts = {int(k): v for k, v in state.get("warm_starts", {}).items()}
            self._op_counter = state.get("op_counter", 0)
            if "max_trial" in state:
                self.unclaimed = {
                    n
                    for n, r in self.records.items()
                    if n > state["max_trial"] and r.request_id > 0 and r.state == PENDING
                }
            if "seen_seq" in state:
                self._seen_seq = state["seen_seq"]
                self._replay_unseen(numbers_by_id)
            if "seen_event" in state:
                self._event_seq = state["seen_event"]
                self._replay_trial_ends(state["seen_event"])
            else:  # a snapshot from before event replay: nothing to replay, start from now
                events = self.store.read_events(self.experiment_id)
                self._event_seq = events[-1].seq if events else 0
        else:  # killed before the searcher's first snapshot: it starts afresh, its trials too
            self.unclaimed = {
                n for n, r in self.records.items() if r.request_id > 0 and r.state == PENDING
            }
            self.replayed.extend(self.start())
        self._trained = self._count_trained()  # clones' start lengths are known only now

    def _replay_unseen(self, numbers_by_id: dict[int, int]) -> None:
        """Show the searcher the reports stored after its last snapshot (a crash between
        storing a report and deciding on it); their actions wait in ``replayed``."""
        unseen = self.store.read_metrics(
            self.experiment_id, after=self._seen_seq, group=self.searcher_group
        )
        for metric in unseen:
            number = numbers_by_id.get(metric.trial_id)
            value = metric.values.get(OBJECTIVE_KEY)
            self._seen_seq = max(self._seen_seq, metric.seq)
            if number is None or not isinstance(value, int | float) or isinstance(value, bool):
                continue
            op = self.ops.get(number)
            if op is not None and not op.done and int(op.length) == metric.step:
                op.done = True  # the operation's result was stored before the crash
            self.replayed.extend(self._apply(self.searcher.on_report(number, metric.step, value)))
        if unseen:
            self.snapshot()

    def _replay_trial_ends(self, seen: int) -> None:
        """Tell the searcher of pauses and exits recorded after its last snapshot (a crash
        between recording a trial's end and the searcher's decision on it)."""
        for event in self.store.read_events(self.experiment_id, after=seen):
            self._event_seq = max(self._event_seq, event.seq)
            number = event.data.get("trial")
            if not isinstance(number, int) or number not in self.records:
                continue
            if event.kind == "trial_paused":
                actions = self.searcher.on_trial_paused(number)
            elif event.kind == "trial_exited":
                actions = self.searcher.on_trial_exited(number, str(event.data.get("status")))
            else:
                continue
            self.replayed.extend(self._apply(actions, changed=True))

    def take_replayed(self) -> list[Action]:
        """The actions of the resume's replay, once, for the driver to carry out."""
        actions, self.replayed = self.replayed, []
        return actions

    # -- events ------------------------------------------------------------------------------
    def slots_free(self, n: int) -> list[Action]:
        if self.shutdown or n <= 0:
            return []
        return self._apply(self.searcher.on_slots_free(n))

    def add_trial(self, params: dict[str, Any]) -> tuple[TrialRecord, list[Action]]:
        """A trial the user specified; it does not spend the searcher's budget."""
        self._user_requests += 1
        request_id = -self._user_requests
        record = self.store.create_trial(self.experiment_id, request_id, params)
        self._remember(record)
        self.event("trial_created", trial=record.number, request_id=request_id)
        return record, self._apply(self.searcher.on_trial_created(record.number, request_id))

    def import_result(self, params: dict[str, Any], objective: Any) -> TrialRecord:
        """A result obtained elsewhere (an earlier experiment, a known good point): a finished
        trial that model-based samplers learn from. The searcher is not told of it, so it
        spends none of its budget."""
        value = check_objective(objective, f"imported result {params!r}")
        self.space.check_params(params)
        self._user_requests += 1
        record = self.store.create_trial(self.experiment_id, -self._user_requests, params)
        self.store.add_metrics(record.id, self.searcher_group, [(1, {OBJECTIVE_KEY: value})])
        done = self.store.update_trial(record.id, state=COMPLETED, ended_at=time.time())
        assert done is not None
        self._remember(done)
        self._observe(done.number, 1, value)
        self.event("trial_imported", trial=done.number, objective=value)
        self.observers.observed(done.number, 1, done.params, value, {})
        self.observers.ended(done.number, COMPLETED)
        return done

    def trial_started(self, number: int, job: dict[str, Any] | None = None) -> TrialRecord:
        record = self.store.update_trial(self.records[number].id, state=RUNNING, job=job)
        crash_point("trial_running")
        assert record is not None
        self._remember(record)
        self.event("trial_started", trial=number, job=job)
        return record

    def event(self, kind: str, **data: Any) -> None:
        """Append to the experiment's event log (what happened, for people and tools)."""
        self._event_seq = self.store.add_event(self.experiment_id, kind, data).seq

    def report(
        self,
        number: int,
        step: int,
        objective: Any,
        context: dict[str, Any] | None = None,
    ) -> tuple[bool, list[Action]]:
        """Record one observation; returns (new, actions). A repeated step is not new."""
        value = check_objective(objective, f"trial {number} iteration {step}")
        record = self.records.get(number)
        if record is None:
            raise ObservationError(f"unknown trial {number}: it was never created in this search")
        values = {OBJECTIVE_KEY: value, **(context or {})}
        inserted = self.store.add_metrics(record.id, self.searcher_group, [(step, values)])
        if not inserted:
            return False, []
        crash_point("metric_stored")
        self._seen_seq = max(self._seen_seq, inserted[-1].seq)
        self._observe(number, step, value)
        actions = self._apply(self.searcher.on_report(number, step, value))
        self.observers.observed(number, step, record.params, value, context or {})
        return True, actions

    def observed(
        self,
        number: int,
        step: int,
        value: float,
        seq: int = 0,
        context: dict[str, Any] | None = None,
    ) -> list[Action]:
        """A report already stored (committed in a group by the coordinator's writer): the
        history, the searcher and the observers learn of it. A trial that ended meanwhile (its
        process was killed while the report was being committed) only enters the history and
        the observers, as it would after a restart; the searcher has closed its books on it.
        ``seq``: the stored report's, so that a resume replays only what the searcher's
        snapshot has not seen. ``context``: the report's other values."""
        crash_point("metric_stored")
        self._seen_seq = max(self._seen_seq, seq)
        self._observe(number, step, value)
        record = self.records[number]
        actions: list[Action] = []
        if record.state not in TRIAL_DONE_STATES:
            actions = self._apply(self.searcher.on_report(number, step, value))
        self.observers.observed(number, step, record.params, value, context or {})
        return actions

    def complete_operation(self, number: int, op_id: int, metric: Any) -> list[Action]:
        """The trial trained to its operation's length and reports the searcher metric."""
        op = self.ops.get(number)
        if op is not None and (op_id < op.id or (op_id == op.id and op.done)):
            return []  # a retry of a completion already recorded: acknowledge it again
        if op is None or op.id != op_id:
            raise ObservationError(
                f"trial {number}: operation {op_id} is not its current operation"
            )
        op.done = True
        _, actions = self.report(number, int(op.length), metric)
        self.snapshot()
        return actions

    def trial_paused(self, number: int) -> list[Action]:
        """The trial exited on request (searcher or user) with its checkpoint saved; a later
        ``Train`` or the experiment's activation relaunches it."""
        record = self.store.update_trial(self.records[number].id, state=PAUSED)
        assert record is not None
        self._remember(record)
        self.event("trial_paused", trial=number)
        return self._apply(self.searcher.on_trial_paused(number), changed=True)

    def latest_checkpoint(self, number: int) -> CheckpointRecord | None:
        """The checkpoint a (re)launch of the trial starts from: its newest completed one,
        else the one its parent had when it was created, else None."""
        done = [
            c for c in self.store.list_checkpoints(self.records[number].id) if c.state == COMPLETED
        ]
        if done:
            return max(done, key=lambda c: (c.steps_completed, c.created_at))
        uuid = self.warm_starts.get(number)
        return self.store.get_checkpoint(uuid) if uuid is not None else None

    def trial_exited(self, number: int, status: str, exit_code: int | None = None) -> list[Action]:
        record = self.records[number]
        if record.state in TRIAL_DONE_STATES:
            return []
        updated = self.store.update_trial(
            record.id, state=status, exit_code=exit_code, ended_at=time.time()
        )
        assert updated is not None
        self._remember(updated)
        self.event("trial_exited", trial=number, status=status, exit_code=exit_code)
        actions = self._apply(self.searcher.on_trial_exited(number, status), changed=True)
        self.observers.ended(number, status)
        return actions

    def relaunch(self, number: int) -> TrialRecord:
        """Count a restart of a trial whose process died with the coordinator."""
        record = self.records[number]
        updated = self.store.update_trial(record.id, state=PENDING, restarts=record.restarts + 1)
        assert updated is not None
        self._remember(updated)
        self.event("trial_restarted", trial=number, restarts=updated.restarts)
        return updated

    def length_trained(self) -> int:
        """Training length spent so far. Core API: each trial's furthest operation, less the
        length a clone started at (its parent's checkpoint). SHERPA: iterations reported.
        Kept up to date as reports arrive (progress displays ask after every report)."""
        return self._trained

    def _start_length(self, number: int) -> int:
        uuid = self.warm_starts.get(number)
        if uuid is None or uuid == self.source_checkpoint:
            return 0
        return self.store.get_checkpoint(uuid).steps_completed

    def _count_trained(self) -> int:
        """``length_trained`` from the history (after a restart rebuilt it)."""
        if self.searcher_group == VALIDATION:
            return sum(len(c) for c in self.history.curves.values())
        return sum(
            view.last_step - self._start_length(view.number)
            for view in self.history.trials
            if view.last_step
        )

    def snapshot(self) -> None:
        if not self.store.durable:
            return
        version, internal, gauss = self.rng.getstate()
        self.store.save_searcher_state(
            self.experiment_id,
            {
                "searcher": self.searcher.state_dict(),
                "rng": [version, list(internal), gauss],
                "shutdown": self.shutdown,
                "stop_requested": sorted(self.stop_requested),
                "ops": {str(k): v.to_json() for k, v in self.ops.items()},
                "closed": sorted(self.closed),
                "final": sorted(self.final),
                "warm_starts": {str(k): v for k, v in self.warm_starts.items()},
                "op_counter": self._op_counter,
                "seen_seq": self._seen_seq,
                "seen_event": self._event_seq,
                "max_trial": max(self.records, default=0),
                "progress": self.searcher.progress(),
            },
        )

    # -- internals ---------------------------------------------------------------------------
    def _apply(self, actions: list[Action], changed: bool = False) -> list[Action]:
        """Apply creates here; return the actions the driver must carry out, in order.

        The searcher's state is saved when it acted or ``changed`` says an event moved it;
        a searcher whose ``on_report`` changes state must therefore act, or it is saved at the
        next action (a replay from the older snapshot gives the same decisions)."""
        out: list[Action] = []
        queue = deque(actions)
        while queue:
            action = queue.popleft()
            if isinstance(action, Create):
                parent_id = self.records[action.parent].id if action.parent else None
                record = self.store.create_trial(
                    self.experiment_id, action.request_id, action.params, parent_id
                )
                self.unclaimed.discard(record.number)  # replayed after a crash: it is known now
                crash_point("suggestion_stored")
                self._remember(record)
                if action.parent is not None:
                    start = self.latest_checkpoint(action.parent)
                    if start is not None:
                        self.warm_starts[record.number] = start.uuid
                elif self.source_checkpoint is not None:
                    self.warm_starts[record.number] = self.source_checkpoint
                self.event(
                    "trial_created",
                    trial=record.number,
                    request_id=action.request_id,
                    parent=action.parent,
                )
                queue.extend(self.searcher.on_trial_created(record.number, action.request_id))
                continue
            if isinstance(action, Train) and action.until is not None:
                op = self.ops.get(action.trial)
                if op is None or op.done or op.length != action.until:
                    self._op_counter += 1
                    self.ops[action.trial] = Operation(self._op_counter, action.until)
                self.closed.discard(action.trial)
                self.final.discard(action.trial)
            elif isinstance(action, Pause):
                self.closed.add(action.trial)
                self.final.discard(action.trial)
            elif isinstance(action, Close):
                self.closed.add(action.trial)
                self.final.add(action.trial)
            elif isinstance(action, Stop):
                self.stop_requested.add(action.trial)
                self.closed.add(action.trial)
                self.final.add(action.trial)
                self.event("stop_requested", trial=action.trial, reason=action.reason)
            elif isinstance(action, Shutdown):
                self.shutdown = True
                self.event("searcher_done", reason=action.reason)
            out.append(action)
        if actions or changed:
            self.snapshot()
        return out

    def _remember(self, record: TrialRecord) -> None:
        self.records[record.number] = record
        self.history.remember(record.number, record.params, record.state)

    def _observe(self, number: int, step: int, value: float) -> None:
        last = self.history.get(number).last_step
        if self.searcher_group == VALIDATION:
            self._trained += 1  # reports are unique per (trial, iteration)
        elif last is None or step > last:
            self._trained += step - (last if last is not None else self._start_length(number))
        self.history.observe(number, step, value)
