"""Run any searcher to the end on a virtual clock, with real (or synthetic) training.

``Simulation`` is the engine and coordinator in miniature, synchronous and deterministic: it
keeps the ``History`` the way the engine does, carries out every action (creates with a parent,
trains to absolute lengths, pauses and relaunches, closes, stops, shutdown) with at most
``capacity`` trial processes at once, and calls ``train_fn`` for each operation when it
completes. A trial that trains from length ``a`` to ``b`` finishes ``b - a`` time units after
it started, so the clock orders reports as a cluster of ``capacity`` equal workers would.
Processes exit at once: a ``Pause`` is followed by ``on_trial_paused``, a close or stop by
``on_trial_exited``, before the next event. A Pause, Close or Stop that arrives while
the trial trains cuts its operation short; the length trained until then still counts.

``run_searcher`` runs one and returns its ``SimResult`` (budget, best objective over time):

    searcher, space, lower = searcher_from_config({"name": "adaptive_asha", ...}, hparams)
    result = run_searcher(searcher, space, train_fn, capacity=4, lower_is_better=lower)
    result.total_length, result.best(), result.length_to_reach(0.05)

Searcher tests read the ``Simulation`` itself: its ``log`` of every event with the searcher's
actions in ``brief`` form, trials that fail on cue (``exits``), a restart from the searcher's
saved state mid-run (``restart_after``), concurrency per group of trials (``peaks``):

    sim = Simulation(searcher, capacity=4, objective=shifted).run()
    sim.decisions()[:2] == [(2, 1, 2, [("P", 1)]), (2, 2, 2, [("T", 1, 4), ("C", 2)])]
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ridgeline.samplers.base import History
from ridgeline.searchers.base import Action, Close, Create, Pause, Searcher, Shutdown, Stop, Train
from ridgeline.space import Continuous, SearchSpace
from ridgeline.store.records import COMPLETED, PAUSED, PENDING, RUNNING, STOPPED, TRIAL_DONE_STATES

__all__ = [
    "TERMINAL",
    "UNIT_SPACE",
    "CurvePoint",
    "ForkFn",
    "Objective",
    "Operation",
    "SimResult",
    "SimTrial",
    "Simulation",
    "SimulationError",
    "TrainFn",
    "brief",
    "run_searcher",
    "searcher_from_config",
    "shifted",
]

#: ``train_fn(trial, params, parent, from_length, to_length) -> objective at to_length``.
#: The callback owns the models: it continues the trial's own model from ``from_length``, or,
#: on the first operation of a trial created with a parent, starts from a copy of the parent's
#: model as it was at ``from_length`` (the parent's checkpoint when the child was created).
TrainFn = Callable[[int, dict[str, Any], int | None, int, int], float]
#: ``fork_fn(child, parent, length)``: called when a trial is created with a parent, at that
#: moment, while the parent's model is still at ``length``; copy it there if convenient.
ForkFn = Callable[[int, int, int], None]
#: ``objective(params, length)``: a learning curve that depends on nothing else (no model to
#: keep), the simple form of ``TrainFn``.
Objective = Callable[[dict[str, Any], int], float]

TERMINAL = TRIAL_DONE_STATES
#: One parameter ``x`` in [0, 1]: enough for searchers whose decisions the tests follow by hand.
UNIT_SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])


def shifted(params: dict[str, Any], length: int) -> float:
    """Lower is better; trials rank by ``x`` at every length."""
    return params["x"] + 1 / length


def brief(action: Action) -> tuple[Any, ...]:
    """Compact form for expected sequences: T train, P pause, C close, S stop, N new, X done."""
    if isinstance(action, Train):
        return ("T", action.trial, action.until)
    if isinstance(action, Pause):
        return ("P", action.trial)
    if isinstance(action, Close):
        return ("C", action.trial)
    if isinstance(action, Stop):
        return ("S", action.trial)
    if isinstance(action, Create):
        return ("N", action.request_id)
    assert isinstance(action, Shutdown)
    return ("X",)


class SimulationError(RuntimeError):
    """The searcher asked for something the protocol does not allow (or never ended)."""


@dataclass
class Operation:
    """One stretch of training: ``from_length`` to ``to_length``, started at ``start``.

    ``end`` is when it completed, or when it was cut short (``aborted``: a Pause, Stop or Close
    arrived while it trained, or its process ended there without a report, as
    ``Simulation.exits`` said; the length trained until then still counts)."""

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
    ties: Literal["trial", "started"] = "started",
) -> SimResult:
    """Run ``searcher`` to the end, at most ``capacity`` trial processes at once.

    ``seed`` seeds the generator the searcher is bound with. ``open_length`` is the length an
    open-ended ``Train(t, None)`` trains to (an error when not given). ``ties``: see
    ``Simulation``; operations that end at once report in the order they started, as they
    always have here (the benchmarks' calibrations rest on it). Raises ``SimulationError`` on
    a protocol violation or after ``max_operations`` operations."""
    simulation = Simulation(
        searcher,
        capacity,
        train_fn=train_fn,
        lower_is_better=lower_is_better,
        seed=seed,
        space=space,
        fork_fn=fork_fn,
        open_length=open_length,
        ties=ties,
    )
    return simulation.run(max_operations).result()


def _whole(value: float | None, default: int | None, trial: int) -> int:
    if value is None:
        if default is None:
            raise SimulationError(f"trial {trial}: open-ended Train(until=None); pass open_length")
        return default
    if not float(value).is_integer() or value < 0:
        raise SimulationError(f"trial {trial}: Train(until={value!r}) is not a whole length")
    return int(value)


def _one_group(trial: int) -> int:
    del trial
    return 0


class Simulation:
    """One run: the trials, the clock, the searcher's history and a log of every decision.

    ``objective`` or ``train_fn`` gives the reports (``train_fn`` wins when both are given).
    ``exits[(trial, length)]``: the trial's process ends with that status when it reaches
    ``length``, instead of reporting. ``group(trial)`` sorts trials into groups whose open
    operations are counted in ``peaks`` (a bracket, say). ``restart_after``: after that many
    reports the searcher is replaced by a fresh one from ``factory``, loaded with the old one's
    state through JSON, as a restarted coordinator would. ``ties``: which of the operations
    that end at the same instant reports first, ``"trial"`` (the lowest trial number: easy to
    follow by hand) or ``"started"`` (the first scheduled).

    ``log`` holds ``(event, clock, trial, detail, actions)`` per event the searcher answered:
    ``start``, ``slots`` (detail: the free slots), ``report`` (the length), ``paused``,
    ``exit`` (the status), and ``created`` (the request id; its actions are applied, not
    logged), with the actions in ``brief`` form.
    """

    def __init__(
        self,
        searcher: Searcher,
        capacity: int,
        *,
        objective: Objective = shifted,
        train_fn: TrainFn | None = None,
        lower_is_better: bool = True,
        seed: int = 0,
        space: SearchSpace = UNIT_SPACE,
        fork_fn: ForkFn | None = None,
        open_length: int | None = None,
        exits: Mapping[tuple[int, int], str] | None = None,
        group: Callable[[int], int] = _one_group,
        restart_after: int | None = None,
        factory: Callable[[], Searcher] | None = None,
        ties: Literal["trial", "started"] = "trial",
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        if ties not in ("trial", "started"):
            raise ValueError(f"ties must be 'trial' or 'started', got {ties!r}")
        if restart_after is not None and factory is None:
            raise ValueError("restart_after needs a factory for the restarted searcher")
        self.searcher = searcher
        self.space = space
        self.train_fn = train_fn if train_fn is not None else _from_objective(objective)
        self.fork_fn = fork_fn
        self.capacity = capacity
        self.open_length = open_length
        self.exits = dict(exits or {})
        self.group = group
        self.restart_after = restart_after
        self.factory = factory
        self.by_trial = ties == "trial"
        self.history = History(lower_is_better=lower_is_better)
        self.rng = random.Random(seed)
        searcher.bind(space, self.history, self.rng)
        self.clock = 0.0
        self.trials: dict[int, SimTrial] = {}
        self.operations: list[Operation] = []
        self.requests: set[int] = set()
        self.heap: list[tuple[float, int, int, int]] = []  # (end, tie, sequence, trial)
        self.sequence = 0
        self.ops: dict[int, Operation] = {}  # in flight, per trial
        self.target: dict[int, int] = {}  # work for trials that wait for a process
        self.running: set[int] = set()  # trials holding a process (training or idle)
        self.waiting: list[int] = []  # trials with work and no process yet
        self.events: deque[tuple[int, str]] = deque()  # process ends not yet told
        self.done_length = 0.0  # trained by completed and cut-short operations
        self.curve: list[CurvePoint] = []
        self.best = math.inf if lower_is_better else -math.inf
        self.shutdown = False
        self.peak_running = 0
        self.peak_training = 0
        self.peaks: dict[int, int] = {}  # most open operations at once, per group
        self.relaunched: list[tuple[int, int]] = []  # (trial, length) of paused trials resumed
        self.progress: list[float] = []  # the searcher's progress after each report or exit
        self.reports = 0
        self.log: list[tuple[Any, ...]] = []

    # -- what tests read -----------------------------------------------------------------------
    @property
    def state(self) -> dict[int, str]:
        """Each trial's status."""
        return {number: trial.status for number, trial in self.trials.items()}

    @property
    def parents(self) -> dict[int, int | None]:
        return {number: trial.parent for number, trial in self.trials.items()}

    def decisions(self) -> list[tuple[Any, ...]]:
        """(clock, trial, length, actions) per report, and (clock, trial, status, actions)
        per exit that made the searcher act."""
        return [
            (clock, trial, detail, actions)
            for event, clock, trial, detail, actions in self.log
            if event == "report" or (event == "exit" and actions)
        ]

    def result(self) -> SimResult:
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
            stalled=sorted(self.running | set(self.waiting)),
        )

    # -- history, as the engine keeps it -----------------------------------------------------
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
        tie = op.trial if self.by_trial else self.sequence
        heapq.heappush(self.heap, (op.end, tie, self.sequence, op.trial))
        self.peak_training = max(self.peak_training, len(self.ops))

    def _abort(self, trial: int) -> None:
        op = self.ops.pop(trial, None)
        if op is None:
            return
        op.end, op.aborted = self.clock, True
        self._finish(op)

    def _finish(self, op: Operation) -> None:
        self.done_length += op.trained
        self.trials[op.trial].operations.append(op)
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
    def apply(self, event: str, trial: int | None, detail: Any, actions: list[Action]) -> None:
        """Carry out the searcher's answer to ``event`` (logged with it)."""
        self.log.append((event, self.clock, trial, detail, [brief(a) for a in actions]))
        queue = deque(actions)
        while queue:
            action = queue.popleft()
            if isinstance(action, Create):
                queue.extend(self._create(action))
            elif isinstance(action, Train):
                self._train(action)
            elif isinstance(action, Pause | Close):
                self._close(action)
            elif isinstance(action, Stop):
                self._stop(action)
            elif isinstance(action, Shutdown):
                self.shutdown = True
            else:  # pragma: no cover - the Action union is closed
                raise SimulationError(f"unknown action {action!r}")
        self._measure()

    def _measure(self) -> None:
        """Peaks of open operations per group; processes never outnumber the slots."""
        if len(self.running) > self.capacity:
            raise SimulationError(f"{len(self.running)} processes on {self.capacity} slots")
        counts: dict[int, int] = {}
        for t in [*self.ops, *self.waiting]:
            g = self.group(t)
            counts[g] = counts.get(g, 0) + 1
        for g, n in counts.items():
            self.peaks[g] = max(self.peaks.get(g, 0), n)

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
        more = self.searcher.on_trial_created(number, action.request_id)
        self.log.append(("created", self.clock, number, action.request_id, []))
        return more

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
                if record.status == PAUSED:
                    self.relaunched.append((t, until))
                self.waiting.append(t)

    def _close(self, action: Pause | Close) -> None:
        t = action.trial
        record = self._known(t, action)
        if record.status in TERMINAL:
            return
        self._release(t)
        if isinstance(action, Close):
            self.events.append((t, COMPLETED))
        elif record.status != PAUSED:
            self._set_status(t, PAUSED)
            self.events.append((t, PAUSED))  # its process is gone: on_trial_paused

    def _stop(self, action: Stop) -> None:
        t = action.trial
        if self._known(t, action).status in TERMINAL:
            return
        self._release(t)
        self.events.append((t, STOPPED))

    def _known(self, trial: int, action: Action) -> SimTrial:
        record = self.trials.get(trial)
        if record is None:
            raise SimulationError(f"{action!r}: no trial {trial}")
        return record

    # -- the loop ----------------------------------------------------------------------------
    def drain(self) -> None:
        """Tell the searcher about trials that paused or ended."""
        while self.events:
            trial, status = self.events.popleft()
            if status == PAUSED:
                if self.trials[trial].status == PAUSED:
                    self.apply("paused", trial, None, self.searcher.on_trial_paused(trial))
                continue
            if self.trials[trial].status in TERMINAL:
                continue
            self._set_status(trial, status)
            self.apply("exit", trial, status, self.searcher.on_trial_exited(trial, status))

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
            self.apply("slots", None, free, actions)
            self.drain()
            if (len(self.trials), len(self.running), len(self.waiting)) == before:
                return  # the searcher acted but used no slot; ask again after the next event

    def _next(self) -> Operation | None:
        """Pop the operation that completes first (stale heap entries are skipped)."""
        while self.heap:
            end, _, _, trial = heapq.heappop(self.heap)
            op = self.ops.get(trial)
            if op is not None and op.end == end:
                return op
        return None

    def _complete(self, op: Operation) -> None:
        """``op`` reached its length: the trial reports (or ends there, as ``exits`` says)."""
        t = op.trial
        del self.ops[t]
        record = self.trials[t]
        status = self.exits.pop((t, op.to_length), None)
        if status is not None:  # the process ends instead of reporting
            op.aborted = True
            self._finish(op)
            self._release(t)
            self.events.append((t, status))
            return
        op.completed = True
        first = not any(done.completed for done in record.operations)
        parent = record.parent if first else None
        objective = float(self.train_fn(t, record.params, parent, op.from_length, op.to_length))
        record.length = op.to_length
        self._finish(op)
        record.reports.append((op.to_length, objective))
        self.history.observe(t, op.to_length, objective)
        if self.history.is_better(objective, self.best):
            self.best = objective
        self.curve.append(
            CurvePoint(self.clock, self.length_used(), t, op.to_length, objective, self.best)
        )
        self.apply("report", t, op.to_length, self.searcher.on_report(t, op.to_length, objective))
        self.reports += 1

    def _restart(self) -> None:
        """A fresh searcher from the old one's saved state, as after a coordinator restart."""
        assert self.factory is not None
        saved = json.loads(json.dumps(self.searcher.state_dict(), allow_nan=False))
        self.searcher = self.factory()
        self.searcher.bind(self.space, self.history, self.rng)
        self.searcher.load_state_dict(saved)

    def run(self, max_operations: int = 1_000_000) -> Simulation:
        """Run to the end: until no operation is left. Raises ``SimulationError`` after
        ``max_operations`` operations (a searcher that loops)."""
        self.apply("start", None, None, self.searcher.start())
        self.drain()
        self.fill()
        count = 0
        while (op := self._next()) is not None:
            count += 1
            if count > max_operations:
                raise SimulationError(f"more than {max_operations} operations; is it looping?")
            self.clock = op.end
            self._complete(op)
            self.drain()
            self.fill()
            self.progress.append(self.searcher.progress())
            if self.reports == self.restart_after:
                self._restart()
        return self


def _from_objective(objective: Objective) -> TrainFn:
    def train(trial: int, params: dict[str, Any], parent: int | None, a: int, b: int) -> float:
        del trial, parent, a
        return objective(params, b)

    return train
