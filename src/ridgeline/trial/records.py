"""SHERPA's small public value types: Trial, TrialStatus, AlgorithmState."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Trial:
    """A trial as user code sees it: a 1-based ``id`` and its ``parameters``."""

    id: int
    parameters: dict[str, Any] = field(default_factory=dict)


class TrialStatus:
    INTERMEDIATE = "INTERMEDIATE"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    STOPPED = "STOPPED"


class AlgorithmState:
    DONE = "DONE"
    WAIT = "WAIT"
