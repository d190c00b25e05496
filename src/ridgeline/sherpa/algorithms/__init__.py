"""SHERPA's ``sherpa.algorithms``: the core algorithms plus ``SuccessiveHalving`` and ``GPyOpt``
from their own submodules, as SHERPA laid them out (scripts import the submodules by name).

The submodules are light: model samplers (NumPy, SciPy) load only when a search starts.
"""

from __future__ import annotations

from ridgeline.sherpa.algorithms import bayesian_optimization, core, successive_halving
from ridgeline.sherpa.algorithms.bayesian_optimization import (
    TPE,
    Auto,
    BayesianOptimization,
    GPyOpt,
)
from ridgeline.sherpa.algorithms.core import (
    Algorithm,
    Chain,
    Genetic,
    GridSearch,
    Hyperband,
    Iterate,
    LocalSearch,
    MedianStoppingRule,
    PopulationBasedTraining,
    RandomSearch,
    Repeat,
    StoppingRule,
    get_sample_results_and_params,
)
from ridgeline.sherpa.algorithms.successive_halving import SuccessiveHalving

__all__ = [
    "TPE",
    "Algorithm",
    "Auto",
    "BayesianOptimization",
    "Chain",
    "GPyOpt",
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
    "SuccessiveHalving",
    "bayesian_optimization",
    "core",
    "get_sample_results_and_params",
    "successive_halving",
]
