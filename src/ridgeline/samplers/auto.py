"""The default model-based choice: a GP while it is the better tool, TPE beyond.

A GP is the most sample-efficient model for the small budgets and small spaces most tuning
runs have, but its cost grows with the cube of the observations and its quality falls in
many dimensions. TPE scales linearly and copes with large, mostly categorical spaces.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import History, Sampler
from ridgeline.space import Choice, Constant

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["AutoSampler", "model_dimensions"]

#: Observations after which a GP gives way to TPE (suggestion time stays well under a second).
GP_MAX_OBSERVATIONS = 200
#: Model dimensions (one per number, one per category of a Choice) above which TPE is used.
GP_MAX_DIMENSIONS = 24


def model_dimensions(space: SearchSpace) -> int:
    """Features a GP would model: one per numeric parameter, one per value of a Choice."""
    return sum(
        len(p.range) if isinstance(p, Choice) else 1
        for p in space.parameters
        if not isinstance(p, Constant)
    )


class AutoSampler(Sampler):
    """GP for spaces of at most ``GP_MAX_DIMENSIONS`` model dimensions while fewer than
    ``GP_MAX_OBSERVATIONS`` trials have results; TPE otherwise. Both see the same history, so
    the switch loses nothing. ``gp`` and ``tpe`` are the two samplers (already wrapped for the
    coordinator when it runs them)."""

    nested = ("gp", "tpe")

    def __init__(self, gp: Sampler, tpe: Sampler) -> None:
        self.gp, self.tpe = gp, tpe

    def choose(self, space: SearchSpace, history: History) -> Sampler:
        if model_dimensions(space) > GP_MAX_DIMENSIONS:
            return self.tpe
        results = sum(1 for t in history.trials if t.objective is not None)
        return self.gp if results < GP_MAX_OBSERVATIONS else self.tpe

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        return self.choose(space, history).propose(space, history, pending, rng)
