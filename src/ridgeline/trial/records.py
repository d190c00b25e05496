"""SHERPA's small public value types: Trial, TrialStatus, AlgorithmState."""

from __future__ import annotations

TYPE_CHECKING = False  # trial processes import this; typing and dataclasses cost ~15 ms
if TYPE_CHECKING:
    from typing import Any


class Trial:
    """A trial as user code sees it: a 1-based ``id`` and its ``parameters``."""

    __slots__ = ("id", "parameters")

    def __init__(self, id: int, parameters: dict[str, Any] | None = None) -> None:
        self.id = id
        self.parameters = {} if parameters is None else parameters

    def __repr__(self) -> str:
        return f"Trial(id={self.id!r}, parameters={self.parameters!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Trial):
            return NotImplemented
        return self.id == other.id and self.parameters == other.parameters

    __hash__ = None  # type: ignore[assignment]


class TrialStatus:
    INTERMEDIATE = "INTERMEDIATE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class AlgorithmState:
    DONE = "DONE"
    WAIT = "WAIT"
