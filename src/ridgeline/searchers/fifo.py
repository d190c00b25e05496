"""First-in-first-out searcher: a new trial whenever a slot frees, until the budget is spent."""

from __future__ import annotations

from dataclasses import dataclass, field

from ridgeline.samplers.base import WAIT, Sampler
from ridgeline.searchers.base import Action, Close, Create, Searcher, Shutdown, Train
from ridgeline.statedict import init_fields
from ridgeline.store.records import INVALID_HP


@dataclass(eq=False, repr=False)
class FIFOState:
    """Trials created, those given back to the budget, and whether the search is over."""

    created: int = 0  # request ids handed out so far
    invalid: int = 0  # trials that ended INVALID_HP and were given back to the budget
    own: set[int] = field(default_factory=set)  # trials that spend the budget (replace_invalid)
    exhausted: bool = False


class FIFOSearcher(Searcher, FIFOState):
    """Each trial runs once, open-ended (SHERPA) or to ``max_length`` (Core API)."""

    nested = ("sampler",)

    def __init__(
        self,
        sampler: Sampler,
        max_trials: int | None = None,
        max_length: float | None = None,
        replace_invalid: bool = False,
    ) -> None:
        self.sampler = sampler
        self.max_trials = max_trials
        self.max_length = max_length
        # Determined's random searcher replaces a trial that rejected its hyperparameters, so
        # the budget is only spent once every running trial has ended (grid does not).
        self.replace_invalid = replace_invalid
        init_fields(self)

    def _budget_spent(self) -> bool:
        return self.max_trials is not None and self.created - self.invalid >= self.max_trials

    def _over(self) -> list[Action]:
        self.exhausted = True
        return [Shutdown("search space exhausted or trial budget spent")]

    def on_slots_free(self, n: int) -> list[Action]:
        actions: list[Action] = []
        if self.exhausted:
            return actions
        pending = self.history.pending_params()
        for _ in range(n):
            if self._budget_spent():
                if self.replace_invalid and (self.history.active or actions):
                    return actions  # a running trial may still give its place back
                return actions + self._over()
            params = self.sampler.propose(self.space, self.history, pending, self.rng)
            if params is None:
                return actions + self._over()
            if params == WAIT:
                break
            assert isinstance(params, dict)
            self.created += 1
            actions.append(Create(self.created, params))
            pending.append(params)
        return actions

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        if self.replace_invalid and request_id > 0:
            self.own.add(trial)  # trials the user added (request_id < 0) spend no budget
        return [Train(trial, self.max_length)]

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        if self.max_length is not None and step >= self.max_length:
            return [Close(trial)]
        return []

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        if status == INVALID_HP and self.replace_invalid and trial in self.own:
            self.invalid += 1
        if self._budget_spent() and not self.history.active and not self.exhausted:
            return self._over()
        return []

    def progress(self) -> float:
        if self.exhausted:
            return 1.0
        return self.created / self.max_trials if self.max_trials else 0.0
