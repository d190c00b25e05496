"""The search space as the numeric columns that model-based samplers (TPE, GP) work in.

Every parameter but a Constant is one column, in definition order:

- numeric parameters (Continuous, Discrete, Ordinal, custom ``Parameter`` subclasses) are
  coordinates in [0, 1], exactly the parameter's ``to_unit``: log scales in log space, and
  Discrete and Ordinal values bins of [0, 1] whose centres are the legal values;
- Choice parameters are columns of category indices (TPE counts categories, the GP makes
  one-hot blocks of them).

``decode`` is the parameters' ``from_unit``. ``SearchSpace.encode``/``decode`` read the same
encoding one configuration at a time, with one unit-cube coordinate per parameter.

Logarithms are taken with ``math.log``, as ``to_unit`` takes them: NumPy's vectorised ``log``
may differ in the last bit, and a coordinate must be the same number however it is computed
(the samplers compare bin centres exactly to find repeated configurations).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ridgeline.errors import ObservationError, SpaceError
from ridgeline.space import Choice, Constant, Continuous, Discrete, Ordinal, Parameter, SearchSpace

__all__ = ["CONTINUOUS", "CUSTOM", "INTEGER", "LOG_INTEGER", "Column", "Encoding"]

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Kinds of numeric columns: a continuous range, equal bins (Discrete on a linear scale and
#: Ordinal indices), bins equal in log space, a custom parameter's own mapping.
CONTINUOUS, INTEGER, LOG_INTEGER, CUSTOM = 0, 1, 2, 3


@dataclass(frozen=True)
class Column:
    """Where one parameter lives: column ``index`` of the numeric or of the Choice columns;
    ``at``: its position in the space.

    ``size``: how many values it has (0 for continuous and custom parameters). A one-value
    Choice or Ordinal still gets a column, so that the columns never depend on the ranges;
    a sampler may leave it out of its model.
    """

    param: Parameter
    at: int
    choice: bool
    index: int
    size: int


class Encoding:
    """The columns of a search space (see the module docstring), and the way back."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.numeric: list[Parameter] = []
        self.choices: list[Choice] = []
        self.columns: list[Column] = []
        kind: list[int] = []
        lowest: list[float] = []  # lowest integer value (index 0 for Ordinal) of binned columns
        offset: list[float] = []  # lowest value (bins) or log/linear offset (continuous)
        count: list[float] = []  # number of values (bins)
        span: list[float] = []  # width in linear or log units
        read: list[int] = []  # columns ``encode`` reads as numbers (Continuous, Discrete)
        logs: list[int] = []  # their positions in ``read`` that are on a log scale
        own: list[int] = []  # columns read through the parameter's ``to_unit`` (Ordinal, custom)
        for at, p in enumerate(space.parameters):
            if isinstance(p, Constant):
                continue
            if isinstance(p, Choice):
                self.columns.append(Column(p, at, True, len(self.choices), len(p.range)))
                self.choices.append(p)
                continue
            size, j = 0, len(self.numeric)
            if isinstance(p, Ordinal):
                own.append(j)
                size = len(p.range)
                kind.append(INTEGER)
                lowest.append(0.0)
                offset.append(0.0)
                count.append(float(size))
                span.append(1.0)
            elif isinstance(p, Discrete):
                read.append(j)
                low, high = int(p.range[0]), int(p.range[1])
                size = high - low + 1
                log = p.scale == "log"
                kind.append(LOG_INTEGER if log else INTEGER)
                lowest.append(float(low))
                offset.append(math.log(low) if log else float(low))
                count.append(float(size))
                span.append(math.log(high + 1) - math.log(low) if log else 1.0)
            elif isinstance(p, Continuous):
                low_f, high_f = float(p.range[0]), float(p.range[1])
                log = p.scale == "log"
                if log:
                    logs.append(len(read))
                read.append(j)
                kind.append(CONTINUOUS)
                lowest.append(0.0)
                offset.append(math.log(low_f) if log else low_f)
                count.append(0.0)
                span.append(math.log(high_f) - math.log(low_f) if log else high_f - low_f)
            else:  # a custom Parameter subclass: trust its own to_unit/from_unit
                own.append(j)
                kind.append(CUSTOM)
                lowest.append(0.0)
                offset.append(0.0)
                count.append(0.0)
                span.append(1.0)
            self.columns.append(Column(p, at, False, j, size))
            self.numeric.append(p)
        self.kind = np.array(kind, dtype=np.int64)
        self.lowest = np.array(lowest)
        self.offset = np.array(offset)
        self.count = np.array(count)
        self.span = np.array(span)
        self.binned: BoolArray = (self.kind == INTEGER) | (self.kind == LOG_INTEGER)
        self.bins = np.flatnonzero(self.binned)
        self.smooth = np.flatnonzero(~self.binned)
        self.sizes = [len(p.range) for p in self.choices]
        self.dims = len(self.numeric) + len(self.choices)
        self._read = np.array(read, dtype=np.int64)
        self._names = [self.numeric[j].name for j in read]
        self._cont = np.flatnonzero(self.kind[self._read] == CONTINUOUS)  # positions in read
        self._ints = np.flatnonzero(self.kind[self._read] != CONTINUOUS)
        self._logs = np.array(logs, dtype=np.int64)
        self._own = own

    # -- configurations to columns and back ----------------------------------------------------

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> tuple[Array, IntArray, BoolArray]:
        """Numeric ``(n, numeric)`` and Choice ``(n, choices)`` columns of ``rows``, and a mask
        of the rows that could be encoded: a value that is missing, not a finite number (for a
        numeric parameter) or not a category drops its row. Numbers outside their range are
        clipped (Discrete ones to the nearest integer in it)."""
        n = len(rows)
        raw = np.empty((n, len(self.numeric)))
        if len(self._read):
            cols = self._read
            x = _floats([[r.get(name) for name in self._names] for r in rows], len(cols))
            if len(self._logs):
                x[:, self._logs] = _log(x[:, self._logs])
            cont, ints = cols[self._cont], cols[self._ints]
            raw[:, cont] = (x[:, self._cont] - self.offset[cont]) / self.span[cont]
            low, given = self.lowest[ints], x[:, self._ints]
            k = np.minimum(np.maximum(np.round(given), low), low + self.count[ints] - 1)
            k = np.where(np.isfinite(given), k, np.nan)  # infinities are not clipped in
            for i, j in enumerate(ints.tolist()):
                raw[:, j] = self.centre(j, k[:, i])
        for j in self._own:
            p = self.numeric[j]
            raw[:, j] = [_unit(p, r.get(p.name)) for r in rows]
        ok: BoolArray = np.asarray(np.isfinite(raw).all(axis=1))
        u: Array = np.minimum(np.maximum(np.where(np.isnan(raw), 0.5, raw), 0.0), 1.0)
        c = np.zeros((n, len(self.choices)), dtype=np.int64)
        for j, q in enumerate(self.choices):
            for i, r in enumerate(rows):
                try:
                    c[i, j] = q.index(r[q.name])
                except (KeyError, ValueError):
                    ok[i] = False
        return u, c, ok

    def decode(self, u: Array, c: IntArray) -> dict[str, Any]:
        """Parameters (every one of the space, in its order) at one row's columns ``u, c``:
        each numeric parameter's ``from_unit``, the Choice values by index."""
        out: dict[str, Any] = {}
        columns = iter(self.columns)
        for p in self.space.parameters:
            if isinstance(p, Constant):
                out[p.name] = p.value
                continue
            col = next(columns)
            out[p.name] = (
                p.range[int(c[col.index])] if col.choice else p.from_unit(float(u[col.index]))
            )
        return out

    # -- the unit cube: one coordinate per parameter --------------------------------------------

    def to_cube(self, u: Array, c: IntArray) -> Array:
        """Rows of the unit cube, one coordinate per parameter of the space: numeric columns as
        they are, a category at the centre of its share of [0, 1], a Constant at 0.5."""
        cube = np.full((len(u), len(self.space)), 0.5)
        for col in self.columns:
            if col.choice:
                cube[:, col.at] = (c[:, col.index] + 0.5) / col.size
            else:
                cube[:, col.at] = u[:, col.index]
        return cube

    def from_cube(self, cube: Array) -> tuple[Array, IntArray]:
        """Columns of unit-cube rows (``to_cube``'s layout), clipped to [0, 1]: a Choice takes
        the category whose share of [0, 1] holds its coordinate."""
        cube = np.clip(cube, 0.0, 1.0)
        u = np.empty((len(cube), len(self.numeric)))
        c = np.empty((len(cube), len(self.choices)), dtype=np.int64)
        for col in self.columns:
            if col.choice:
                c[:, col.index] = np.minimum((cube[:, col.at] * col.size).astype(int), col.size - 1)
            else:
                u[:, col.index] = cube[:, col.at]
        return u, c

    def point(self, params: Mapping[str, Any]) -> list[float]:
        """The unit-cube point of one configuration; ``ObservationError`` naming the
        parameters whose values are missing or not legal."""
        u, c, ok = self.encode([params])
        if not ok[0]:
            bad = [
                p.name for p in self.space if p.name not in params or not p.contains(params[p.name])
            ]
            raise ObservationError(
                f"cannot encode parameter(s) {', '.join(map(repr, bad))}: the value is missing "
                f"or not one of the parameter's"
            )
        return [float(x) for x in self.to_cube(u, c)[0]]

    def at(self, point: Sequence[float]) -> dict[str, Any]:
        """The configuration at one unit-cube point (the inverse of ``point`` up to bins)."""
        cube = np.array([point], dtype=float)
        if not np.isfinite(cube).all():
            raise SpaceError(f"unit-cube coordinates must be finite numbers, got {list(point)!r}")
        u, c = self.from_cube(cube)
        return self.decode(u[0], c[0])

    # -- bins ------------------------------------------------------------------------------------

    def value(self, j: int, u: Array) -> Array:
        """Integer value (index for Ordinal) of binned column ``j`` at ``u``, as ``from_unit``."""
        low = self.lowest[j]
        if self.kind[j] == LOG_INTEGER:
            k = np.floor(np.exp(self.offset[j] + self.span[j] * u))
        else:
            k = low + np.floor(u * self.count[j])
        return np.asarray(np.clip(k, low, low + self.count[j] - 1))

    def centre(self, j: int, k: Array) -> Array:
        """Unit coordinate of integer value(s) ``k`` of binned column ``j``, as ``to_unit``."""
        if self.kind[j] == LOG_INTEGER:
            return np.asarray((_log(k + 0.5) - self.offset[j]) / self.span[j])
        return np.asarray((k - self.offset[j] + 0.5) / self.count[j])

    def snap(self, u: Array) -> tuple[Array, Array, Array]:
        """Points moved to their bin centres, with the bins' lower and upper edges."""
        u = u.copy()
        lower = np.zeros_like(u)
        upper = np.ones_like(u)
        for j in self.bins.tolist():
            k = self.value(j, u[:, j])
            u[:, j] = self.centre(j, k)
            if self.kind[j] == LOG_INTEGER:
                lower[:, j] = (np.log(k) - self.offset[j]) / self.span[j]
                upper[:, j] = (np.log(k + 1.0) - self.offset[j]) / self.span[j]
            else:
                lower[:, j] = (k - self.offset[j]) / self.count[j]
                upper[:, j] = (k - self.offset[j] + 1.0) / self.count[j]
        return u, np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)

    def centres(self, j: int) -> Array:
        """The unit coordinates of all legal values of binned column ``j``, in order."""
        return self.centre(j, self.lowest[j] + np.arange(int(self.count[j]), dtype=float))


def _unit(p: Parameter, value: Any) -> float:
    if value is None:
        return math.nan
    try:
        return float(p.to_unit(value))
    except (TypeError, ValueError, ArithmeticError):
        return math.nan


def _floats(rows: list[list[Any]], width: int) -> Array:
    """``rows`` as a float matrix; anything that is not a real number (a string that reads
    as one included) becomes NaN."""
    try:
        if not any(isinstance(v, (str, bytes)) for row in rows for v in row):
            return np.asarray(rows, dtype=float).reshape(len(rows), width)
    except (TypeError, ValueError, OverflowError):
        pass
    return np.array([[_float(v) for v in row] for row in rows], dtype=float).reshape(
        len(rows), width
    )


def _float(value: Any) -> float:
    if isinstance(value, (str, bytes)):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan


def _log(x: Array) -> Array:
    """``math.log`` of each value (see the module docstring); NaN where it is not positive."""
    logs = [math.log(v) if v > 0 else math.nan for v in x.ravel().tolist()]
    return np.array(logs, dtype=float).reshape(x.shape)
