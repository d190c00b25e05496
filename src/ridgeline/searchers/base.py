"""The searcher interface: *when* to create, extend, pause or stop trials.

Events in, actions out, state as JSON. The engine applies the actions to the store and the
scheduler; a searcher never does I/O, so it runs in microseconds and resumes after a crash.
"""

from __future__ import annotations

import random
from abc import ABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import WAIT, Sampler
from ridgeline.statedict import Stateful

if TYPE_CHECKING:
    from collections.abc import Callable

    from ridgeline.samplers.base import History
    from ridgeline.space import SearchSpace


@dataclass(frozen=True)
class Create:
    """Create a trial. ``request_id`` is unique per experiment and makes the create idempotent."""

    request_id: int
    params: dict[str, Any]
    parent: int | None = None  # warm start from this trial's latest checkpoint


@dataclass(frozen=True)
class Train:
    """Run ``trial`` until its absolute length reaches ``until`` (None: open-ended)."""

    trial: int
    until: float | None = None


@dataclass(frozen=True)
class Pause:
    """No more work for ``trial`` now: its operation stream ends and its process exits with
    its checkpoint kept; a later ``Train`` relaunches it from that checkpoint."""

    trial: int


@dataclass(frozen=True)
class Close:
    """The searcher is done with ``trial``: its operation stream ends, its process exits and
    it ends COMPLETED (a paused trial ends at once)."""

    trial: int


@dataclass(frozen=True)
class Stop:
    """End ``trial``: told to stop first, killed after a grace period."""

    trial: int
    reason: str = ""


@dataclass(frozen=True)
class Shutdown:
    """The search is over once running trials end."""

    reason: str = ""


Action = Create | Train | Pause | Close | Stop | Shutdown


class Searcher(Stateful, ABC):
    """Base searcher. Subclasses override the events they care about; each returns actions.
    Its state (``state_dict``) is that of ``ridgeline.statedict.Stateful``."""

    space: SearchSpace
    history: History
    rng: random.Random

    def bind(self, space: SearchSpace, history: History, rng: random.Random) -> None:
        """Attach the engine-owned space, history and generator (before ``start``); a
        sampler that cannot search the space refuses it here, before anything runs."""
        self.space, self.history, self.rng = space, history, rng
        sampler = getattr(self, "sampler", None)
        if isinstance(sampler, Sampler):
            sampler.check(space)

    def start(self) -> list[Action]:
        return []

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        return []

    def on_slots_free(self, n: int) -> list[Action]:
        """``n`` more trials can run now: create or resume up to ``n``."""
        return []

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        return []

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        return []

    def on_trial_paused(self, trial: int) -> list[Action]:
        """``trial``'s process exited after a pause, its checkpoint saved (for searchers
        that clone checkpoints, such as PBT: a parent's state is on disk from now on)."""
        return []

    def progress(self) -> float:
        """Fraction of the search done, 0..1 (0 when unknown)."""
        return 0.0


@dataclass(eq=False, repr=False)
class CreatingState:
    """What every searcher that creates trials from a sampler saves (ASHA, successive
    halving, PBT): request ids are 1, 2, ...; ``pending`` holds those not yet announced."""

    created: int = 0  # request ids handed out
    invalid: int = 0  # trials that rejected their hyperparameters (given back)
    exhausted: bool = False  # the sampler has nothing more to propose
    done: bool = False  # Shutdown emitted
    pending: set[int] = field(default_factory=set)  # request ids created, not yet announced
    outstanding: set[int] = field(default_factory=set)  # trials with an open operation
    finished: set[int] = field(default_factory=set)  # decided for good (closed, stopped), ended
    extra: set[int] = field(default_factory=set)  # user-added trials: outside the budget


class CreatingSearcher(Searcher, CreatingState):
    """A searcher that creates trials from ``sampler`` and counts them; its saved state is
    a ``CreatingState`` (or one that extends it) and the sampler's."""

    nested = ("sampler",)
    sampler: Sampler

    def _adopt(self, trial: int, length: int) -> list[Action]:
        """A trial the user added (``request_id < 0``): it trains to ``length`` (the
        searcher's ``max_length``), outside the budget and the searcher's decisions."""
        self.extra.add(trial)
        return [Train(trial, length)]

    def _create(
        self, n: int, can_create: Callable[[], bool], pending_params: list[dict[str, Any]]
    ) -> list[Action]:
        """Up to ``n`` creates while ``can_create()``; stops when the sampler waits, and
        marks the searcher exhausted when it has nothing more to propose."""
        actions: list[Action] = []
        for _ in range(n):
            if not can_create():
                break
            params = self.sampler.propose(self.space, self.history, pending_params, self.rng)
            if params is None:
                self.exhausted = True
                break
            if params == WAIT:
                break
            assert isinstance(params, dict)
            self.created += 1
            self.pending.add(self.created)
            actions.append(Create(self.created, params))
            pending_params.append(params)
        return actions
