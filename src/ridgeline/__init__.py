"""ridgeline: hyperparameter search with real trial processes, resumable and fast.

Public names load on first use, so ``import ridgeline`` stays light (no pandas, NumPy,
SQLAlchemy or YAML until something needs them). ``import ridgeline as sherpa`` runs SHERPA
scripts.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # importing typing costs ~10 ms; trial processes import this module

__version__ = "0.1.0"

_NAMES: dict[str, str] = {
    # SHERPA surface
    "Study": "ridgeline.study",
    "optimize": "ridgeline.runner",
    "Client": "ridgeline.client",
    "Trial": "ridgeline.trial.records",
    "TrialStatus": "ridgeline.trial.records",
    "AlgorithmState": "ridgeline.trial.records",
    "Parameter": "ridgeline.space",
    "Continuous": "ridgeline.space",
    "Discrete": "ridgeline.space",
    "Choice": "ridgeline.space",
    "Ordinal": "ridgeline.space",
    "Constant": "ridgeline.space",
    "SearchSpace": "ridgeline.space",
    "RandomSearch": "ridgeline.algorithms",  # pre-1.0 SHERPA top-level names
    "MedianStoppingRule": "ridgeline.algorithms",
    "LocalScheduler": "ridgeline.schedulers.local",
    # Core-API surface
    "get_cluster_info": "ridgeline.cluster",
    "ClusterInfo": "ridgeline.cluster",
    "InvalidHP": "ridgeline.cluster",
    "LOG_FORMAT": "ridgeline.cluster",
    "Experiment": "ridgeline.experiment",
}
_SUBMODULES = {
    "algorithms",
    "core",
    "errors",
    "samplers",
    "schedulers",
    "searchers",
    "space",
    "store",
}

__all__ = [
    "LOG_FORMAT",
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
    "core",
    "errors",
    "get_cluster_info",
    "optimize",
    "samplers",
    "schedulers",
    "searchers",
    "space",
    "store",
]

if TYPE_CHECKING:
    from typing import Any

    from ridgeline import algorithms, core, errors, samplers, schedulers, searchers, space, store
    from ridgeline.algorithms import MedianStoppingRule, RandomSearch
    from ridgeline.client import Client
    from ridgeline.cluster import LOG_FORMAT, ClusterInfo, InvalidHP, get_cluster_info
    from ridgeline.experiment import Experiment
    from ridgeline.runner import optimize
    from ridgeline.schedulers.local import LocalScheduler
    from ridgeline.space import (
        Choice,
        Constant,
        Continuous,
        Discrete,
        Ordinal,
        Parameter,
        SearchSpace,
    )
    from ridgeline.study import Study
    from ridgeline.trial.records import AlgorithmState, Trial, TrialStatus


def __getattr__(name: str) -> Any:
    module = _NAMES.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"ridgeline.{name}")
    else:
        raise AttributeError(f"module 'ridgeline' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
