"""A fixed list of fully specified configurations, in order."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import History, Position, Sampler

if TYPE_CHECKING:
    from ridgeline.space import SearchSpace

__all__ = ["IterateSampler"]


def check_hp_iter(hp_iter: Any) -> list[dict[str, Any]]:
    """Validate SHERPA's ``hp_iter``: a non-empty list of dicts with the same keys."""
    if not isinstance(hp_iter, (list, tuple)):
        raise ConfigError(
            f"hp_iter must be a list of parameter dicts, got {type(hp_iter).__name__}"
        )
    if not hp_iter:
        raise ConfigError("hp_iter is empty; give at least one parameter dict")
    keys = None
    for i, hp in enumerate(hp_iter):
        if not isinstance(hp, Mapping):
            raise ConfigError(
                f"hp_iter[{i}] must be a dict of parameter values, got {type(hp).__name__}"
            )
        if keys is None:
            keys = set(hp)
        elif set(hp) != keys:
            missing = sorted(keys - set(hp))
            extra = sorted(set(hp) - keys)
            raise ConfigError(
                f"hp_iter[{i}] has different parameters from hp_iter[0] "
                f"(missing {missing}, extra {extra}); give every dict the same keys"
            )
    return [dict(hp) for hp in hp_iter]


class IterateSampler(Sampler, Position):
    """Proposes ``hp_iter`` in order, then ``None``. A whole number given for a Continuous
    parameter comes out as a float, as that parameter's own values do.
    State: the position (SHERPA's ``load``)."""

    def __init__(self, hp_iter: Sequence[Mapping[str, Any]], position: int = 0) -> None:
        self.hp_iter = check_hp_iter(hp_iter)
        self.position = position

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None:
        if self.position >= len(self.hp_iter):
            return None
        config = dict(self.hp_iter[self.position])
        self.position += 1
        for name, value in config.items():
            if (
                name in space
                and getattr(space[name], "type", None) is float
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                config[name] = float(value)
        return config
