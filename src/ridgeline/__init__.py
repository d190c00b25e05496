"""ridgeline: hyperparameter search with real trial processes, resumable and fast.

Public names load on first use, so ``import ridgeline`` stays light (no pandas, NumPy,
SQLAlchemy or YAML until something needs them). ``import ridgeline as sherpa`` runs SHERPA
scripts.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # importing typing costs ~10 ms; trial processes import this module

__version__ = "0.1.0"

#: SHERPA's names, served by the SHERPA door (``ridgeline.sherpa``).
_SHERPA_NAMES = {
    "Study",
    "optimize",
    "Client",
    "Trial",
    "TrialStatus",
    "AlgorithmState",
    "Parameter",
    "Continuous",
    "Discrete",
    "Choice",
    "Ordinal",
    "Constant",
    "RandomSearch",
    "MedianStoppingRule",
    "LocalScheduler",
    "database",
    "rng",
}
_NAMES: dict[str, str] = {
    "SearchSpace": "ridgeline.space",
    # Core-API surface
    "get_cluster_info": "ridgeline.cluster",
    "ClusterInfo": "ridgeline.cluster",
    "InvalidHP": "ridgeline.cluster",
    "LOG_FORMAT": "ridgeline.cluster",
    "Experiment": "ridgeline.experiment",
    # Analysis of a finished or running search
    "load": "ridgeline.analysis",
    "Analysis": "ridgeline.analysis",
}
_SUBMODULES = {
    "algorithms",
    "analysis",
    "core",
    "errors",
    "samplers",
    "schedulers",
    "searchers",
    "sherpa",
    "space",
    "store",
    "visualization",
}

__all__ = [
    "LOG_FORMAT",
    "Analysis",
    "AlgorithmState",
    "ClusterInfo",
    "Experiment",
    "InvalidHP",
    "Choice",
    "Client",
    "Constant",
    "Continuous",
    "Discrete",
    "LocalScheduler",
    "MedianStoppingRule",
    "Ordinal",
    "Parameter",
    "RandomSearch",
    "SearchSpace",
    "Study",
    "Trial",
    "TrialStatus",
    "algorithms",
    "analysis",
    "core",
    "database",
    "errors",
    "get_cluster_info",
    "load",
    "optimize",
    "rng",
    "samplers",
    "schedulers",
    "searchers",
    "sherpa",
    "space",
    "store",
    "visualization",
]

if TYPE_CHECKING:
    from typing import Any

    from ridgeline import (
        algorithms,
        analysis,
        core,
        errors,
        samplers,
        schedulers,
        searchers,
        space,
        store,
    )
    from ridgeline.algorithms import MedianStoppingRule, RandomSearch
    from ridgeline.analysis import Analysis, load
    from ridgeline.cluster import LOG_FORMAT, ClusterInfo, InvalidHP, get_cluster_info
    from ridgeline.experiment import Experiment
    from ridgeline.schedulers.local import LocalScheduler
    from ridgeline.sherpa.database import Client
    from ridgeline.sherpa.runner import optimize
    from ridgeline.sherpa.study import Study
    from ridgeline.space import (
        Choice,
        Constant,
        Continuous,
        Discrete,
        Ordinal,
        Parameter,
        SearchSpace,
    )
    from ridgeline.trial.records import AlgorithmState, Trial, TrialStatus


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if name in _SHERPA_NAMES:
        value = importlib.import_module("ridgeline.sherpa").resolve(name)
    elif module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"ridgeline.{name}")
    else:
        raise AttributeError(f"module 'ridgeline' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
