"""``sherpa.rng``: SHERPA's one module-level generator, so ``sherpa.rng.seed(1234)`` makes what
follows repeatable.

Seeding it seeds the generator that argument-less ``Parameter.sample()`` and the built-in
algorithms' own ``get_suggestion`` draw from, and the seed of the next ``Study`` or
``optimize`` run that is given none. NumPy methods (``rng.randn()``, ``rng.uniform(...)``)
come from a NumPy ``RandomState`` made on first use and seeded alongside.
"""

from __future__ import annotations

from typing import Any

from ridgeline.engine.engine import new_seed
from ridgeline.space import DEFAULT_RNG

__all__ = ["SharedRandom", "next_seed", "rng"]


class SharedRandom:
    """SHERPA's ``rng`` (a NumPy ``RandomState`` there): ``seed(n)`` plus NumPy's methods."""

    def __init__(self) -> None:
        self._seed: int | None = None
        self._seeded = False
        self._numpy: Any = None

    @property
    def seeded(self) -> bool:
        """True once ``seed`` was called with a value (not None)."""
        return self._seeded

    def seed(self, seed: int | None = None) -> None:
        """Seed every draw that follows; None reseeds from the operating system."""
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"rng.seed takes an integer or None, got {seed!r}")
        self._seed, self._seeded = seed, seed is not None
        DEFAULT_RNG.seed(seed)
        if self._numpy is not None:
            self._numpy.seed(None if seed is None else seed % (1 << 32))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._numpy is None:
            import numpy  # lazy: numpy is heavy, loaded on use

            seed = None if self._seed is None else self._seed % (1 << 32)
            self._numpy = numpy.random.RandomState(seed)
        return getattr(self._numpy, name)


rng = SharedRandom()


def next_seed() -> int:
    """The seed of a run given none: drawn from ``rng`` once it was seeded (so seeding
    repeats the run), else fresh from the operating system."""
    return DEFAULT_RNG.getrandbits(63) if rng.seeded else new_seed()
