"""Search spaces: parameters, sampling, grids and the unit-cube encoding.

Names and attributes follow SHERPA 1.0.6 (``name``, ``range``, ``scale``, ``type``) so scripts and
custom algorithms written for SHERPA keep working. Differences on purpose:

- ``Discrete`` includes its upper bound on both scales (SHERPA never yields it, REFERENCE 8.1);
- every random draw comes from the ``random.Random`` passed in (SHERPA used one global
  generator and could not be seeded);
- definitions are validated at construction, with a ``SpaceError`` that names the parameter.

This module imports only the standard library: ``import ridgeline`` must stay light.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import numbers
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ridgeline.errors import ObservationError, SpaceError

__all__ = [
    "EXTRA_KEYS",
    "Choice",
    "Constant",
    "Continuous",
    "Discrete",
    "Ordinal",
    "Parameter",
    "SearchSpace",
    "bound_rng",
]

#: Keys that SHERPA's algorithms add to a trial's parameters; they are not search dimensions.
EXTRA_KEYS: frozenset[str] = frozenset(
    {"resource", "rung", "bracket", "load_from", "save_to", "generation", "lineage"}
)

_SCALES = ("linear", "log")
#: The most points a grid may have: each is a trial process, and grids are built in memory.
MAX_GRID_POINTS = 100_000
_TYPES = ("continuous", "discrete", "choice", "ordinal")


#: What argument-less ``Parameter.sample()`` draws from outside ``bound_rng`` (SHERPA's
#: module-level generator; ``sherpa.rng.seed(n)`` seeds it).
DEFAULT_RNG = random.Random()


class _RngSlot:
    """Generator used by ``Parameter.sample()`` called without one (SHERPA-style code)."""

    rng: random.Random = DEFAULT_RNG


@contextlib.contextmanager
def bound_rng(rng: random.Random) -> Iterator[None]:
    """Make argument-less ``Parameter.sample()`` draw from ``rng`` inside the block.

    SHERPA algorithms call ``p.sample()`` with no generator; the legacy adapter binds the
    experiment's generator here so such code is still reproducible from the experiment seed.
    """
    previous = _RngSlot.rng
    _RngSlot.rng = rng
    try:
        yield
    finally:
        _RngSlot.rng = previous


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _as_int(x: Any) -> int | None:
    """``x`` as an int when it is integral (int, numpy int, or a float like 3.0), else None."""
    if isinstance(x, bool):
        return None
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real) and math.isfinite(x) and float(x).is_integer():
        return int(float(x))
    return None


def _hashable_key(value: Any) -> Any:
    """A type-aware lookup key so that ``1``, ``1.0`` and ``True`` stay distinct values."""
    try:
        hash(value)
    except TypeError:
        return None
    return (type(value), value)


class Parameter:
    """A named hyperparameter with a range (SHERPA's ``sherpa.Parameter``).

    Subclasses implement ``sample``, ``to_unit``/``from_unit``, ``grid_points`` and
    ``contains``. ``Parameter.grid`` is SHERPA's static helper, hence the instance method's
    different name.
    """

    scale: str = "linear"
    type: type = object

    def __init__(self, name: str, range: Sequence[Any]) -> None:
        if not isinstance(name, str) or not name:
            raise SpaceError(
                f"parameter name {name!r} is invalid: give each parameter a non-empty string name"
            )
        if isinstance(range, (str, bytes)) or not isinstance(range, (list, tuple)):
            raise SpaceError(
                f"parameter {name!r}: range must be a list or tuple, got {type(range).__name__} "
                f"{range!r}"
            )
        self.name = name
        self.range: list[Any] = list(range)

    # -- SHERPA's static constructors ------------------------------------------------------

    @staticmethod
    def from_dict(config: Mapping[str, Any]) -> Parameter:
        """Build a parameter from ``{'name', 'type', 'range', 'scale'?}`` (SHERPA format).

        ``type`` is one of continuous, discrete, choice, ordinal (SHERPA lacks ordinal).
        """
        if not isinstance(config, Mapping):
            raise SpaceError(
                f"a parameter definition must be a dict with 'name', 'type' and 'range', "
                f"got {type(config).__name__} {config!r}"
            )
        name = config.get("name")
        kind = config.get("type")
        if "range" not in config:
            raise SpaceError(f"parameter {name!r}: the definition has no 'range'; add one")
        rng_ = config["range"]
        scale = config.get("scale", "linear")
        kind_l = kind.lower() if isinstance(kind, str) else kind
        if kind_l == "continuous":
            return Continuous(name, rng_, scale=scale)  # type: ignore[arg-type]
        if kind_l == "discrete":
            return Discrete(name, rng_, scale=scale)  # type: ignore[arg-type]
        if kind_l == "choice":
            return Choice(name, rng_)  # type: ignore[arg-type]
        if kind_l == "ordinal":
            return Ordinal(name, rng_)  # type: ignore[arg-type]
        raise SpaceError(
            f"parameter {name!r}: unknown type {kind!r}; use one of {', '.join(_TYPES)}"
        )

    @staticmethod
    def grid(parameter_grid: Mapping[str, Sequence[Any]]) -> list[Choice]:
        """One ``Choice`` per key of ``{'name': [values...]}``, for ``GridSearch`` (SHERPA)."""
        if not isinstance(parameter_grid, Mapping):
            raise SpaceError(
                f"Parameter.grid expects a dict of name -> list of values, "
                f"got {type(parameter_grid).__name__}"
            )
        return [Choice(name, values) for name, values in parameter_grid.items()]

    # -- interface ---------------------------------------------------------------------------

    def sample(self, rng: random.Random | None = None) -> Any:
        """A random value; ``rng`` defaults to the one bound by ``bound_rng`` (SHERPA calls)."""
        raise NotImplementedError(f"{type(self).__name__} cannot be sampled")

    def to_unit(self, value: Any) -> float:
        """Position of ``value`` in [0, 1] (log scale in log space, categories by index)."""
        raise NotImplementedError

    def from_unit(self, u: float) -> Any:
        """The value at unit position ``u`` (clipped to [0, 1])."""
        raise NotImplementedError

    def grid_points(self, num_points: int) -> list[Any]:
        """Grid values as SHERPA's ``GridSearch`` builds them."""
        raise NotImplementedError

    def grid_count(self, num_points: int) -> int:
        """How many values ``grid_points(num_points)`` has (at most, for a log-scale
        ``Discrete``), by arithmetic: a huge ``num_points`` costs nothing."""
        _check_points(self.name, num_points)
        return len(self.range)

    def contains(self, value: Any) -> bool:
        """True when ``value`` is a legal value of this parameter."""
        raise NotImplementedError

    def __repr__(self) -> str:
        extra = f", scale={self.scale!r}" if self.scale != "linear" else ""
        return f"{type(self).__name__}({self.name!r}, {self.range!r}{extra})"


def _check_points(name: str, num_points: int) -> int:
    n = _as_int(num_points)
    if n is None or n < 1:
        raise SpaceError(
            f"parameter {name!r}: num_points must be an integer >= 1, got {num_points!r}"
        )
    return n


def _clip01(u: float) -> float:
    return 0.0 if u < 0.0 else 1.0 if u > 1.0 else u


class _Bounded(Parameter):
    """Shared validation of ``[low, high]`` numeric ranges with a linear or log scale."""

    def __init__(self, name: str, range: Sequence[Any], scale: str = "linear") -> None:
        super().__init__(name, range)
        if len(self.range) != 2 or not all(_is_number(x) for x in self.range):
            raise SpaceError(
                f"parameter {name!r}: range must be two numbers [low, high], got {self.range!r}"
            )
        if not all(math.isfinite(x) for x in self.range):
            raise SpaceError(f"parameter {name!r}: range bounds must be finite, got {self.range!r}")
        low, high = self.range
        if not low < high:
            raise SpaceError(
                f"parameter {name!r}: low must be below high, got {self.range!r}; "
                f"use Constant for a fixed value"
            )
        if scale not in _SCALES:
            raise SpaceError(f"parameter {name!r}: unknown scale {scale!r}; use 'linear' or 'log'")
        if scale == "log" and low <= 0:
            raise SpaceError(
                f"parameter {name!r}: a log scale needs bounds > 0, got {self.range!r}; "
                f"shift the range or use scale='linear'"
            )
        self.scale = scale


class Continuous(_Bounded):
    """A float in ``[low, high]``, uniform or log-uniform (``scale='log'``)."""

    type = float

    def __init__(self, name: str, range: Sequence[Any], scale: str = "linear") -> None:
        super().__init__(name, range, scale)
        lo, hi = float(self.range[0]), float(self.range[1])
        self._lo, self._hi = lo, hi
        self._log = scale == "log"
        if self._log:
            self._a, self._span = math.log(lo), math.log(hi) - math.log(lo)
        else:
            self._a, self._span = lo, hi - lo

    def sample(self, rng: random.Random | None = None) -> float:
        r = (rng if rng is not None else _RngSlot.rng).random()
        if self._log:
            v = math.exp(self._a + self._span * r)
            return self._lo if v < self._lo else self._hi if v > self._hi else v
        return self._a + self._span * r

    def to_unit(self, value: Any) -> float:
        if self._log:
            return (math.log(value) - self._a) / self._span
        return (float(value) - self._a) / self._span

    def from_unit(self, u: float) -> float:
        if u <= 0.0:
            return self._lo
        if u >= 1.0:
            return self._hi
        v = math.exp(self._a + self._span * u) if self._log else self._a + self._span * u
        return self._lo if v < self._lo else self._hi if v > self._hi else v

    def grid_count(self, num_points: int) -> int:
        return _check_points(self.name, num_points)

    def grid_points(self, num_points: int) -> list[Any]:
        n = _check_points(self.name, num_points)
        if n == 1:
            return [self._lo]
        if self._log:
            # steps in log10, so that points on powers of ten come out exact (1e-3, not
            # 0.0010000000000000002)
            a, b = math.log10(self._lo), math.log10(self._hi)
            pts = [10.0 ** (a + (b - a) * i / (n - 1)) for i in range(n)]
        else:
            pts = [self.from_unit(i / (n - 1)) for i in range(n)]
        pts[0], pts[-1] = self._lo, self._hi
        return [min(max(p, self._lo), self._hi) for p in pts]

    def contains(self, value: Any) -> bool:
        return _is_number(value) and self._lo <= value <= self._hi


class Discrete(_Bounded):
    """An integer in ``[low, high]``, **both bounds included**, uniform or log-uniform.

    The log scale draws ``floor(x)`` with ``x`` log-uniform on ``[low, high + 1)``, so every
    integer is reachable, none falls outside, and the mass of ``k`` is ``log((k+1)/k)``.
    """

    type = int

    def __init__(self, name: str, range: Sequence[Any], scale: str = "linear") -> None:
        super().__init__(name, range, scale)
        ints = [_as_int(x) for x in self.range]
        if ints[0] is None or ints[1] is None:
            raise SpaceError(
                f"parameter {name!r}: Discrete bounds must be integers, got {self.range!r}; "
                f"use Continuous for fractional values"
            )
        lo, hi = ints[0], ints[1]
        self.range = [lo, hi]
        self._lo, self._hi, self._n = lo, hi, hi - lo + 1
        self._log = scale == "log"
        if self._log:
            self._a = math.log(lo)
            self._span = math.log(hi + 1) - self._a

    def _clamp(self, k: int) -> int:
        return self._lo if k < self._lo else self._hi if k > self._hi else k

    def sample(self, rng: random.Random | None = None) -> int:
        rng = rng if rng is not None else _RngSlot.rng
        if self._log:
            return self._clamp(int(math.exp(self._a + self._span * rng.random())))
        return self._lo + rng.randrange(self._n)

    def to_unit(self, value: Any) -> float:
        if self._log:
            return (math.log(value + 0.5) - self._a) / self._span
        return (value - self._lo + 0.5) / self._n

    def from_unit(self, u: float) -> int:
        u = _clip01(u)
        if self._log:
            return self._clamp(int(math.exp(self._a + self._span * u)))
        return self._clamp(self._lo + int(u * self._n))

    def grid_count(self, num_points: int) -> int:
        return min(_check_points(self.name, num_points), self._hi - self._lo + 1)

    def grid_points(self, num_points: int) -> list[Any]:
        n = _check_points(self.name, num_points)
        if n == 1:
            return [self._lo]
        out: list[int] = []
        for i in range(n):
            t = i / (n - 1)
            if self._log:
                x = math.exp(math.log(self._lo) + t * (math.log(self._hi) - math.log(self._lo)))
            else:
                x = self._lo + t * (self._hi - self._lo)
            k = self._clamp(int(math.floor(x + 0.5)))
            if k not in out:
                out.append(k)
        return out

    def contains(self, value: Any) -> bool:
        k = _as_int(value)
        return k is not None and self._lo <= k <= self._hi


class _Categorical(Parameter):
    """Shared code of ``Choice`` and ``Ordinal``: a non-empty list of distinct values."""

    def __init__(self, name: str, range: Sequence[Any]) -> None:
        super().__init__(name, range)
        if not self.range:
            raise SpaceError(f"parameter {name!r}: range is empty; list at least one value")
        self._index: dict[Any, int] = {}
        for i, v in enumerate(self.range):
            key = _hashable_key(v)
            if key is not None:
                if key in self._index:
                    raise SpaceError(
                        f"parameter {name!r}: value {v!r} appears more than once in {self.range!r};"
                        f" list each value once"
                    )
                self._index[key] = i
            else:
                for w in self.range[:i]:
                    if type(w) is type(v) and w == v:
                        raise SpaceError(
                            f"parameter {name!r}: value {v!r} appears more than once; "
                            f"list each value once"
                        )
        self.type = type(self.range[0])
        self._n = len(self.range)

    def index(self, value: Any) -> int:
        """Position of ``value`` in ``range``; ``ValueError`` when absent."""
        key = _hashable_key(value)
        if key is not None:
            i = self._index.get(key)
            if i is not None:
                return i
        for i, w in enumerate(self.range):  # numpy scalars, 1.0 for 1, unhashable values
            try:
                if w == value:
                    return i
            except Exception:  # odd __eq__ (arrays): treat as not equal
                continue
        raise ValueError(f"{value!r} is not a value of parameter {self.name!r}")

    def sample(self, rng: random.Random | None = None) -> Any:
        return self.range[(rng if rng is not None else _RngSlot.rng).randrange(self._n)]

    def to_unit(self, value: Any) -> float:
        return (self.index(value) + 0.5) / self._n

    def from_unit(self, u: float) -> Any:
        return self.range[min(int(_clip01(u) * self._n), self._n - 1)]

    def grid_points(self, num_points: int) -> list[Any]:
        _check_points(self.name, num_points)
        return list(self.range)

    def contains(self, value: Any) -> bool:
        try:
            self.index(value)
        except ValueError:
            return False
        return True


class Choice(_Categorical):
    """An unordered categorical parameter."""


class Ordinal(_Categorical):
    """An ordered categorical parameter; neighbours (index +-1) matter to local moves."""


class Constant(Parameter):
    """A fixed value: part of every trial's parameters, never searched."""

    def __init__(self, name: str, value: Any) -> None:
        super().__init__(name, [value])
        self.value = value
        self.type = type(value)

    def sample(self, rng: random.Random | None = None) -> Any:
        return self.value

    def to_unit(self, value: Any) -> float:
        return 0.5

    def from_unit(self, u: float) -> Any:
        return self.value

    def grid_points(self, num_points: int) -> list[Any]:
        _check_points(self.name, num_points)
        return [self.value]

    def grid_count(self, num_points: int) -> int:
        _check_points(self.name, num_points)
        return 1

    def contains(self, value: Any) -> bool:
        try:
            return bool(value == self.value)
        except Exception:
            return False

    def __repr__(self) -> str:
        return f"Constant({self.name!r}, {self.value!r})"


class SearchSpace:
    """An ordered set of uniquely named parameters.

    Order is the definition order for ``sample``, ``encode`` and ``decode``; ``grid`` follows
    SHERPA's ``GridSearch`` order (names sorted, the last name varying fastest).
    """

    def __init__(self, parameters: Iterable[Parameter] | SearchSpace) -> None:
        if isinstance(parameters, SearchSpace):
            parameters = parameters.parameters
        if isinstance(parameters, (str, bytes, Mapping)) or not isinstance(parameters, Iterable):
            raise SpaceError(
                f"a search space needs a list of parameters, got {type(parameters).__name__}"
            )
        params = list(parameters)
        by_name: dict[str, Parameter] = {}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise SpaceError(
                    f"item {i} of the parameter list is {type(p).__name__} {p!r}, not a "
                    f"Parameter; build it with Continuous/Discrete/Choice/Ordinal/Constant or "
                    f"Parameter.from_dict"
                )
            if p.name in by_name:
                raise SpaceError(
                    f"parameter name {p.name!r} is used twice; give each parameter its own name"
                )
            by_name[p.name] = p
        self._params = params
        self._by_name = by_name

    @property
    def parameters(self) -> list[Parameter]:
        return list(self._params)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self._params]

    def __len__(self) -> int:
        return len(self._params)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(self._params)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Parameter:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no parameter named {name!r}; known: {self.names}") from None

    def __repr__(self) -> str:
        return f"SearchSpace({self._params!r})"

    def sample(self, rng: random.Random) -> dict[str, Any]:
        """One random configuration, in definition order."""
        return {p.name: p.sample(rng) for p in self._params}

    def grid_size(self, num_points: int) -> int:
        """How many configurations ``grid(num_points)`` has, by arithmetic (an upper bound
        when a log-scale ``Discrete`` rounds points together)."""
        size = 1
        for p in self._params:
            size *= p.grid_count(num_points)
        return size

    def grid_axes(self, num_points: int) -> list[tuple[str, list[Any]]]:
        """``(name, values)`` per parameter in grid order (names sorted). A grid of more than
        ``MAX_GRID_POINTS`` is refused before any axis is built."""
        size = self.grid_size(num_points)
        if size > MAX_GRID_POINTS:
            axes = " x ".join(f"{p.name}: {p.grid_count(num_points)}" for p in self._params)
            raise SpaceError(
                f"the grid has {size} points ({axes} with num_grid_points={num_points}), more "
                f"than {MAX_GRID_POINTS} trials; lower num_grid_points or list fewer values"
            )
        return sorted(((p.name, p.grid_points(num_points)) for p in self._params), key=_first)

    def grid(self, num_points: int = 2) -> list[dict[str, Any]]:
        """Every grid configuration (cartesian product), deterministic SHERPA order."""
        axes = self.grid_axes(num_points)
        names = [a[0] for a in axes]
        order = self.names
        out = []
        for values in itertools.product(*(a[1] for a in axes)):
            d = dict(zip(names, values, strict=True))
            out.append({n: d[n] for n in order})
        return out

    def encode(self, params: Mapping[str, Any]) -> list[float]:
        """Unit-cube coordinates of ``params``, one per parameter in definition order: the
        encoding that the model-based samplers search in (``samplers.encoding``), with a
        category at the centre of its share of [0, 1] and a Constant at 0.5. Loads NumPy."""
        from ridgeline.samplers.encoding import Encoding

        return Encoding(self).point(params)

    def decode(self, unit: Sequence[float]) -> dict[str, Any]:
        """Parameters at unit-cube point ``unit`` (inverse of ``encode`` up to the grid)."""
        if len(unit) != len(self._params):
            raise SpaceError(
                f"decode needs {len(self._params)} coordinates (one per parameter), got {len(unit)}"
            )
        from ridgeline.samplers.encoding import Encoding

        return Encoding(self).at(unit)

    def contains(self, params: Mapping[str, Any]) -> bool:
        """True when every parameter is present with a legal value and no unknown key is set."""
        for key in params:
            if key not in self._by_name and key not in EXTRA_KEYS:
                return False
        for p in self._params:
            if p.name not in params or not p.contains(params[p.name]):
                return False
        return True

    def check_params(self, params: Mapping[str, Any]) -> None:
        """Raise ``ObservationError`` naming unknown or missing parameter names.

        SHERPA's algorithm-added keys (``EXTRA_KEYS``) are allowed extras.
        """
        if not isinstance(params, Mapping):
            raise ObservationError(
                f"parameters must be a dict of name -> value, got {type(params).__name__}"
            )
        unknown = [k for k in params if k not in self._by_name and k not in EXTRA_KEYS]
        missing = [n for n in self._by_name if n not in params]
        problems = []
        if unknown:
            problems.append(
                f"unknown parameter name(s) {', '.join(map(repr, unknown))} "
                f"(known: {', '.join(map(repr, self.names))})"
            )
        if missing:
            problems.append(f"missing parameter(s) {', '.join(map(repr, missing))}")
        if problems:
            raise ObservationError(
                "; ".join(problems) + "; pass exactly the search space's parameters"
            )


def _first(item: tuple[str, Any]) -> str:
    return item[0]
