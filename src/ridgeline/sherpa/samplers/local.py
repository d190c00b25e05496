"""Local search: one-parameter moves around the best completed configuration (SHERPA)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, History, Sampler
from ridgeline.samplers.compose import Repeating
from ridgeline.space import Choice, Continuous, Discrete, Ordinal
from ridgeline.statedict import init_fields
from ridgeline.values import whole_number

if TYPE_CHECKING:
    from ridgeline.space import Parameter, SearchSpace

__all__ = ["LocalSearchSampler"]


def check_local_args(
    seed_configuration: Any, perturbation_factors: Any, repeat_trials: Any
) -> tuple[dict[str, Any], tuple[float, float], int]:
    """Validate LocalSearch's arguments (shared with ``algorithms.LocalSearch``)."""
    if not isinstance(seed_configuration, Mapping):
        raise ConfigError(
            f"seed_configuration must be a dict of parameter values, "
            f"got {type(seed_configuration).__name__}"
        )
    if (
        not isinstance(perturbation_factors, (list, tuple))
        or len(perturbation_factors) != 2
        or not all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and f > 0
            for f in perturbation_factors
        )
    ):
        raise ConfigError(
            f"perturbation_factors must be two positive numbers (decrease, increase), "
            f"got {perturbation_factors!r}"
        )
    whole_number("repeat_trials", repeat_trials)
    factors = (float(perturbation_factors[0]), float(perturbation_factors[1]))
    return dict(seed_configuration), factors, repeat_trials


@dataclass(eq=False, repr=False)
class LocalSearchState(Repeating):
    """The centre (the seed until a trial beats it), and every configuration proposed."""

    seed_configuration: dict[str, Any] = field(default_factory=dict)
    started: bool = False
    submitted: list[dict[str, Any]] = field(default_factory=list)


class LocalSearchSampler(Sampler, LocalSearchState):
    """SHERPA's ``LocalSearch``, with its randomness taken from the experiment generator.

    1. The seed configuration first (``repeat_trials`` times).
    2. Then, around the best ``COMPLETED`` trial (the seed while none has completed), the
       parameters in random order: numeric ones times the decrease/increase factor (in random
       order; Discrete truncated; clipped to the range), Ordinal one step down/up, Choice any
       other value (in random order). The first move not yet proposed or run is returned,
       ``repeat_trials`` times.
    3. When no move is left: ``WAIT`` while trials are still running (one of them may become
       the new best and open new moves; SHERPA gave up here), else ``None``.

    State (JSON): the current centre, every configuration proposed, and the repeats owed.
    """

    def __init__(
        self,
        seed_configuration: Mapping[str, Any],
        perturbation_factors: Sequence[float] = (0.8, 1.2),
        repeat_trials: int = 1,
    ) -> None:
        seed, factors, repeats = check_local_args(
            seed_configuration, perturbation_factors, repeat_trials
        )
        init_fields(self)
        self.seed_configuration = seed
        self.perturbation_factors = factors
        self.repeat_trials = repeats

    def propose(
        self,
        space: SearchSpace,
        history: History,
        pending: Sequence[Mapping[str, Any]],
        rng: random.Random,
    ) -> dict[str, Any] | None | str:
        again = self.repeat()
        if again is not None:
            return again
        if not self.started:
            missing = [n for n in space.names if n not in self.seed_configuration]
            if missing:
                raise ConfigError(
                    f"LocalSearch seed_configuration lacks parameter(s) {missing}; "
                    f"give a value for every parameter of the search space"
                )
            self.started = True
            return self._issue(self.seed_configuration)
        best = history.ranked()
        if best:
            self.seed_configuration = {n: best[0].params[n] for n in space.names}
        move = self._next_move(space, history, rng)
        if move is not None:
            return self._issue(move)
        if history.active or pending:
            return WAIT
        return None

    def _issue(self, config: dict[str, Any]) -> dict[str, Any]:
        self.submitted.append(dict(config))
        self.start_repeats(config, self.repeat_trials)
        return dict(config)

    def _seen(self, config: dict[str, Any], space: SearchSpace, history: History) -> bool:
        if config == self.seed_configuration or config in self.submitted:
            return True
        names = space.names
        return any(
            all(n in t.params and t.params[n] == config[n] for n in names) for t in history.trials
        )

    def _next_move(
        self, space: SearchSpace, history: History, rng: random.Random
    ) -> dict[str, Any] | None:
        centre = self.seed_configuration
        params = space.parameters
        for param in rng.sample(params, len(params)):
            for candidate in self._moves(param, centre, rng):
                if not self._seen(candidate, space, history):
                    return candidate
        return None

    def _moves(
        self, param: Parameter, centre: dict[str, Any], rng: random.Random
    ) -> list[dict[str, Any]]:
        name = param.name
        value = centre[name]
        out = []
        if isinstance(param, Choice):
            for v in rng.sample(param.range, len(param.range)):
                if v != value:
                    out.append({**centre, name: v})
        elif isinstance(param, Ordinal):
            try:
                i = param.index(value)
            except ValueError:
                return []
            for increase in rng.sample([True, False], 2):
                j = min(max(i + (1 if increase else -1), 0), len(param.range) - 1)
                out.append({**centre, name: param.range[j]})
        elif isinstance(param, (Continuous, Discrete)):
            lo, hi = param.range
            for increase in rng.sample([True, False], 2):
                v = value * self.perturbation_factors[1 if increase else 0]
                if isinstance(param, Discrete):
                    v = int(v)
                v = min(max(v, lo), hi)
                out.append({**centre, name: v})
        return out
