"""Random search: every parameter drawn independently from its distribution."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.samplers.base import History, Sampler

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["RandomSampler"]


class RandomSampler(Sampler):
    """Samples the whole space at random; never exhausted (cap it with ``LimitSampler``).

    Stateless: all randomness comes from ``rng``, so a restored generator continues the
    sequence. It is on the hot path of every trial, so it does nothing but sample.
    """

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any]:
        return space.sample(rng)
