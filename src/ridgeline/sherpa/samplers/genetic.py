"""Genetic search: mix two good parents, mutate some genes (SHERPA's ``Genetic``)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import History, Sampler
from ridgeline.store.records import COMPLETED, FAILED, STOPPED

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["GeneticSampler"]

#: Finished statuses whose trials form the population (SHERPA: every non-INTERMEDIATE row).
_FINISHED = (COMPLETED, FAILED, STOPPED)


def check_mutation_rate(mutation_rate: Any) -> float:
    if (
        isinstance(mutation_rate, bool)
        or not isinstance(mutation_rate, (int, float))
        or not 0.0 <= mutation_rate <= 1.0
    ):
        raise ConfigError(f"mutation_rate must be a number in [0, 1], got {mutation_rate!r}")
    return float(mutation_rate)


class GeneticSampler(Sampler):
    """Each parameter: resampled with probability ``mutation_rate``, else inherited from one of
    two parents (even odds).

    A parent is a random member of the best third of the finished trials with an objective,
    or a fresh random configuration while fewer than ``min_candidates`` (10, as SHERPA) have
    finished. Stateless apart from the generator; never exhausted (cap it with
    ``LimitSampler``).
    """

    def __init__(self, mutation_rate: float = 0.1, min_candidates: int = 10) -> None:
        self.mutation_rate = check_mutation_rate(mutation_rate)
        self.min_candidates = min_candidates

    def _parent(
        self, space: SearchSpace, population: list[Any], rng: random.Random
    ) -> dict[str, Any]:
        if len(population) < self.min_candidates:
            return space.sample(rng)
        params = population[rng.randrange(len(population) // 3)].params
        return {p.name: params[p.name] if p.name in params else p.sample(rng) for p in space}

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any]:
        population = history.ranked(_FINISHED)
        first = self._parent(space, population, rng)
        second = self._parent(space, population, rng)
        rate = self.mutation_rate
        half = rate + (1.0 - rate) / 2.0
        out: dict[str, Any] = {}
        for p in space:
            r = rng.random()
            if r < rate:
                out[p.name] = p.sample(rng)
            elif r < half:
                out[p.name] = first[p.name]
            else:
                out[p.name] = second[p.name]
        return out
