"""Run any searcher to the end on a virtual clock, with real (or synthetic) training.

``run_searcher`` is the engine and coordinator in miniature, synchronous and deterministic: it
keeps the ``History`` the way the engine does, carries out every action (creates with a parent,
trains to absolute lengths, pauses and relaunches, closes, stops, shutdown) with at most
``capacity`` trial processes at once, and calls ``train_fn`` for each operation when it
completes. A trial that trains from length ``a`` to ``b`` finishes ``b - a`` time units after
it started, so the clock orders reports as a cluster of ``capacity`` equal workers would.
Processes exit at once: a pause (``Close(final=False)``) is followed by ``on_trial_paused``, a
close or stop by ``on_trial_exited``, before the next event. A Close or Stop that arrives while
the trial trains cuts its operation short; the length trained until then still counts.

    searcher, space, lower = searcher_from_config({"name": "adaptive_asha", ...}, hparams)
    result = run_searcher(searcher, space, train_fn, capacity=4, lower_is_better=lower)
    result.total_length, result.best(), result.length_to_reach(0.05)
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import History
from ridgeline.searchers.base import Action, Close, Create, Searcher, Shutdown, Stop, Train
from ridgeline.store.records import COMPLETED, PAUSED, PENDING, RUNNING, STOPPED, TRIAL_DONE_STATES

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = [
    "CurvePoint",
    "ForkFn",
    "Operation",
    "SimResult",
    "SimTrial",
    "SimulationError",
    "TrainFn",
    "run_searcher",
    "searcher_from_config",
]

#: ``train_fn(trial, params, parent, from_length, to_length) -> objective at to_length``.
#: The callback owns the models: it continues the trial's own model from ``from_length``, or,
#: on the first operation of a trial created with a parent, starts from a copy of the parent's
#: model as it was at ``from_length`` (the parent's checkpoint when the child was created).
TrainFn = Callable[[int, dict[str, Any], int | None, int, int], float]
#: ``fork_fn(child, parent, length)``: called when a trial is created with a parent, at that
#: moment, while the parent's model is still at ``length``; copy it there if convenient.
ForkFn = Callable[[int, int, int], None]

TERMINAL = TRIAL_DONE_STATES


class SimulationError(RuntimeError):
    """The searcher asked for something the protocol does not allow (or never ended)."""


@dataclass
class Operation:
    """One stretch of training: ``from_length`` to ``to_length``, started at ``start``.

    ``end`` is when it completed, or when it was cut short (``completed`` False: a Stop or
    Close arrived while it trained; the length trained until then still counts)."""

    trial: int
    start: float
    from_length: int
    to_length: int
    end: float
    completed: bool = False
    aborted: bool = False

    @property
    def trained(self) -> float:
        """Length trained so far (the whole span once completed)."""
        return self.end - self.start if (self.completed or self.aborted) else 0.0


@dataclass
class SimTrial:
    """What happened to one trial."""

    id: int
    request_id: int
    params: dict[str, Any]
    parent: int | None
    start_length: int  # inherited from the parent's checkpoint (0 without a parent)
    created_at: float
    status: str = PENDING
    length: int = 0  # checkpoint length: where the last completed operation ended
    operations: list[Operation] = field(default_factory=list)
    reports: list[tuple[int, float]] = field(default_factory=list)
    launches: int = 0  # process starts: 1 + relaunches after pauses

    @property
    def trained(self) -> float:
        """Length this trial trained itself (its parent's share not included)."""
        return sum(op.trained for op in self.operations)


@dataclass(frozen=True)
class CurvePoint:
    """A report: when, after how much total training, and the best objective so far."""

    time: float
    length_used: float  # total length trained by every trial at ``time`` (in-flight included)
    trial: int
    length: int
    objective: float
    best: float


@dataclass
class SimResult:
    """Everything a run produced; lengths are the budget measure ("epochs")."""

    trials: dict[int, SimTrial]
    operations: list[Operation]
    total_length: float
    makespan: float
    curve: list[CurvePoint]
    lower_is_better: bool
    peak_running: int  # most trial processes at once
    peak_training: int  # most operations in flight at once
    shutdown: bool  # the searcher said Shutdown
    stalled: list[int]  # trials left holding a process with no work when nothing moved

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.lower_is_better else a > b

    def best(self) -> float | None:
        """Best reported objective, or None when nothing finite was reported."""
        return self.curve[-1].best if self.curve and math.isfinite(self.curve[-1].best) else None

    def best_within(self, length_used: float) -> float | None:
        """Best objective reported once at most ``length_used`` had been trained."""
        best: float | None = None
        for point in self.curve:
            if point.length_used > length_used:
                break
            best = point.best if math.isfinite(point.best) else best
        return best

    def length_to_reach(self, target: float) -> float | None:
        """Total length trained when a report first matched or beat ``target`` (None: never)."""
        for point in self.curve:
            if point.objective == target or self._better(point.objective, target):
                return point.length_used
        return None


def searcher_from_config(
    searcher: Mapping[str, Any], hyperparameters: Mapping[str, Any]
) -> tuple[Searcher, SearchSpace, bool]:
    """Build a searcher the way an experiment does: ``(searcher, space, lower_is_better)``.

    ``searcher`` and ``hyperparameters`` are the config sections as written in YAML. Raises
    ``ridgeline.errors.ConfigError`` for a searcher this version cannot build."""
    from ridgeline.config import parse_config
    from ridgeline.experiment import build_searcher

    data = {
        "entrypoint": "python3 train.py",
        "searcher": dict(searcher),
        "hyperparameters": dict(hyperparameters),
    }
    config = parse_config(data, "<simulation>", warn=False)
    return build_searcher(config), config.space, bool(config.searcher.smaller_is_better)


def run_searcher(
    searcher: Searcher,
    space: SearchSpace,
    train_fn: TrainFn,
    capacity: int,
    lower_is_better: bool = True,
    seed: int = 0,
    *,
    fork_fn: ForkFn | None = None,
    open_length: int | None = None,
    max_operations: int = 1_000_000,
) -> SimResult:
    """Run ``searcher`` to the end, at most ``capacity`` trial processes at once.

    ``seed`` seeds the generator the searcher is bound with. ``open_length`` is the length an
    open-ended ``Train(t, None)`` trains to (an error when not given). Raises
    ``SimulationError`` on a protocol violation or after ``max_operations`` operations."""
    if capacity < 1:
        raise ValueError(f"capacity must be at least 1, got {capacity}")
    driver = _Driver(
        searcher, space, train_fn, capacity, lower_is_better, seed, fork_fn, open_length
    )
    return driver.run(max_operations)


def _whole(value: float | None, default: int | None, trial: int) -> int:
    if value is None:
        if default is None:
            raise SimulationError(
                f"trial {trial}: open-ended Train(until=None); pass open_length to run_searcher"
            )
        return default
    if not float(value).is_integer() or value < 0:
        raise SimulationError(f"trial {trial}: Train(until={value!r}) is not a whole length")
    return int(value)


class _Driver:
    """The state of one run; see ``run_searcher``."""

    def __init__(
        self,
        searcher: Searcher,
        space: SearchSpace,
        train_fn: TrainFn,
        capacity: int,
        lower_is_better: bool,
        seed: int,
        fork_fn: ForkFn | None,
        open_length: int | None,
    ) -> None:
        self.searcher = searcher
        self.train_fn = train_fn
        self.fork_fn = fork_fn
        self.capacity = capacity
        self.open_length = open_length
        self.history = History(lower_is_better=lower_is_better)
        searcher.bind(space, self.history, random.Random(seed))
        self.clock = 0.0
        self.trials: dict[int, SimTrial] = {}
        self.operations: list[Operation] = []
        self.requests: set[int] = set()
        self.heap: list[tuple[float, int, int]] = []  # (end, sequence, trial)
        self.sequence = 0
        self.ops: dict[int, Operation] = {}  # in flight, per trial
        self.target: dict[int, int] = {}  # work for trials that wait for a process
        self.running: set[int] = set()  # trials holding a process (training or idle)
        self.waiting: list[int] = []  # trials with work and no process yet
        self.exits: deque[tuple[int, str]] = deque()
        self.done_length = 0.0  # trained by completed and cut-short operations
        self.curve: list[CurvePoint] = []
        self.best = math.inf if lower_is_better else -math.inf
        self.shutdown = False
        self.peak_running = 0
        self.peak_training = 0

    def _set_status(self, trial: int, status: str) -> None:
        record = self.trials[trial]
        record.status = status
        self.history.remember(trial, record.params, status)

    # -- operations --------------------------------------------------------------------------
    def _begin(self, trial: int, until: int) -> None:
        record = self.trials[trial]
        op = Operation(trial, self.clock, record.length, until, self.clock)
        op.end = self.clock + max(until - record.length, 0)
        self._schedule(op)

    def _schedule(self, op: Operation) -> None:
        self.ops[op.trial] = op
        self.sequence += 1
        heapq.heappush(self.heap, (op.end, self.sequence, op.trial))
        self.peak_training = max(self.peak_training, len(self.ops))

    def _abort(self, trial: int) -> None:
        op = self.ops.pop(trial, None)
        if op is None:
            return
        op.end, op.aborted = self.clock, True
        self.done_length += op.trained
        self.trials[trial].operations.append(op)
        self.operations.append(op)

    def _release(self, trial: int) -> None:
        """The trial's process ends (whatever it was doing)."""
        self._abort(trial)
        self.running.discard(trial)
        self.target.pop(trial, None)
        if trial in self.waiting:
            self.waiting.remove(trial)

    def length_used(self) -> float:
        return self.done_length + sum(self.clock - op.start for op in self.ops.values())

    # -- actions -----------------------------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        queue = deque(actions)
        while queue:
            action = queue.popleft()
            if isinstance(action, Create):
                queue.extend(self._create(action))
            elif isinstance(action, Train):
                self._train(action)
            elif isinstance(action, Close):
                self._close(action)
            elif isinstance(action, Stop):
                self._stop(action)
            elif isinstance(action, Shutdown):
                self.shutdown = True
            else:  # pragma: no cover - the Action union is closed
                raise SimulationError(f"unknown action {action!r}")

    def _create(self, action: Create) -> list[Action]:
        if action.request_id in self.requests:
            raise SimulationError(f"request id {action.request_id} was used twice")
        self.requests.add(action.request_id)
        number = len(self.trials) + 1
        start = 0
        if action.parent is not None:
            if action.parent not in self.trials:
                raise SimulationError(f"Create(parent={action.parent}): no such trial")
            start = self.trials[action.parent].length
        params = dict(action.params)
        self.trials[number] = SimTrial(
            number, action.request_id, params, action.parent, start, self.clock, length=start
        )
        self.history.remember(number, params, PENDING)
        if action.parent is not None and self.fork_fn is not None:
            self.fork_fn(number, action.parent, start)
        return self.searcher.on_trial_created(number, action.request_id)

    def _train(self, action: Train) -> None:
        t = action.trial
        record = self._known(t, action)
        if record.status in TERMINAL:
            raise SimulationError(f"{action!r}: trial {t} has already ended ({record.status})")
        until = _whole(action.until, self.open_length, t)
        if t in self.running:
            op = self.ops.get(t)
            if op is None:  # reported and idle: a new operation from its checkpoint
                self._begin(t, until)
            elif op.to_length != until:  # the open operation's target moves
                op.to_length = until
                op.end = max(op.start + max(until - op.from_length, 0), self.clock)
                self._schedule(op)
        else:
            self.target[t] = until
            if t not in self.waiting:
                self.waiting.append(t)

    def _close(self, action: Close) -> None:
        t = action.trial
        record = self._known(t, action)
        if record.status in TERMINAL:
            return
        self._release(t)
        if action.final:
            self.exits.append((t, COMPLETED))
        elif record.status != PAUSED:
            self._set_status(t, PAUSED)
            self.exits.append((t, PAUSED))  # its process is gone: on_trial_paused

    def _stop(self, action: Stop) -> None:
        t = action.trial
        if self._known(t, action).status in TERMINAL:
            return
        self._release(t)
        self.exits.append((t, STOPPED))

    def _known(self, trial: int, action: Action) -> SimTrial:
        record = self.trials.get(trial)
        if record is None:
            raise SimulationError(f"{action!r}: no trial {trial}")
        return record

    # -- the loop ----------------------------------------------------------------------------
    def drain(self) -> None:
        """Tell the searcher about trials that paused or ended."""
        while self.exits:
            trial, status = self.exits.popleft()
            if status == PAUSED:
                self.apply(self.searcher.on_trial_paused(trial))
                continue
            if self.trials[trial].status in TERMINAL:
                continue
            self._set_status(trial, status)
            self.apply(self.searcher.on_trial_exited(trial, status))

    def fill(self) -> None:
        """Launch waiting trials, then offer the free slots to the searcher."""
        while True:
            while self.waiting and len(self.running) < self.capacity:
                t = self.waiting.pop(0)
                self.running.add(t)
                self.trials[t].launches += 1
                self._set_status(t, RUNNING)
                self._begin(t, self.target.pop(t))
            self.peak_running = max(self.peak_running, len(self.running))
            free = self.capacity - len(self.running) - len(self.waiting)
            if free <= 0 or self.shutdown:
                return
            before = (len(self.trials), len(self.running), len(self.waiting))
            actions = self.searcher.on_slots_free(free)
            if not actions:
                return
            self.apply(actions)
            self.drain()
            if (len(self.trials), len(self.running), len(self.waiting)) == before:
                return  # the searcher acted but used no slot; ask again after the next event

    def _next(self) -> Operation | None:
        """Pop the operation that completes first (stale heap entries are skipped)."""
        while self.heap:
            end, _, trial = heapq.heappop(self.heap)
            op = self.ops.get(trial)
            if op is not None and op.end == end:
                return op
        return None

    def run(self, max_operations: int) -> SimResult:
        self.apply(self.searcher.start())
        self.drain()
        self.fill()
        count = 0
        while (op := self._next()) is not None:
            count += 1
            if count > max_operations:
                raise SimulationError(f"more than {max_operations} operations; is it looping?")
            self.clock = op.end
            t = op.trial
            del self.ops[t]
            op.completed = True
            record = self.trials[t]
            first = not any(done.completed for done in record.operations)
            parent = record.parent if first else None
            objective = float(self.train_fn(t, record.params, parent, op.from_length, op.to_length))
            record.length = op.to_length
            record.operations.append(op)
            self.operations.append(op)
            self.done_length += op.trained
            record.reports.append((op.to_length, objective))
            self.history.observe(t, op.to_length, objective)
            if self.history.is_better(objective, self.best):
                self.best = objective
            self.curve.append(
                CurvePoint(self.clock, self.length_used(), t, op.to_length, objective, self.best)
            )
            self.apply(self.searcher.on_report(t, op.to_length, objective))
            self.drain()
            self.fill()
        stalled = sorted(self.running | set(self.waiting))
        return SimResult(
            trials=self.trials,
            operations=self.operations,
            total_length=self.done_length,
            makespan=self.clock,
            curve=self.curve,
            lower_is_better=self.history.lower_is_better,
            peak_running=self.peak_running,
            peak_training=self.peak_training,
            shutdown=self.shutdown,
            stalled=stalled,
        )
