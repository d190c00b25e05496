"""SHERPA's population-based training as a sampler: generations of trials that copy and
perturb the best of the previous generation, loading its weights (``load_from``)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler, TrialView
from ridgeline.space import Choice, Continuous, Discrete, Ordinal
from ridgeline.store.records import CANCELED, COMPLETED, FAILED, INVALID_HP, STOPPED

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["PopulationBasedTrainingSampler"]

_ENDED = (COMPLETED, FAILED, STOPPED, CANCELED, INVALID_HP)


class PopulationBasedTrainingSampler(Sampler):
    """Generation 1 is random. In later ones slot p (0-based) of the first 80 % is the p-th
    best completed member of the previous generation, unchanged; the other slots perturb a
    random member of its top ``population_size // 5``. Unlike SHERPA, a generation waits
    (``WAIT``) until the previous one has ended, instead of failing."""

    def __init__(
        self,
        num_generations: int,
        population_size: int = 20,
        parameter_range: Mapping[str, Sequence[float]] | None = None,
        perturbation_factors: Sequence[float] = (0.8, 1.2),
    ) -> None:
        if num_generations < 1 or population_size < 1:
            raise ConfigError(
                f"PopulationBasedTraining needs num_generations >= 1 and population_size >= 1 "
                f"(got {num_generations}, {population_size})"
            )
        if len(perturbation_factors) < 1 or any(f <= 0 for f in perturbation_factors):
            raise ConfigError(
                f"perturbation_factors must be positive numbers, got {perturbation_factors!r}"
            )
        self.num_generations = num_generations
        self.population_size = population_size
        self.parameter_range = {k: list(v) for k, v in (parameter_range or {}).items()}
        self.perturbation_factors = [float(f) for f in perturbation_factors]
        self.count = 0

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | str | None:
        if self.count >= self.num_generations * self.population_size:
            return None
        generation, slot = divmod(self.count, self.population_size)
        generation += 1
        extras = {"generation": generation, "load_from": "", "lineage": ""}
        if generation == 1:
            params = space.sample(rng)
        else:
            previous = [t for t in history.trials if t.params.get("generation") == generation - 1]
            if len(previous) < self.population_size or any(
                t.status not in _ENDED for t in previous
            ):
                return WAIT
            ranked = [t for t in history.ranked() if t.params.get("generation") == generation - 1]
            if not ranked:
                params = space.sample(rng)
            else:
                if slot < int(0.8 * self.population_size) and slot < len(ranked):
                    parent = ranked[slot]
                    params = {n: parent.params[n] for n in space.names}
                else:
                    parent = rng.choice(ranked[: max(1, self.population_size // 5)])
                    params = self._perturb(space, parent, rng)
                extras = {
                    "generation": generation,
                    "load_from": str(parent.params.get("save_to", "")),
                    "lineage": f"{parent.params.get('lineage', '')}{parent.number},",
                }
        self.count += 1
        return params | extras | {"save_to": str(self.count)}

    def _perturb(self, space: SearchSpace, parent: TrialView, rng: random.Random) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for p in space.parameters:
            value = parent.params[p.name]
            if isinstance(p, Continuous | Discrete):
                low, high = self.parameter_range.get(p.name, p.range)
                moved = min(max(value * rng.choice(self.perturbation_factors), low), high)
                params[p.name] = int(moved) if isinstance(p, Discrete) else moved
            elif isinstance(p, Ordinal):
                index = p.range.index(value) + rng.choice((-1, 0, 1))
                params[p.name] = p.range[min(max(index, 0), len(p.range) - 1)]
            elif isinstance(p, Choice):
                params[p.name] = rng.choice(p.range)
            else:
                params[p.name] = value
        return params

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = state["count"]
