"""Checks on user-supplied values shared by the engine and the trial side (stdlib only)."""

from __future__ import annotations

import numbers
import uuid as uuidlib

from ridgeline.errors import CheckpointError, ConfigError, ObservationError

TYPE_CHECKING = False  # trial processes import this; keep typing out of their start-up
if TYPE_CHECKING:
    from typing import Any


MAX_STEP = 2**63 - 1  # steps are stored as signed 64-bit integers


def check_objective(objective: Any, where: str) -> float:
    """Numbers pass (NaN and inf too: they are recorded, never chosen as best); anything else,
    and integers too large for a float, is refused with its value named."""
    if isinstance(objective, bool) or not isinstance(objective, numbers.Real):
        raise ObservationError(
            f"{where}: objective must be a number, got {_short(objective)} "
            f"({type(objective).__name__}); pass a float such as 0.25"
        )
    try:
        return float(objective)
    except OverflowError:
        raise ObservationError(
            f"{where}: objective {_short(objective)} is too large for a float"
        ) from None


def check_iteration(iteration: Any, where: str) -> int:
    """Iterations are whole numbers from 0 to 2**63-1 (SHERPA epochs, Determined steps): a
    database stores them as 64-bit integers, so a larger one could never be recorded."""
    if isinstance(iteration, bool):
        raise ObservationError(f"{where}: iteration must be an integer, got {iteration!r}")
    if isinstance(iteration, numbers.Integral):
        step = int(iteration)
    elif isinstance(iteration, numbers.Real) and float(iteration).is_integer():
        step = int(float(iteration))
    else:
        raise ObservationError(
            f"{where}: iteration must be an integer such as 1 or the epoch number, "
            f"got {_short(iteration)}"
        )
    if not 0 <= step <= MAX_STEP:
        raise ObservationError(
            f"{where}: iteration must be between 0 and 2**63-1, got {_short(step)}"
        )
    return step


def _short(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters: a 4,000-digit number must not flood a message."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 4000 else "<huge int>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_uuid(value: Any, where: str) -> str:
    """A canonical UUID string (lower-case, hyphenated, 36 characters), as ``str(uuid4())``
    writes it; anything else (paths, '', upper case, braces) is refused. Checkpoint ids are
    folder names, so only this form is ever joined to a path."""
    if isinstance(value, str) and len(value) == 36:
        try:
            if str(uuidlib.UUID(value)) == value:
                return value
        except ValueError:
            pass
    raise CheckpointError(
        f"{where}: a checkpoint id must be a UUID such as "
        f"'0b4e7a52-6c1d-4f0e-9a55-3e8c6b1f2d7a', got {value!r}"
    )


def plain(value: Any) -> Any:
    """JSON fallback: NumPy-style scalars become Python numbers; others are refused by name."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise ObservationError(
        f"cannot record {value!r} ({type(value).__name__}): use numbers, strings or lists"
    )


def whole_number(name: str, value: Any, minimum: int = 1) -> int:
    """An integer argument of at least ``minimum`` (booleans refused), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
