"""``hyperparameters:``: Determined's types, nested groups, the search space and grid axes."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ridgeline.config.checks import Problems, as_int, as_number, join, show, suggest
from ridgeline.errors import ConfigError, SpaceError
from ridgeline.space import (
    MAX_GRID_POINTS,
    Choice,
    Constant,
    Continuous,
    Discrete,
    Parameter,
    SearchSpace,
)

__all__ = [
    "MAX_GRID_POINTS",
    "HParam",
    "check_sizes",
    "grid_axis",
    "grid_axis_size",
    "grid_of",
    "grid_size",
    "nest_params",
    "parse_hyperparameters",
]

TYPES = ("const", "int", "double", "log", "categorical")
NUMERIC = ("int", "double", "log")
FIELDS: dict[str, tuple[str, ...]] = {
    "const": ("type", "val"),
    "int": ("type", "minval", "maxval", "count"),
    "double": ("type", "minval", "maxval", "count"),
    "log": ("type", "minval", "maxval", "base", "count"),
    "categorical": ("type", "vals"),
}
#: Other libraries' names for Determined's types, for the error message.
SYNONYMS = {
    "float": "double",
    "uniform": "double",
    "continuous": "double",
    "integer": "int",
    "discrete": "int",
    "randint": "int",
    "loguniform": "log",
    "choice": "categorical",
    "ordinal": "categorical",
    "constant": "const",
    "fixed": "const",
}
#: A constant or categorical value, serialized as JSON, may take this many bytes at most, and
#: a trial's whole hyperparameter set this many: they travel to each trial in its environment
#: (``RIDGELINE_HPARAMS``), where Linux allows 128 KiB per variable and ~2 MiB in all.
MAX_VALUE_BYTES = 16 * 1024
MAX_HPARAMS_BYTES = 64 * 1024


@dataclass(frozen=True)
class HParam:
    """One flattened hyperparameter (``name`` is dotted for nested groups)."""

    name: str
    type: str
    val: Any = None
    minval: Any = None
    maxval: Any = None
    base: float = 10
    count: int | None = None
    vals: list[Any] = field(default_factory=list)

    def parameter(self) -> Parameter:
        """The ``ridgeline.space`` parameter that samples it as Determined does."""
        if self.type == "const":
            return Constant(self.name, self.val)
        if self.type == "int":
            return Discrete(self.name, [self.minval, self.maxval])
        if self.type == "double":
            return Continuous(self.name, [self.minval, self.maxval])
        if self.type == "log" and self.base == 1:
            return Constant(self.name, 1.0)
        if self.type == "log":
            return Continuous(self.name, _log_bounds(self), scale="log")
        return Choice(self.name, self.vals)


def _log_bounds(hp: HParam) -> list[float]:
    a = float(hp.base) ** hp.minval
    b = float(hp.base) ** hp.maxval
    return [min(a, b), max(a, b)]


def parse_hyperparameters(
    p: Problems, data: Any, grid: bool
) -> tuple[dict[str, Any], list[HParam]]:
    """Validate ``hyperparameters:``; the mapping with defaults filled in, and the flat list."""
    out: dict[str, Any] = {}
    flat: list[HParam] = []
    if data is None:
        return out, flat
    if not isinstance(data, dict):
        p.bad(
            "hyperparameters",
            "a mapping of names to values or {type: ...} definitions",
            data,
            "for example  lr: {type: log, minval: -4, maxval: -1, base: 10}",
        )
        return out, flat
    _group(p, "hyperparameters", "", data, out, flat, grid)
    return out, flat


def _group(
    p: Problems,
    path: str,
    prefix: str,
    data: dict[str, Any],
    out: dict[str, Any],
    flat: list[HParam],
    grid: bool,
) -> None:
    for key, value in data.items():
        where = join(path, key)
        if not key or "." in key:
            p.add(
                where,
                f"hyperparameter names must be non-empty and contain no '.' (got {key!r}); "
                f"write a nested group instead, e.g. optimizer: {{lr: 0.1}}",
            )
            continue
        name = prefix + key
        if isinstance(value, dict) and "type" in value:
            hp = _typed(p, where, name, value, grid)
            if hp is not None:
                flat.append(hp)
                out[key] = _written(hp, value)
        elif isinstance(value, dict) and value:
            group: dict[str, Any] = {}
            _group(p, where, name + ".", value, group, flat, grid)
            out[key] = group
        else:  # a scalar, a list, null or {}: a constant
            flat.append(HParam(name, "const", val=value))
            out[key] = value


def _written(hp: HParam, value: dict[str, Any]) -> dict[str, Any]:
    written = dict(value)
    if hp.type == "log":
        written["base"] = hp.base
    return written


def _typed(p: Problems, path: str, name: str, d: dict[str, Any], grid: bool) -> HParam | None:
    kind = d["type"]
    if kind not in TYPES:
        hint = SYNONYMS.get(str(kind).lower()) if isinstance(kind, str) else None
        hint = hint or (suggest(kind, TYPES) if isinstance(kind, str) else None)
        fix = f"did you mean {hint!r}? " if hint else ""
        p.add(
            join(path, "type"),
            f"must be one of {', '.join(TYPES)} (got {show(kind)}); {fix}"
            f"a mapping with a 'type' key is a hyperparameter definition, so a constant "
            f"mapping is written  {{type: const, val: {{...}}}}",
        )
        return None
    errors = len(p.items)
    p.unknown_keys(path, d, FIELDS[kind], f"{'an' if kind == 'int' else 'a'} {kind} hyperparameter")
    if kind == "const":
        if "val" not in d:
            p.missing(join(path, "val"), "val", "give the constant's value, e.g. val: 0.1")
            return None
        return HParam(name, "const", val=d["val"]) if len(p.items) == errors else None
    if kind == "categorical":
        return _categorical(p, path, name, d, errors)

    count = None
    if d.get("count") is not None:
        count = as_int(p, join(path, "count"), d["count"], 1)
    elif grid:
        p.add(
            join(path, "count"),
            f"grid search needs a count for every int, double and log hyperparameter "
            f"(got none for {name!r}); add count: N, the number of grid points on this axis",
        )
    bounds: list[float | None] = []
    for key in ("minval", "maxval"):
        if d.get(key) is None:
            what = "an exponent" if kind == "log" else "a number"
            p.missing(
                join(path, key), key, f"give {what}, e.g. {key}: {1 if key == 'maxval' else 0}"
            )
            bounds.append(None)
        elif kind == "int":
            bounds.append(as_int(p, join(path, key), d[key]))
        else:
            bounds.append(as_number(p, join(path, key), d[key]))
    lo, hi = bounds
    if lo is not None and hi is not None and not lo < hi:
        what = "exponent " if kind == "log" else ""
        p.add(
            path,
            f"minval must be less than maxval (got {what}minval {lo!r}, maxval {hi!r}); "
            f"swap them, or use type: const for a fixed value",
        )
    base: float = 10
    if kind == "log":
        if d.get("base") is None:  # Determined requires it too: no silent default
            p.missing(join(path, "base"), "base", "give the base of the exponents, e.g. base: 10")
        else:
            b = as_number(p, join(path, "base"), d["base"])
            if b is not None and b <= 0:
                p.bad(join(path, "base"), "a number > 0", b, "the usual base is 10")
            elif b is not None:
                base = b
    if len(p.items) != errors:
        return None
    hp = HParam(name, kind, minval=lo, maxval=hi, base=base, count=count)
    if kind == "log" and base == 1:  # 1**x: Determined's own examples use it as a fixed 1
        p.notes.append((f"{path}: base 1 makes every value 1 (1**x); it is a constant", False))
    elif kind == "log":
        try:
            a, b = _log_bounds(hp)
        except OverflowError:
            a = b = math.inf
        if not (0 < a < b < math.inf):
            p.add(
                path,
                f"base**minval .. base**maxval is not a usable range of positive floats "
                f"(got {show(base)}**{lo!r} .. {show(base)}**{hi!r}); "
                f"minval and maxval are exponents: use e.g. minval: -5, maxval: -1 for 1e-5..0.1",
            )
            return None
    try:
        hp.parameter()
    except SpaceError as exc:
        p.add(path, f"{exc}")
        return None
    return hp


def _categorical(
    p: Problems, path: str, name: str, d: dict[str, Any], errors: int
) -> HParam | None:
    vals = d.get("vals")
    if "vals" not in d or vals is None:
        p.missing(join(path, "vals"), "vals", "list the values, e.g. vals: [32, 64, 128]")
        return None
    if not isinstance(vals, list) or not vals:
        p.bad(join(path, "vals"), "a non-empty list of values", vals, "e.g. vals: [adam, sgd]")
        return None
    if len(p.items) != errors:
        return None
    hp = HParam(name, "categorical", vals=list(vals))
    try:
        hp.parameter()
    except SpaceError:
        p.add(
            join(path, "vals"),
            f"lists a value more than once (got {show(vals)}); list each value once",
        )
        return None
    return hp


def space_of(flat: list[HParam]) -> SearchSpace:
    return SearchSpace([hp.parameter() for hp in flat])


# -- grid ---------------------------------------------------------------------------------------


def _round_half_away(x: float) -> int:
    """Go's ``math.Round``: halves go away from zero (Python's ``round`` goes to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def grid_axis(hp: HParam) -> list[Any]:
    """Determined's grid values for one hyperparameter (``master/pkg/searcher/grid.go``)."""
    if hp.type == "const":
        return [hp.val]
    if hp.type == "categorical":
        return list(hp.vals)
    if hp.count is None:
        raise ConfigError(
            f"hyperparameters.{hp.name}.count: grid search needs a count for every int, double "
            f"and log hyperparameter (got none); add count: N"
        )
    count = hp.count
    lo, hi = hp.minval, hp.maxval
    if hp.type == "int":
        count = min(count, hi - lo + 1)
        if count == 1:
            return [_round_half_away((lo + hi) / 2.0)]
        return [_round_half_away(lo + (i * (hi - lo)) / (count - 1)) for i in range(count)]
    lo, hi = float(lo), float(hi)
    if count == 1:
        points = [(lo + hi) / 2.0]
    else:
        points = [lo + i * (hi - lo) / (count - 1) for i in range(count)]
    if hp.type == "log":
        return [float(hp.base) ** e for e in points]
    return points


def grid_axis_size(hp: HParam) -> int:
    """``len(grid_axis(hp))`` by arithmetic: ``count: 1000000000`` costs nothing."""
    if hp.type == "const":
        return 1
    if hp.type == "categorical":
        return len(hp.vals)
    if hp.count is None:
        return len(grid_axis(hp))  # raises the missing-count error
    if hp.type == "int":  # rounded points at least one apart: all distinct
        return min(hp.count, hp.maxval - hp.minval + 1)
    return hp.count


def grid_size(flat: list[HParam]) -> int:
    """How many points (trials) the grid has, without building it (none without axes)."""
    if not flat:
        return 0
    size = 1
    for hp in flat:
        size *= grid_axis_size(hp)
    return size


def check_grid_size(p: Problems, flat: list[HParam]) -> int:
    """Record a problem when the grid has more than ``MAX_GRID_POINTS``; its size."""
    size = grid_size(flat)
    if size > MAX_GRID_POINTS:
        axes = ", ".join(f"{hp.name}: {grid_axis_size(hp)}" for hp in flat if hp.type != "const")
        p.add(
            "hyperparameters",
            f"the grid has {size} points, more than {MAX_GRID_POINTS} trials (points per "
            f"axis: {axes}); lower the counts or list fewer values",
        )
    return size


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def check_sizes(p: Problems, flat: list[HParam]) -> None:
    """Refuse constant and categorical values, and hyperparameter sets, too large to reach a
    trial through its environment (they would fail every launch with "Argument list too
    long"); large data belongs in files whose paths are the hyperparameters."""
    fix = "put large data in a file and pass its path as the hyperparameter"
    errors = len(p.items)
    largest: list[tuple[int, str]] = []
    for hp in flat:
        where = join("hyperparameters", hp.name)
        values = [hp.val] if hp.type == "const" else hp.vals if hp.type == "categorical" else []
        biggest = 24  # a number
        for i, value in enumerate(values):
            size = _json_size(value)
            biggest = max(biggest, size)
            if size > MAX_VALUE_BYTES:
                path = f"{where}.vals[{i}]" if hp.type == "categorical" else where
                p.add(
                    path,
                    f"the value takes {size} bytes as JSON, more than {MAX_VALUE_BYTES} "
                    f"(got {show(value)}); {fix}",
                )
        largest.append((biggest + len(hp.name) + 4, hp.name))
    total = sum(size for size, _ in largest)
    if total > MAX_HPARAMS_BYTES and len(p.items) == errors:  # not again for one huge value
        top = ", ".join(f"{name} ({size} bytes)" for size, name in sorted(largest)[::-1][:3])
        p.add(
            "hyperparameters",
            f"a trial's hyperparameters take up to {total} bytes as JSON, more than "
            f"{MAX_HPARAMS_BYTES} (they reach each trial in its environment; the largest: "
            f"{top}); {fix}",
        )


def grid_of(flat: list[HParam]) -> list[dict[str, Any]]:
    """Every grid point, in the order Determined creates the trials.

    Determined builds the cartesian product over the names in sorted order (the first name
    varying slowest) and pops points from the end of that list; so the first point here is
    the product's last one. Keys are in definition order. No hyperparameters: no points (as
    Determined's grid, whose cartesian product of no axes is empty: the search runs no trial).
    """
    if not flat:
        return []
    size = grid_size(flat)
    if size > MAX_GRID_POINTS:
        raise ConfigError(
            f"hyperparameters: the grid has {size} points, more than {MAX_GRID_POINTS} trials; "
            f"lower the counts"
        )
    ordered = sorted(flat, key=lambda hp: hp.name)
    names = [hp.name for hp in ordered]
    order = [hp.name for hp in flat]
    points = []
    for values in itertools.product(*(grid_axis(hp) for hp in ordered)):
        point = dict(zip(names, values, strict=True))
        points.append({name: point[name] for name in order})
    points.reverse()
    return points


def nest_params(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1, "c": 2}`` -> ``{"a": {"b": 1}, "c": 2}``: a trial's ``hparams``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = str(key).split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"parameter {key!r} cannot nest under {'.'.join(parts[: i + 1])!r}, "
                    f"which is a value; rename one of them"
                )
            node = child
        if parts[-1] in node:
            raise ConfigError(
                f"parameter {key!r} clashes with another parameter of the same nested name; "
                f"rename one of them"
            )
        node[parts[-1]] = _Leaf(value) if isinstance(value, dict) else value
    return _unwrap(out)


class _Leaf:
    """Marks a dict that is a value (a constant), not a nested group, while nesting."""

    __slots__ = ("value",)

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value


def _unwrap(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, _Leaf):
            out[key] = value.value
        elif isinstance(value, dict):
            out[key] = _unwrap(value)
        else:
            out[key] = value
    return out
