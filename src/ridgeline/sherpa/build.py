"""Turns SHERPA-style arguments (parameter list, Algorithm, stopping rule) into engine parts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ridgeline.errors import ConfigError
from ridgeline.searchers.base import Searcher
from ridgeline.searchers.fifo import FIFOSearcher
from ridgeline.searchers.stopping import StoppingRuleSearcher
from ridgeline.sherpa.algorithms.core import is_algorithm, sampler_of, trial_cap
from ridgeline.space import Parameter, SearchSpace

if TYPE_CHECKING:
    from ridgeline.sherpa.algorithms import Algorithm
    from ridgeline.sherpa.stopping import StoppingRule


def build_space(parameters: Sequence[Parameter] | SearchSpace) -> SearchSpace:
    if isinstance(parameters, SearchSpace):
        return parameters
    if not isinstance(parameters, list | tuple):
        raise ConfigError(
            f"parameters must be a list of ridgeline parameters (Continuous, Discrete, Choice, "
            f"Ordinal), got {type(parameters).__name__}"
        )
    return SearchSpace(list(parameters))


def build_searcher(algorithm: Algorithm, stopping_rule: StoppingRule | None = None) -> Searcher:
    """A SHERPA algorithm becomes a FIFO searcher over its sampler; a rule wraps it. Any
    object with SHERPA's ``get_suggestion(parameters, results, lower_is_better)`` is an
    algorithm too (run on SHERPA's results table)."""
    if not is_algorithm(algorithm):
        raise ConfigError(
            f"algorithm must be a ridgeline.algorithms.Algorithm (for example "
            f"RandomSearch(max_num_trials=10)) or an object with get_suggestion(parameters, "
            f"results, lower_is_better), got {type(algorithm).__name__}"
        )
    searcher: Searcher = FIFOSearcher(sampler_of(algorithm), trial_cap(algorithm))
    if stopping_rule is not None:
        if not hasattr(stopping_rule, "should_stop"):
            raise ConfigError(
                f"stopping_rule must be a ridgeline.algorithms.StoppingRule such as "
                f"MedianStoppingRule(), got {type(stopping_rule).__name__}"
            )

        searcher = StoppingRuleSearcher(searcher, stopping_rule)
    return searcher


def describe(parameters: SearchSpace, algorithm: Any, lower_is_better: bool) -> dict[str, Any]:
    """What the store keeps of a SHERPA-style search, to check a resume matches it."""
    return {
        "front_door": "sherpa",
        "parameters": [type(p).__name__ + ":" + p.name for p in parameters.parameters],
        "algorithm": type(algorithm).__name__,
        "lower_is_better": lower_is_better,
    }
