"""Checks every searcher constructor runs on its arguments, shared so that each raises the
same ``ConfigError`` wording (``searcher.<field> must be ...``) as the config file would."""

from __future__ import annotations

from typing import Any

from ridgeline.errors import ConfigError
from ridgeline.values import whole_number

__all__ = ["check_divisor", "check_fraction", "check_int", "number_text"]


def check_int(name: str, value: Any, low: int) -> int:
    """``value`` as an integer >= ``low``; ``name`` is the field under ``searcher.``."""
    return whole_number(f"searcher.{name}", value, low)


def check_divisor(divisor: Any) -> float:
    """A halving divisor: a number > 1."""
    if isinstance(divisor, bool) or not isinstance(divisor, (int, float)) or not divisor > 1:
        raise ConfigError(
            f"searcher.divisor must be a number > 1, got {divisor!r}; the usual divisor is 4"
        )
    return float(divisor)


def check_fraction(name: str, value: Any, high: float) -> float:
    """A number in ``[0, high]`` (PBT's truncation and explore settings)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= high:
        raise ConfigError(f"searcher.{name} must be a number in [0, {high}], got {value!r}")
    return float(value)


def number_text(value: float) -> str:
    """4.0 -> '4', 2.5 -> '2.5' (divisors read as users wrote them)."""
    return str(int(value)) if float(value).is_integer() else str(value)
