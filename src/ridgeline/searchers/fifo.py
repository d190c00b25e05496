"""First-in-first-out searcher: a new trial whenever a slot frees, until the budget is spent."""

from __future__ import annotations

from typing import Any

from ridgeline.samplers.base import WAIT, Sampler
from ridgeline.searchers.base import Action, Create, Searcher, Shutdown, Train


class FIFOSearcher(Searcher):
    """Each trial runs once, open-ended (SHERPA) or to ``max_length`` (Core API)."""

    def __init__(
        self, sampler: Sampler, max_trials: int | None = None, max_length: float | None = None
    ) -> None:
        self.sampler = sampler
        self.max_trials = max_trials
        self.max_length = max_length
        self.created = 0  # request ids handed out so far; also the trial budget spent
        self.exhausted = False

    def _over(self) -> list[Action]:
        self.exhausted = True
        return [Shutdown("search space exhausted or trial budget spent")]

    def on_slots_free(self, n: int) -> list[Action]:
        actions: list[Action] = []
        if self.exhausted:
            return actions
        pending = self.history.pending_params()
        for _ in range(n):
            if self.max_trials is not None and self.created >= self.max_trials:
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
        return [Train(trial, self.max_length)]

    def progress(self) -> float:
        if self.exhausted:
            return 1.0
        return self.created / self.max_trials if self.max_trials else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "exhausted": self.exhausted,
            "sampler": self.sampler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.created = state["created"]
        self.exhausted = state["exhausted"]
        self.sampler.load_state_dict(state["sampler"])
