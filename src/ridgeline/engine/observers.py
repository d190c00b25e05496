"""Followers of the engine's outcomes: what else, besides the searcher, learns of each
observation and each trial's end.

The engine tells its observers once the change is in the store and the searcher has decided
on it, so an observer never sees what the engine does not hold, and an observer that raises
(a warning turned error) leaves the engine consistent. Replaying a stored experiment
(``ridgeline.engine.run.rebuild_results``) tells them the same things in the order they
happened, so a follower built live and one rebuilt after a restart agree. SHERPA's results
table is one; drivers add them, the engine never needs to know what they are.
"""

from __future__ import annotations

from typing import Any, Protocol


class EngineObserver(Protocol):
    """What the engine tells a follower; both calls come in the order things happened."""

    def trial_observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        """Trial ``number`` reported ``objective`` at ``step`` (once per trial and step;
        NaN and infinities too), with its parameters and the report's other values."""

    def trial_ended(self, number: int, status: str) -> None:
        """Trial ``number`` ended for good with ``status`` (COMPLETED, FAILED, STOPPED,
        CANCELED, ...); told once per trial."""


class Observers:
    """The engine's observers, told in the order they were added."""

    def __init__(self) -> None:
        self._observers: list[EngineObserver] = []

    def add(self, observer: EngineObserver) -> None:
        self._observers.append(observer)

    def observed(
        self,
        number: int,
        step: int,
        params: dict[str, Any],
        objective: float,
        context: dict[str, Any],
    ) -> None:
        for observer in self._observers:
            observer.trial_observed(number, step, params, objective, context)

    def ended(self, number: int, status: str) -> None:
        for observer in self._observers:
            observer.trial_ended(number, status)


__all__ = ["EngineObserver", "Observers"]
