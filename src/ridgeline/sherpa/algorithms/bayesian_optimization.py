"""SHERPA's ``sherpa.algorithms.bayesian_optimization``: model-based search on ridgeline's own
GP and TPE samplers (GPyOpt itself is not needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ridgeline.errors import ConfigError
from ridgeline.samplers.base import Sampler
from ridgeline.samplers.compose import ChainSampler, LimitSampler
from ridgeline.samplers.factory import model_sampler
from ridgeline.samplers.iterate import IterateSampler, check_hp_iter
from ridgeline.sherpa.algorithms.core import Algorithm, _check_max_trials
from ridgeline.sherpa.samplers.legacy import history_from_results
from ridgeline.space import DEFAULT_RNG, Parameter, SearchSpace
from ridgeline.values import whole_number

__all__ = ["Auto", "BayesianOptimization", "GPyOpt", "TPE"]


class Auto(Algorithm):
    """Model-based search without choosing the model: a GP for small budgets and spaces,
    TPE for large ones (see ``ridgeline.samplers.auto``)."""

    def __init__(self, max_num_trials: int | None = None) -> None:
        self.max_num_trials = _check_max_trials(max_num_trials)
        self.max_trials = self.max_num_trials

    def _native_sampler(self) -> Sampler:
        return model_sampler("auto", self.max_num_trials)

    make_sampler = Algorithm._sampler


class BayesianOptimization(Algorithm):
    """Gaussian-process Bayesian optimisation (the GP sampler, expected improvement).

    SHERPA's pre-1.0 signature. ``num_grid_points`` and ``fine_tune`` described how the old
    implementation optimised its acquisition; ridgeline always starts from a space-filling set
    of candidates and refines the best with L-BFGS, so they are validated and kept only for
    compatibility. ``log_y`` asks for a log transform of the objective (values must be > 0);
    without it the GP still applies its own robust output transform.
    """

    def __init__(
        self,
        num_grid_points: int = 2,
        max_num_trials: int | None = None,
        log_y: bool = False,
        fine_tune: bool = True,
    ) -> None:
        self.num_grid_points = whole_number("num_grid_points", num_grid_points)
        self.max_num_trials = _check_max_trials(max_num_trials)
        self.max_trials = self.max_num_trials
        self.log_y = bool(log_y)
        self.fine_tune = bool(fine_tune)

    def _native_sampler(self) -> Sampler:
        return model_sampler("gp", self.max_num_trials, log_objective=self.log_y)

    make_sampler = Algorithm._sampler


_GPYOPT_MODELS = ("GP", "GP_MCMC", "sparseGP", "warperdGP", "InputWarpedGP")
_GPYOPT_ACQUISITIONS = {"EI": "ei", "MPI": "pi", "LCB": "lcb"}


class GPyOpt(Algorithm):
    """SHERPA's ``GPyOpt`` names, run on ridgeline's own GP sampler (GPyOpt is not needed).

    ``model_type``: every GP variant maps to the GP sampler (it fits its kernel and warps its
    output itself). ``acquisition_type`` EI, MPI, LCB (``_MCMC`` variants map to the plain
    ones). ``initial_data_points`` run first; then random points until
    ``num_initial_data_points`` ('infer': number of parameters + 1) trials have results.
    ``max_concurrent`` is accepted: pending trials are always taken into account.
    ``Repeat(GPyOpt(...))`` is allowed (SHERPA's recipe for noisy objectives).
    """

    allows_repetition = True

    def __init__(
        self,
        model_type: str = "GP",
        num_initial_data_points: int | str = "infer",
        initial_data_points: Sequence[Mapping[str, Any]] | Any = (),
        acquisition_type: str = "EI",
        max_concurrent: int = 4,
        verbosity: bool = False,
        max_num_trials: int | None = None,
    ) -> None:
        if model_type not in _GPYOPT_MODELS:
            raise ConfigError(
                f"GPyOpt model_type must be one of {', '.join(_GPYOPT_MODELS)}, got "
                f"{model_type!r} (for a tree-based model use algorithms.TPE)"
            )
        base = str(acquisition_type).removesuffix("_MCMC")
        if base not in _GPYOPT_ACQUISITIONS:
            raise ConfigError(
                f"GPyOpt acquisition_type must be EI, MPI or LCB (optionally with _MCMC), "
                f"got {acquisition_type!r}"
            )
        if num_initial_data_points != "infer":
            num_initial_data_points = whole_number(
                "num_initial_data_points", num_initial_data_points, 1
            )
        if hasattr(initial_data_points, "to_dict"):  # a DataFrame, as SHERPA also accepted
            initial_data_points = initial_data_points.to_dict("records")
        self.initial_data_points = (
            check_hp_iter(initial_data_points) if len(initial_data_points) else []
        )
        self.model_type = model_type
        self.acquisition_type = acquisition_type
        self.num_initial_data_points = num_initial_data_points
        self.max_concurrent = whole_number("max_concurrent", max_concurrent, 1)
        self.verbosity = bool(verbosity)
        self.max_num_trials = _check_max_trials(max_num_trials)
        self.max_trials = self.max_num_trials

    def _native_sampler(self) -> Sampler:
        num_initial = self._num_initial()
        acquisition = _GPYOPT_ACQUISITIONS[str(self.acquisition_type).removesuffix("_MCMC")]
        inner = model_sampler("gp", None, num_initial=num_initial, acquisition=acquisition)
        if self.initial_data_points:
            inner = ChainSampler([IterateSampler(self.initial_data_points), inner])
        return LimitSampler(inner, self.max_num_trials) if self.max_num_trials else inner

    make_sampler = Algorithm._sampler

    def get_best_pred(
        self, parameters: Sequence[Parameter], results: Any, lower_is_better: bool
    ) -> dict[str, Any]:
        """The parameters the GP fitted to ``results`` predicts best (lowest posterior mean,
        highest when higher is better), or ``{}`` before ``num_initial_data_points``
        completed results (SHERPA's ``get_best_pred``)."""
        from ridgeline.samplers.gp import GPSampler  # lazy: ridgeline.samplers.gp loads numpy

        sampler = GPSampler(num_initial=self._num_initial())
        history = history_from_results(results, lower_is_better)
        best = sampler.best_predicted(SearchSpace(parameters), history, DEFAULT_RNG)
        return {} if best is None else best

    def _num_initial(self) -> int | None:
        n = self.num_initial_data_points
        return None if n == "infer" else int(n)


class TPE(Algorithm):
    """Multivariate tree-structured Parzen estimator: for large budgets and large spaces,
    where a GP's cubic cost would slow suggestions down."""

    def __init__(self, max_num_trials: int | None = None, num_initial: int | None = None) -> None:
        self.max_num_trials = _check_max_trials(max_num_trials)
        self.max_trials = self.max_num_trials
        self.num_initial = (
            None if num_initial is None else whole_number("num_initial", num_initial, 1)
        )

    def _native_sampler(self) -> Sampler:
        return model_sampler("tpe", self.max_num_trials, num_initial=self.num_initial)

    make_sampler = Algorithm._sampler
