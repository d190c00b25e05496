"""Grid search over the cartesian product of every parameter's grid points."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import History, Position, Sampler
from ridgeline.values import whole_number

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["GridSampler"]


class GridSampler(Sampler, Position):
    """Walks the grid in SHERPA's order (names sorted, last name fastest), then ``None``.

    Continuous/Discrete parameters get ``num_grid_points`` points including both endpoints
    (log-spaced on a log scale); Choice/Ordinal contribute all their values. The grid is
    indexed in mixed radix rather than materialised, so huge grids cost nothing up front.
    State: the position, so a restarted search resumes where it stopped.
    """

    def __init__(self, num_grid_points: int = 2) -> None:
        self.num_grid_points = whole_number("num_grid_points", num_grid_points)
        self._space: SearchSpace | None = None
        self._axes: list[tuple[str, list[Any]]] = []
        self._order: list[str] = []
        self._size = 0

    def _bind(self, space: SearchSpace) -> None:
        if self._space is space:
            return
        self._space = space
        self._axes = space.grid_axes(self.num_grid_points)
        self._order = space.names
        size = 1
        for _, values in self._axes:
            size *= len(values)
        self._size = size

    def check(self, space: SearchSpace) -> None:
        """Refuses a grid over ``MAX_GRID_POINTS`` (sized by arithmetic, nothing built)."""
        self._bind(space)

    def grid_size(self, space: SearchSpace) -> int:
        """Number of configurations in the grid of ``space``."""
        self._bind(space)
        return self._size

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None:
        self._bind(space)
        if self.position >= self._size:
            return None
        rest = self.position
        config: dict[str, Any] = {}
        for name, values in reversed(self._axes):
            rest, i = divmod(rest, len(values))
            config[name] = values[i]
        self.position += 1
        return {name: config[name] for name in self._order}
