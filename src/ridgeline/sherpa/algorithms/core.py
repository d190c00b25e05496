"""SHERPA's ``sherpa.algorithms.core`` names, built from ridgeline's samplers.

An ``Algorithm`` is a SHERPA-compatible description; the engine runs the ``Sampler`` that
``make_sampler()`` returns. Built-ins map to native samplers (fast, seeded, resumable). A
user subclass that only overrides ``get_suggestion`` is run through
``LegacyAlgorithmSampler``, which hands it SHERPA's results DataFrame. Built-ins still answer
``get_suggestion`` themselves, so algorithm-development code written against SHERPA runs.

pandas and numpy are imported only inside the functions that need them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import WAIT, Sampler
from ridgeline.samplers.compose import ChainSampler, LimitSampler, RepeatSampler
from ridgeline.samplers.grid import GridSampler
from ridgeline.samplers.iterate import IterateSampler, check_hp_iter
from ridgeline.samplers.random import RandomSampler
from ridgeline.sherpa.samplers.genetic import GeneticSampler, check_mutation_rate
from ridgeline.sherpa.samplers.hyperband import HyperbandSampler
from ridgeline.sherpa.samplers.legacy import (
    LegacyAlgorithmSampler,
    aggregate_results,
    history_from_results,
)
from ridgeline.sherpa.samplers.local import LocalSearchSampler
from ridgeline.sherpa.samplers.pbt import PopulationBasedTrainingSampler
from ridgeline.sherpa.stopping import MedianStoppingRule, StoppingRule
from ridgeline.space import DEFAULT_RNG, Choice, Continuous, Parameter, SearchSpace
from ridgeline.store.records import COMPLETED, STOPPED
from ridgeline.values import whole_number

if TYPE_CHECKING:
    import pandas

__all__ = [
    "Algorithm",
    "Chain",
    "Genetic",
    "GridSearch",
    "Hyperband",
    "Iterate",
    "LocalSearch",
    "MedianStoppingRule",
    "PopulationBasedTraining",
    "RandomSearch",
    "Repeat",
    "StoppingRule",
    "get_sample_results_and_params",
]


def _check_max_trials(value: Any, name: str = "max_num_trials") -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be None (no limit) or an integer >= 1, got {value!r}")
    return value


def _py(value: Any) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item()
    return value


def _best_row(results: Any, lower_is_better: bool) -> dict[str, Any]:
    """The best row of ``results`` as a dict without ``Status``; ``{}`` when none is finite."""
    if results is None or len(results) == 0 or "Objective" not in results.columns:
        return {}
    objective = results["Objective"].astype(float)
    objective = objective[objective.notna()]
    if objective.empty:
        return {}
    idx = objective.idxmin() if lower_is_better else objective.idxmax()
    row = {str(k): _py(v) for k, v in results.loc[idx].to_dict().items()}
    row.pop("Status", None)
    return row


class Algorithm:
    """Base algorithm (SHERPA's ``sherpa.algorithms.Algorithm``).

    A custom algorithm subclasses this and overrides
    ``get_suggestion(parameters, results, lower_is_better)``, returning a dict of parameter
    values, ``'DONE'``/``None`` when finished, or ``'WAIT'``.

    ``max_trials`` caps the trials the algorithm suggests (None: unlimited); the samplers of
    the built-ins enforce it themselves, the engine may use it for progress.
    ``aggregates_best`` tells the study that ``get_best_result`` reports aggregated rows.
    """

    allows_repetition: ClassVar[bool] = False
    aggregates_best: ClassVar[bool] = False
    #: Returned by ``get_suggestion`` of a built-in when its sampler is exhausted.
    _done_value: ClassVar[str | None] = None
    max_trials: int | None = None
    #: The training length (sum of iterations over trials) the algorithm plans, when known.
    length_budget: int | None = None

    # -- what the engine uses -------------------------------------------------------------

    def make_sampler(self) -> Sampler:
        """A fresh sampler running this algorithm (base: SHERPA-style ``get_suggestion``)."""
        return LegacyAlgorithmSampler(self)

    # -- SHERPA's API -----------------------------------------------------------------------

    def get_suggestion(
        self, parameters: Sequence[Parameter], results: Any = None, lower_is_better: bool = True
    ) -> dict[str, Any] | str | None:
        """A dict of parameter values, ``'DONE'``/``None`` when finished, or ``'WAIT'``.

        Built-ins answer through their sampler, drawing from SHERPA's shared generator
        (``sherpa.rng.seed(n)`` makes the answers repeatable); a custom algorithm must
        override this.
        """
        if type(self)._native_sampler is Algorithm._native_sampler:
            raise NotImplementedError(
                f"{type(self).__name__} must override get_suggestion(parameters, results, "
                f"lower_is_better) and return a dict of parameter values, 'DONE' or 'WAIT'"
            )

        state = self.__dict__
        if "_compat" not in state:
            state["_compat"] = self._native_sampler()
        sampler = state["_compat"]
        history = history_from_results(results, lower_is_better)
        pending = history.pending_params()
        out = sampler.propose(SearchSpace(parameters), history, pending, DEFAULT_RNG)
        if out is None:
            if self._waits_at_end() and history.active:
                return WAIT
            return self._done_value
        return out

    def _waits_at_end(self) -> bool:
        """True when, its suggestions spent, the algorithm answers WAIT (not DONE) while
        trials it suggested still run (``Repeat(wait_for_completion=True)``)."""
        return False

    def _native_sampler(self) -> Sampler:
        """The built-in's own sampler (built-ins override this, not ``make_sampler``)."""
        raise NotImplementedError

    def _sampler(self) -> Sampler:
        """``make_sampler`` of a built-in: its native sampler, unless a subclass redefined
        ``get_suggestion``, in which case that code must run."""
        if type(self).get_suggestion is not Algorithm.get_suggestion:
            return LegacyAlgorithmSampler(self)
        return self._native_sampler()

    def load(self, num_trials: int) -> None:
        """SHERPA's restore hook: ``num_trials`` suggestions were made before a restart."""
        del num_trials

    def get_best_result(
        self, parameters: Sequence[Parameter], results: Any, lower_is_better: bool
    ) -> dict[str, Any]:
        """The best row of ``results`` as a dict without ``Status``, or ``{}``.

        NaN objectives are never best; ties go to the earliest row (pandas ``idxmin``).
        """
        del parameters
        return _best_row(results, lower_is_better)


class RandomSearch(Algorithm):
    """Random search; ``max_num_trials`` suggestions (None: no limit), then ``DONE``."""

    allows_repetition = True
    _done_value = "DONE"

    def __init__(self, max_num_trials: int | None = None) -> None:
        self.max_num_trials = _check_max_trials(max_num_trials)
        self.max_trials = self.max_num_trials

    def _native_sampler(self) -> Sampler:
        inner = RandomSampler()
        return LimitSampler(inner, self.max_num_trials) if self.max_num_trials else inner

    make_sampler = Algorithm._sampler


class GridSearch(Algorithm):
    """Every combination of Choice/Ordinal values and ``num_grid_points`` points (endpoints
    included, log-spaced on a log scale) of each Continuous/Discrete parameter."""

    allows_repetition = True
    _done_value = "DONE"

    def __init__(self, num_grid_points: int = 2) -> None:
        self.num_grid_points = whole_number("num_grid_points", num_grid_points)

    def _native_sampler(self) -> Sampler:
        return GridSampler(self.num_grid_points)

    make_sampler = Algorithm._sampler


class Iterate(Algorithm):
    """The fully specified configurations of ``hp_iter``, in order, then ``None``."""

    allows_repetition = True

    def __init__(self, hp_iter: Sequence[Mapping[str, Any]]) -> None:
        self.hp_iter = check_hp_iter(hp_iter)
        self.count = 0
        self.max_trials = len(self.hp_iter)

    def _native_sampler(self) -> Sampler:
        return IterateSampler(self.hp_iter, position=self.count)

    make_sampler = Algorithm._sampler

    def load(self, num_trials: int) -> None:
        self.count = num_trials

    def get_parameters(self) -> list[Parameter]:
        """One ``Choice`` per key, with the distinct values in order of appearance (for the
        Study's ``parameters`` argument)."""
        parameters: list[Parameter] = []
        for name in self.hp_iter[0]:
            values: list[Any] = []
            for hp in self.hp_iter:
                v = hp[name]
                if not any(type(w) is type(v) and w == v for w in values):
                    values.append(v)
            parameters.append(Choice(name, values))
        return parameters


def is_algorithm(value: Any) -> bool:
    """An ``Algorithm``, or any object with SHERPA's ``get_suggestion`` (duck-typed, as
    SHERPA accepted)."""
    return isinstance(value, Algorithm) or callable(getattr(value, "get_suggestion", None))


def sampler_of(algorithm: Any) -> Sampler:
    """The sampler that runs ``algorithm``: its own for an ``Algorithm``, SHERPA's
    ``get_suggestion`` protocol for any other object that has it."""
    if isinstance(algorithm, Algorithm):
        return algorithm.make_sampler()
    return LegacyAlgorithmSampler(algorithm)


def _check_algorithm(value: Any, what: str) -> Any:
    if not is_algorithm(value):
        raise ConfigError(
            f"{what} must be a ridgeline.algorithms.Algorithm or an object with "
            f"get_suggestion(parameters, results, lower_is_better), got {type(value).__name__}"
        )
    return value


def trial_cap(algorithm: Any, name: str = "max_trials") -> int | None:
    """``algorithm``'s ``max_trials`` (or attribute ``name``) when it declares one as an
    integer; None for no cap, or for what a duck-typed algorithm holds there otherwise."""
    cap = getattr(algorithm, name, None)
    return cap if isinstance(cap, int) and not isinstance(cap, bool) else None


class Chain(Algorithm):
    """Runs each algorithm in turn on one results table; each must end (``max_num_trials``,
    an exhausted grid or list) for the next to start."""

    def __init__(self, algorithms: Sequence[Algorithm]) -> None:
        if not isinstance(algorithms, (list, tuple)) or not algorithms:
            raise ConfigError("Chain needs a non-empty list of algorithms")
        self.algorithms = [
            _check_algorithm(a, f"algorithms[{i}]") for i, a in enumerate(algorithms)
        ]
        caps = [trial_cap(a) for a in self.algorithms]
        self.max_trials = None if any(c is None for c in caps) else sum(caps)  # type: ignore[arg-type]

    def _native_sampler(self) -> Sampler:
        return ChainSampler([sampler_of(a) for a in self.algorithms])

    make_sampler = Algorithm._sampler


class Repeat(Algorithm):
    """Each suggestion of ``algorithm`` ``num_times`` times (e.g. to average out noise).

    ``wait_for_completion``: ``WAIT`` until the repeats of a configuration have finished
    before the next one. ``agg``: the inner algorithm sees per-configuration means
    (``aggregate_results``). The best result is the best mean over configurations with at
    least ``num_times`` completions (``aggregates_best``).
    """

    aggregates_best = True
    _done_value = "DONE"

    def __init__(
        self,
        algorithm: Any,
        num_times: int = 5,
        wait_for_completion: bool = False,
        agg: bool = False,
    ) -> None:
        _check_algorithm(algorithm, "algorithm")
        if not getattr(algorithm, "allows_repetition", False):
            raise ConfigError(
                f"Repeat cannot repeat {type(algorithm).__name__}: it does not allow repetition; "
                f"use RandomSearch, GridSearch, Iterate, LocalSearch or GPyOpt, or set "
                f"allows_repetition = True on your algorithm class"
            )
        self.algorithm = algorithm
        self.num_times = whole_number("num_times", num_times)
        self.wait_for_completion = bool(wait_for_completion)
        self.agg = bool(agg)
        inner_cap = trial_cap(algorithm)
        self.max_trials = inner_cap * num_times if inner_cap is not None else None

    def _waits_at_end(self) -> bool:
        return self.wait_for_completion

    def _native_sampler(self) -> Sampler:
        inner = sampler_of(self.algorithm)
        agg_history = self.agg
        if self.agg and isinstance(inner, LegacyAlgorithmSampler):
            inner.aggregate_min_count = self.num_times  # SHERPA's aggregated DataFrame
            agg_history = False
        return RepeatSampler(inner, self.num_times, self.wait_for_completion, agg=agg_history)

    make_sampler = Algorithm._sampler

    @staticmethod
    def aggregate_results(
        results: pandas.DataFrame, parameters: Sequence[Parameter], min_count: int = 0
    ) -> pandas.DataFrame:
        """Rows grouped by parameter values: ``Objective`` is the mean, plus
        ``ObjectiveVar``, ``ObjectiveCount``, ``ObjectiveStdErr``; groups with fewer than
        ``min_count`` rows dropped (SHERPA's helper)."""
        return aggregate_results(results, parameters, min_count)

    def get_best_result(
        self, parameters: Sequence[Parameter], results: Any, lower_is_better: bool
    ) -> dict[str, Any]:
        """Best mean over configurations with ``>= num_times`` completed repeats, or ``{}``."""
        if results is None or len(results) == 0:
            return {}
        agg = self.aggregate_results(results, parameters, min_count=self.num_times)
        agg = agg[agg["Status"] == COMPLETED]
        return _best_row(agg, lower_is_better)


class LocalSearch(Algorithm):
    """Starts from ``seed_configuration``, then tries one-parameter moves around the best
    completed configuration (numeric times ``perturbation_factors``, Ordinal +-1, Choice any
    other value), each ``repeat_trials`` times; ``None`` when no move is left."""

    allows_repetition = True

    def __init__(
        self,
        seed_configuration: Mapping[str, Any],
        perturbation_factors: Sequence[float] = (0.8, 1.2),
        repeat_trials: int = 1,
    ) -> None:
        sampler = LocalSearchSampler(seed_configuration, perturbation_factors, repeat_trials)
        self.seed_configuration = sampler.seed_configuration  # as the sampler checked them
        self.perturbation_factors = sampler.perturbation_factors
        self.repeat_trials = sampler.repeat_trials

    def _native_sampler(self) -> Sampler:
        return LocalSearchSampler(
            self.seed_configuration, self.perturbation_factors, self.repeat_trials
        )

    make_sampler = Algorithm._sampler


class Genetic(Algorithm):
    """Each parameter resampled with probability ``mutation_rate``, else inherited from one of
    two parents drawn from the best third of finished trials; ``None`` after
    ``max_num_trials``."""

    def __init__(self, mutation_rate: float = 0.1, max_num_trials: int | None = None) -> None:
        self.mutation_rate = check_mutation_rate(mutation_rate)
        self.max_num_trials = _check_max_trials(max_num_trials)
        self.max_trials = self.max_num_trials

    def _native_sampler(self) -> Sampler:
        inner = GeneticSampler(self.mutation_rate)
        return LimitSampler(inner, self.max_num_trials) if self.max_num_trials else inner

    make_sampler = Algorithm._sampler


class Hyperband(Algorithm):
    """Hyperband in SHERPA's style: brackets of synchronous successive halving run one after
    another; trials get ``resource``, ``rung``, ``bracket``, ``load_from`` and ``save_to``, and a
    promoted configuration is a new trial that loads its parent's weights (``load_from``)."""

    def __init__(self, r: float = 1, R: float = 9, eta: float = 3) -> None:
        self.r, self.R, self.eta = r, R, eta
        sampler = HyperbandSampler(r, R, eta)  # validates now
        brackets = range(sampler.s_max + 1)
        self.max_trials = sum(sum(sampler.sizes(b)) for b in brackets)
        self.length_budget = math.ceil(
            sum(
                n * sampler.resource(b, k) for b in brackets for k, n in enumerate(sampler.sizes(b))
            )
        )

    def _native_sampler(self) -> Sampler:
        return HyperbandSampler(self.r, self.R, self.eta)

    make_sampler = Algorithm._sampler


class PopulationBasedTraining(Algorithm):
    """SHERPA's PBT: generations of ``population_size`` trials with ``generation``,
    ``load_from``, ``save_to`` and ``lineage`` parameters; ``num_generations`` in all."""

    def __init__(
        self,
        num_generations: int,
        population_size: int = 20,
        parameter_range: dict[str, Sequence[float]] | None = None,
        perturbation_factors: Sequence[float] = (0.8, 1.2),
    ) -> None:
        self.num_generations = whole_number("num_generations", num_generations)
        self.population_size = whole_number("population_size", population_size)
        self.parameter_range = dict(parameter_range or {})
        self.perturbation_factors = tuple(perturbation_factors)
        PopulationBasedTrainingSampler(  # validates now
            num_generations, population_size, self.parameter_range, self.perturbation_factors
        )
        self.max_trials = self.num_generations * self.population_size

    def _native_sampler(self) -> Sampler:
        return PopulationBasedTrainingSampler(
            self.num_generations,
            self.population_size,
            self.parameter_range,
            self.perturbation_factors,
        )

    make_sampler = Algorithm._sampler


def get_sample_results_and_params() -> tuple[list[Parameter], pandas.DataFrame, bool]:
    """``(parameters, results, lower_is_better)`` to develop an algorithm against.

    Deterministic sample data in SHERPA's layout: 40 trials of ``param_a`` (Choice 1, 2, 3)
    and ``param_b`` (Continuous [0, 1]) with ``loss = param_a * param_b / iteration`` over
    iterations 1..10; trials worse than the median at iteration 2 were stopped there.
    """
    import pandas  # lazy: pandas is heavy, loaded on use

    rng = random.Random(0)
    parameters: list[Parameter] = [
        Choice("param_a", [1, 2, 3]),
        Continuous("param_b", [0, 1]),
    ]
    rows: list[list[Any]] = []
    at_two: list[float] = []
    for tid in range(1, 41):
        a, b = parameters[0].sample(rng), parameters[1].sample(rng)
        loss2 = a * b / 2
        ordered = sorted(at_two)
        stop = bool(ordered) and loss2 > ordered[len(ordered) // 2]
        at_two.append(loss2)
        last = 2 if stop else 10
        for it in range(1, last + 1):
            rows.append([tid, "INTERMEDIATE", it, a, b, a * b / it])
        rows.append([tid, STOPPED if stop else COMPLETED, last, a, b, a * b / last])
    columns = ["Trial-ID", "Status", "Iteration", "param_a", "param_b", "Objective"]
    return parameters, pandas.DataFrame(rows, columns=columns), True
