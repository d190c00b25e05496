"""The sampler interface: *what* to try next. Samplers are pure: history in, parameters out."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

from ridgeline.statedict import Stateful
from ridgeline.store.records import COMPLETED, FAILED, TRIAL_DONE_STATES

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

#: Returned by ``Sampler.propose`` when nothing can be proposed until running trials finish.
WAIT: Final = "WAIT"


@dataclass(frozen=True)
class TrialView:
    """What a sampler or searcher may know about one trial."""

    number: int  # 1-based within the experiment (a store record's ``id`` is store-wide)
    params: dict[str, Any]
    status: str  # PENDING, RUNNING, COMPLETED, FAILED, STOPPED
    objective: float | None = None  # best finite objective so far (direction-aware), or None
    last_step: int | None = None  # highest reported iteration/step


@dataclass
class History:
    """Trials and their learning curves, updated incrementally by whoever drives the search
    (the engine, a simulation) through ``remember`` and ``observe``, so that every driver
    keeps it the same way.

    ``trials`` is indexed by ``number - 1``; ``active`` holds trials that are not finished;
    ``curves[number]`` lists ``(step, objective)`` in report order (NaN kept: it is data).
    """

    lower_is_better: bool = True
    trials: list[TrialView] = field(default_factory=list)
    active: dict[int, TrialView] = field(default_factory=dict)
    curves: dict[int, list[tuple[int, float]]] = field(default_factory=dict)

    def remember(self, number: int, params: dict[str, Any], status: str) -> TrialView:
        """A trial was created or changed status; returns its view. A trial numbered past
        the next one leaves the numbers in between as FAILED trials without parameters (the
        store never gives gaps; a history that indexes by number must survive one anyway)."""
        if number > len(self.trials):
            while len(self.trials) < number - 1:
                self.trials.append(TrialView(len(self.trials) + 1, {}, FAILED))
            view = TrialView(number, params, status)
            self.trials.append(view)
            self.curves.setdefault(number, [])
        else:
            view = replace(self.trials[number - 1], status=status)
            self.trials[number - 1] = view
        if status in TRIAL_DONE_STATES:
            self.active.pop(number, None)
        else:
            self.active[number] = view
        return view

    def observe(self, number: int, step: int, value: float) -> TrialView:
        """A report: it joins the trial's curve, and the trial's best objective and highest
        step follow it; returns the updated view."""
        self.curves.setdefault(number, []).append((step, value))
        view = self.trials[number - 1]
        best = value if self.is_better(value, view.objective) else view.objective
        last = step if view.last_step is None or step > view.last_step else view.last_step
        view = replace(view, objective=best, last_step=last)
        self.trials[number - 1] = view
        if number in self.active:
            self.active[number] = view
        return view

    def is_better(self, a: float, b: float | None) -> bool:
        """True when objective ``a`` beats ``b`` (None and NaN lose to any number)."""
        if math.isnan(a) or math.isinf(a):
            return False
        if b is None:
            return True
        return a < b if self.lower_is_better else a > b

    def get(self, number: int) -> TrialView:
        return self.trials[number - 1]

    def with_status(self, *statuses: str) -> list[TrialView]:
        return [t for t in self.trials if t.status in statuses]

    def ranked(self, statuses: Sequence[str] = (COMPLETED,)) -> list[TrialView]:
        """Trials with a finite objective and one of ``statuses``, best first."""
        scored = [t for t in self.trials if t.status in statuses and t.objective is not None]
        return sorted(scored, key=lambda t: t.objective, reverse=not self.lower_is_better)  # type: ignore[arg-type,return-value]

    def pending_params(self) -> list[dict[str, Any]]:
        return [t.params for t in self.active.values()]


class Sampler(Stateful, ABC):
    """Proposes parameters. Never touches the store, a process, a socket or the clock.
    Its state (``state_dict``) is that of ``ridgeline.statedict.Stateful``."""

    @abstractmethod
    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        """Parameters for a new trial; ``None`` when exhausted; ``WAIT`` to retry later.

        ``pending``: parameters of trials that run now (model-based samplers avoid them).
        ``rng``: the experiment's generator; every random choice must come from it.
        """

    def check(self, space: SearchSpace) -> None:  # noqa: B027 - optional hook
        """Raise a ``RidgelineError`` when this sampler cannot search ``space`` (a grid too
        large, say), so that the search is refused before any trial runs."""


@dataclass(eq=False, repr=False)
class Position:
    """The state of a sampler that walks a fixed sequence (a grid, a list): how far it got."""

    position: int = 0
