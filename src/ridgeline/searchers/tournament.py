"""Brackets run side by side: the shared part of adaptive ASHA and Hyperband.

Each bracket is an independent searcher with its own trial budget and concurrency; the
tournament routes every trial's events to the bracket that created it, shares the engine's
slots among the brackets, and ends when all of them have.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ridgeline.errors import ConfigError
from ridgeline.searchers.base import Action, Create, Searcher, Shutdown
from ridgeline.statedict import init_fields

if TYPE_CHECKING:
    from ridgeline.samplers.base import History, Sampler
    from ridgeline.space import SearchSpace

__all__ = ["Bracket", "BracketTournament"]


class Bracket(Protocol):
    """What a tournament needs of a bracket (``ASHASearcher``, ``SyncHalvingSearcher``)."""

    done: bool
    concurrency: int

    @property
    def busy(self) -> int: ...

    def room(self) -> int: ...

    def fill(self, n: int, pending_params: list[dict[str, Any]] | None = None) -> list[Action]: ...

    def bind(self, space: SearchSpace, history: History, rng: random.Random) -> None: ...

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]: ...

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]: ...

    def on_trial_exited(self, trial: int, status: str) -> list[Action]: ...

    def on_trial_paused(self, trial: int) -> list[Action]: ...

    def progress(self) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(eq=False, repr=False)
class TournamentState:
    """Which bracket owns each trial, and whether they have all finished."""

    owner: dict[int, int] = field(default_factory=dict)  # trial -> index of its bracket
    done: bool = False


class BracketTournament(Searcher, TournamentState):
    """Brackets sharing one sampler and the engine's slots.

    Request ids stay unique across brackets: bracket b's i-th create becomes request
    ``(i-1)*B + b + 1`` (B brackets), so the mapping needs no state. User-added trials
    (negative request ids) go to the first bracket, which trains them to ``max_length``.
    The brackets' states are saved without the sampler, saved once as the tournament's.
    """

    name = "tournament"
    nested = ("sampler",)

    def __init__(self, sampler: Sampler, brackets: Sequence[Bracket]) -> None:
        self.sampler = sampler
        self.brackets = list(brackets)
        init_fields(self)

    def bind(self, space: SearchSpace, history: History, rng: random.Random) -> None:
        super().bind(space, history, rng)
        for bracket in self.brackets:
            bracket.bind(space, history, rng)

    # -- routing -----------------------------------------------------------------------------
    def _request(self, bracket: int, local: int) -> int:
        return (local - 1) * len(self.brackets) + bracket + 1

    def _route(self, bracket: int, actions: list[Action]) -> list[Action]:
        """Bracket actions as the engine must see them: global request ids, no Shutdown."""
        out: list[Action] = []
        for action in actions:
            if isinstance(action, Create):
                out.append(
                    Create(self._request(bracket, action.request_id), action.params, action.parent)
                )
            elif not isinstance(action, Shutdown):  # the tournament ends when all brackets do
                out.append(action)
        if not self.done and all(b.done for b in self.brackets):
            self.done = True
            out.append(Shutdown(f"{self.name}: every bracket has finished"))
        return out

    # -- events ------------------------------------------------------------------------------
    def on_slots_free(self, n: int) -> list[Action]:
        """Hand slots one at a time to the bracket using the smallest share of its own
        concurrency (ties: the first), so a scarce scheduler is shared fairly."""
        if self.done:
            return []
        pending = self.history.pending_params()
        actions: list[Action] = []
        refused: set[int] = set()
        while n > 0:
            ready = [i for i, b in enumerate(self.brackets) if i not in refused and b.room() > 0]
            if not ready:
                break
            i = min(ready, key=lambda j: (self.brackets[j].busy / self.brackets[j].concurrency, j))
            out = self.brackets[i].fill(1, pending)
            if any(isinstance(a, Create) for a in out):
                n -= 1
            else:
                refused.add(i)  # the sampler waits or ran dry
            actions += self._route(i, out)
        return actions

    def on_trial_created(self, trial: int, request_id: int) -> list[Action]:
        if request_id < 0:
            bracket, local = 0, request_id
        else:
            bracket = (request_id - 1) % len(self.brackets)
            local = (request_id - 1) // len(self.brackets) + 1
        self.owner[trial] = bracket
        return self._route(bracket, self.brackets[bracket].on_trial_created(trial, local))

    def on_report(self, trial: int, step: int, objective: float) -> list[Action]:
        bracket = self.owner.get(trial)
        if bracket is None:
            return []
        return self._route(bracket, self.brackets[bracket].on_report(trial, step, objective))

    def on_trial_exited(self, trial: int, status: str) -> list[Action]:
        bracket = self.owner.get(trial)
        if bracket is None:
            return []
        return self._route(bracket, self.brackets[bracket].on_trial_exited(trial, status))

    def on_trial_paused(self, trial: int) -> list[Action]:
        bracket = self.owner.get(trial)
        if bracket is None:
            return []
        return self._route(bracket, self.brackets[bracket].on_trial_paused(trial))

    # -- progress and state ------------------------------------------------------------------
    def progress(self) -> float:
        """The mean of the brackets' progress (as upstream's tournament)."""
        return sum(b.progress() for b in self.brackets) / len(self.brackets)

    def state_dict(self) -> dict[str, Any]:
        brackets = [bracket.state_dict() for bracket in self.brackets]
        for saved in brackets:
            del saved["sampler"]  # shared: saved once, as the tournament's
        return {"brackets": brackets, **super().state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["brackets"]) != len(self.brackets):
            raise ConfigError(
                f"saved {self.name} state has {len(state['brackets'])} brackets but the "
                f"searcher has {len(self.brackets)}; resume with the original searcher config"
            )
        for bracket, saved in zip(self.brackets, state["brackets"], strict=True):
            bracket.load_state_dict(saved)
        super().load_state_dict(state)
