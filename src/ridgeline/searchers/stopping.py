"""Adds a stopping rule (e.g. the median rule) to any searcher."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ridgeline.searchers.base import Action, Searcher, Stop

if TYPE_CHECKING:
    import random

    from ridgeline.samplers.base import History
    from ridgeline.sherpa.stopping import StoppingRule
    from ridgeline.space import SearchSpace


class StoppingRuleSearcher(Searcher):
    """Delegates every event to ``inner`` and stops trials the rule condemns on each report."""

    def __init__(self, inner: Searcher, rule: StoppingRule) -> None:
        self.inner = inner
        self.rule = rule
        self.stopped: set[int] = set()

    def bind(self, space: SearchSpace, history: History, rng: random.Random) -> None:
        super().bind(space, history, rng)
        self.inner.bind(space, history, rng)

    def start(self) -> list[Action]:
        return self.inner.start()

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        return self.inner.on_trial_created(trial, request_id)

    def on_slots_free(self, n: int) -> list[Action]:
        return self.inner.on_slots_free(n)

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        actions = self.inner.on_report(trial, step, objective)
        if trial not in self.stopped and self.rule.should_stop(trial, self.history):
            self.stopped.add(trial)
            actions.append(Stop(trial, f"stopped by {type(self.rule).__name__}"))
        return actions

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        return self.inner.on_trial_exited(trial, status)

    def progress(self) -> float:
        return self.inner.progress()

    def state_dict(self) -> dict[str, Any]:
        return {"inner": self.inner.state_dict(), "stopped": sorted(self.stopped)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.inner.load_state_dict(state["inner"])
        self.stopped = set(state["stopped"])
