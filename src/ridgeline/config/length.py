"""Training lengths as configs write them: ``10`` or ``{epochs: 10}``."""

from __future__ import annotations

from typing import Any

from ridgeline.config.checks import Problems, as_int, join, suggest, whole

__all__ = ["LENGTH_UNITS", "length_units", "parse_length"]

LENGTH_UNITS = ("batches", "epochs", "records")


def parse_length(
    p: Problems, data: dict[str, Any], key: str = "max_length"
) -> tuple[int | None, str | None]:
    """``searcher.<key>`` as (length, unit); a plain integer has no unit unless ``unit`` says."""
    path = f"searcher.{key}"
    expected = "a positive integer or a one-key mapping {batches|epochs|records: N}"
    value = data.get(key)
    length: int | None = None
    unit: str | None = None
    if isinstance(value, dict):
        if len(value) != 1:
            p.bad(path, expected, value, "e.g. max_length: {epochs: 10}")
            return None, None
        ((key, n),) = value.items()
        if key in LENGTH_UNITS:
            unit = key
            length = as_int(p, join(path, key), n, 1)
        else:
            hint = suggest(str(key), LENGTH_UNITS)
            fix = f"did you mean {hint!r}?" if hint else f"use one of {', '.join(LENGTH_UNITS)}"
            if ":" in str(key):
                fix = "put a space after the colon, as in {epochs: 3}"
            p.add(join(path, key), f"unknown length unit (got {key!r}); {fix}")
    elif value is not None:
        length = whole(value)
        if length is None or length < 1:
            p.bad(path, expected, value, "e.g. max_length: {epochs: 10}")
            length = None
    declared = data.get("unit")
    if declared is not None:
        if declared not in LENGTH_UNITS:
            p.bad("searcher.unit", f"one of {', '.join(LENGTH_UNITS)}", declared)
        elif unit is not None and declared != unit:
            p.add(
                "searcher.unit",
                f"disagrees with max_length's unit (got unit {declared!r}, max_length in "
                f"{unit!r}); remove unit",
            )
        elif unit is None and length is not None:
            unit = declared
    return length, unit


def length_units(value: Any) -> int | None:
    """The number in a stored length (``10`` or ``{epochs: 10}``); None when there is none."""
    if isinstance(value, dict):
        value = next(iter(value.values()), None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None
