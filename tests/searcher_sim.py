"""A miniature engine and coordinator for searcher tests (no store, no processes)."""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Callable
from typing import Any

from ridgeline.samplers.base import History
from ridgeline.searchers.base import Action, Close, Create, Searcher, Shutdown, Stop, Train
from ridgeline.space import Continuous, SearchSpace

SPACE = SearchSpace([Continuous("x", [0.0, 1.0])])
TERMINAL = {"COMPLETED", "STOPPED", "FAILED", "INVALID_HP", "CANCELED"}


def shifted(params: dict[str, Any], length: int) -> float:
    """Lower is better; trials rank by x at every length."""
    return params["x"] + 1 / length


def brief(action: Action) -> tuple[Any, ...]:
    """Compact form for expected sequences: T train, P pause, C close, S stop, N new, X done."""
    if isinstance(action, Train):
        return ("T", action.trial, action.until)
    if isinstance(action, Close):
        return ("C", action.trial) if action.final else ("P", action.trial)
    if isinstance(action, Stop):
        return ("S", action.trial)
    if isinstance(action, Create):
        return ("N", action.request_id)
    assert isinstance(action, Shutdown)
    return ("X",)


class Sim:
    """Engine and coordinator in miniature.

    A trial with an operation trains from its checkpoint to the operation's length, then
    reports and waits for the searcher's decision. ``Close(final=False)`` pauses it (the
    process exits, the checkpoint stays); ``Train`` on a paused trial relaunches it when one of
    ``capacity`` process slots is free; ``Close(final=True)`` and ``Stop`` end it.
    ``exits[(trial, length)]`` makes the trial end with that status instead of reporting.
    ``restart_after`` swaps in a fresh searcher from ``factory`` loaded with the old one's
    JSON state after that many reports, as a restarted coordinator would.
    """

    def __init__(
        self,
        searcher: Searcher,
        capacity: int,
        objective: Callable[[dict[str, Any], int], float] = shifted,
        lower_is_better: bool = True,
        seed: int = 0,
        exits: dict[tuple[int, int], str] | None = None,
        group: Callable[[int], int] = lambda trial: 0,
        restart_after: int | None = None,
        factory: Callable[[], Searcher] | None = None,
        space: SearchSpace = SPACE,
    ) -> None:
        self.space = space
        self.searcher = searcher
        self.capacity = capacity
        self.objective = objective
        self.exits = dict(exits or {})
        self.group = group
        self.restart_after = restart_after
        self.factory = factory
        self.history = History(lower_is_better=lower_is_better)
        self.rng = random.Random(seed)
        searcher.bind(space, self.history, self.rng)
        self.clock = 0
        self.length: dict[int, int] = {}  # checkpoint length per trial
        self.target: dict[int, int] = {}  # open operation per trial
        self.running: dict[int, int | None] = {}  # live process -> completion time (None: idle)
        self.waiting: list[int] = []  # an operation but no process yet
        self.state: dict[int, str] = {}
        self.requests: set[int] = set()
        self.events: deque[tuple[int, str]] = deque()  # process exits not yet told
        self.log: list[tuple[Any, ...]] = []
        self.reports = 0
        self.peaks: dict[int, int] = {}  # most open operations at once, per group
        self.relaunched: list[tuple[int, int]] = []  # (trial, length) of paused trials resumed
        self.progress: list[float] = []
        self.shutdown = False
        self.parents: dict[int, int | None] = {}

    def _set_status(self, trial: int, status: str) -> None:
        self.state[trial] = status
        self.history.remember(trial, self.history.get(trial).params, status)

    # -- actions ---------------------------------------------------------------------------
    def apply(self, event: str, trial: int | None, detail: Any, actions: list[Action]) -> None:
        self.log.append((event, self.clock, trial, detail, [brief(a) for a in actions]))
        queue = deque(actions)
        while queue:
            action = queue.popleft()
            if isinstance(action, Create):
                assert action.request_id not in self.requests, "request ids must be unique"
                self.requests.add(action.request_id)
                number = len(self.history.trials) + 1
                self.history.remember(number, action.params, "PENDING")
                self.state[number] = "PENDING"
                # A clone starts from its parent's checkpoint.
                self.length[number] = self.length[action.parent] if action.parent else 0
                self.parents[number] = action.parent
                more = self.searcher.on_trial_created(number, action.request_id)
                self.log.append(("created", self.clock, number, action.request_id, []))
                queue.extend(more)
            elif isinstance(action, Train):
                t = action.trial
                assert self.state[t] in ("PENDING", "RUNNING", "PAUSED"), (t, self.state[t])
                assert action.until is not None
                self.target[t] = int(action.until)
                if t in self.running:
                    self.running[t] = self.clock + self.target[t] - self.length[t]
                elif t not in self.waiting:
                    if self.state[t] == "PAUSED":
                        self.relaunched.append((t, self.target[t]))
                    self.waiting.append(t)
            elif isinstance(action, Close):
                t = action.trial
                self.target.pop(t, None)
                assert t not in self.waiting
                if t in self.running:
                    del self.running[t]
                    if action.final:
                        self.events.append((t, "COMPLETED"))
                    else:
                        self._set_status(t, "PAUSED")
                        self.events.append((t, "PAUSED"))  # checkpointed; process gone
                else:
                    assert self.state[t] == "PAUSED" and action.final, (t, self.state[t])
                    self.events.append((t, "COMPLETED"))  # a paused trial ends, complete
            elif isinstance(action, Stop):
                assert action.trial in self.running
                del self.running[action.trial]
                self.target.pop(action.trial, None)
                self.events.append((action.trial, "STOPPED"))
            else:
                self.shutdown = True
        self._measure()

    def _measure(self) -> None:
        counts: dict[int, int] = {}
        for t in [*self.running, *self.waiting]:
            if t in self.target:
                g = self.group(t)
                counts[g] = counts.get(g, 0) + 1
        for g, n in counts.items():
            self.peaks[g] = max(self.peaks.get(g, 0), n)
        assert len(self.running) <= self.capacity

    def drain(self) -> None:
        while self.events:
            trial, status = self.events.popleft()
            if status == "PAUSED":
                if self.state[trial] == "PAUSED":
                    self.apply("paused", trial, None, self.searcher.on_trial_paused(trial))
                continue
            self._set_status(trial, status)
            self.apply("exit", trial, status, self.searcher.on_trial_exited(trial, status))

    def fill(self) -> None:
        while True:
            while self.waiting and len(self.running) < self.capacity:
                t = self.waiting.pop(0)
                self.running[t] = self.clock + self.target[t] - self.length[t]
                self._set_status(t, "RUNNING")
            free = self.capacity - len(self.running) - len(self.waiting)
            if free <= 0 or self.shutdown:
                return
            actions = self.searcher.on_slots_free(free)
            if not actions:
                return
            self.apply("slots", None, free, actions)
            self.drain()

    def _restart(self) -> None:
        assert self.factory is not None
        saved = json.loads(json.dumps(self.searcher.state_dict(), allow_nan=False))
        self.searcher = self.factory()
        self.searcher.bind(self.space, self.history, self.rng)
        self.searcher.load_state_dict(saved)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> Sim:
        self.apply("start", None, None, self.searcher.start())
        self.drain()
        self.fill()
        while True:
            busy = [t for t, at in self.running.items() if at is not None]
            if not busy:
                break
            t = min(busy, key=lambda n: (self.running[n], n))
            at = self.running[t]
            assert at is not None
            self.clock = at
            length = self.target.pop(t)
            self.length[t] = length
            self.running[t] = None  # reported; waits for the searcher's decision
            status = self.exits.pop((t, length), None)
            if status is not None:
                del self.running[t]
                self.events.append((t, status))
            else:
                value = self.objective(self.history.trials[t - 1].params, length)
                self.history.observe(t, length, value)
                actions = self.searcher.on_report(t, length, value)
                self.apply("report", t, length, actions)
                assert self.running.get(t, 0) is not None, f"trial {t} got no decision"
                self.reports += 1
            self.drain()
            self.fill()
            self.progress.append(self.searcher.progress())
            if self.reports == self.restart_after:
                self._restart()
        assert not self.waiting
        return self

    def decisions(self) -> list[tuple[Any, ...]]:
        """(clock, trial, length, actions) per report, and (clock, trial, status, actions)
        per exit that made the searcher act."""
        return [
            (clock, trial, detail, actions)
            for event, clock, trial, detail, actions in self.log
            if event == "report" or (event == "exit" and actions)
        ]
