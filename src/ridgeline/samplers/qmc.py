"""Quasi-random search: configurations from a scrambled Sobol' sequence.

Random search leaves gaps and clumps by chance; a low-discrepancy sequence covers the space
evenly from the first few points on (Bergstra and Bengio, 2012), at random search's cost and
with no model. The sequence is drawn in the unit cube, one coordinate a parameter in
definition order, and each coordinate maps through the parameter's ``from_unit`` (log scales,
integers and categories included). Its scrambling seed comes from the experiment's
generator, so a seed gives one sequence; the state is that seed and how many points were
drawn, so a restarted search continues the same sequence.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import History, Sampler

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["QuasiRandomSampler"]


@dataclass(eq=False, repr=False)
class SequenceState:
    """Which sequence (its scrambling seed, drawn from the experiment's generator) and how
    many of its points were drawn."""

    seed: int | None = None
    drawn: int = 0


class QuasiRandomSampler(Sampler, SequenceState):
    """Scrambled Sobol' points; never exhausted (cap it with ``LimitSampler``)."""

    def __init__(self) -> None:
        self._engine: tuple[Any, int] | None = None  # (engine at ``drawn``, dimensions)

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any]:
        if self.seed is None:
            self.seed = rng.getrandbits(63)
        params = space.parameters
        if self._engine is None or self._engine[1] != len(params):
            self._engine = (_sobol(len(params), self.seed, self.drawn), len(params))
        with warnings.catch_warnings():
            # Sobol' warns that only powers of two keep its balance; a search takes its
            # points one by one, so the warning would say nothing useful here.
            warnings.simplefilter("ignore", UserWarning)
            point = self._engine[0].random(1)[0]
        self.drawn += 1
        return {p.name: p.from_unit(float(u)) for p, u in zip(params, point, strict=False)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._engine = None  # made again at the restored position


def _sobol(dimensions: int, seed: int, drawn: int) -> Any:
    """A scrambled Sobol' engine of ``seed`` that has drawn ``drawn`` points."""
    from scipy.stats import qmc  # lazy: SciPy is heavy and only this searcher needs it

    engine = qmc.Sobol(d=max(dimensions, 1), scramble=True, seed=seed)
    if drawn:
        engine.fast_forward(drawn)
    return engine
