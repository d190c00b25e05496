"""The SHERPA door: SHERPA 1.0.6's names on ridgeline's engine, behind one wall.

Everything SHERPA-specific lives here: ``algorithms`` (with SHERPA's submodules), ``Study``,
``optimize``, the trial-side ``Client`` (``database``), SHERPA's ``core`` names, the shared
``rng``, stopping rules and the samplers only SHERPA algorithms use. ``ridgeline`` re-exports
these names, so ``import ridgeline as sherpa`` runs SHERPA scripts. Names load on first use.
"""

from __future__ import annotations

import importlib

from ridgeline.lazy import load_attribute

TYPE_CHECKING = False

#: Each SHERPA name and the module that defines it.
NAMES: dict[str, str] = {
    "Study": "ridgeline.sherpa.study",
    "optimize": "ridgeline.sherpa.runner",
    "Client": "ridgeline.sherpa.database",
    "rng": "ridgeline.sherpa.seeding",
    "Trial": "ridgeline.trial.records",
    "TrialStatus": "ridgeline.trial.records",
    "AlgorithmState": "ridgeline.trial.records",
    "Parameter": "ridgeline.space",
    "Continuous": "ridgeline.space",
    "Discrete": "ridgeline.space",
    "Choice": "ridgeline.space",
    "Ordinal": "ridgeline.space",
    "Constant": "ridgeline.space",
    "RandomSearch": "ridgeline.sherpa.algorithms",  # pre-1.0 SHERPA top-level names
    "MedianStoppingRule": "ridgeline.sherpa.algorithms",
    "LocalScheduler": "ridgeline.schedulers",
}
#: SHERPA's submodules and the module each name stands for.
_MODULES: dict[str, str] = {
    "algorithms": "ridgeline.sherpa.algorithms",
    "core": "ridgeline.sherpa.core",
    "database": "ridgeline.sherpa.database",
    "schedulers": "ridgeline.schedulers",
}

__all__ = [
    "AlgorithmState",
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
    "Study",
    "Trial",
    "TrialStatus",
    "algorithms",
    "core",
    "database",
    "optimize",
    "rng",
    "schedulers",
]

if TYPE_CHECKING:
    from typing import Any

    from ridgeline import schedulers
    from ridgeline.schedulers import LocalScheduler
    from ridgeline.sherpa import algorithms, core, database
    from ridgeline.sherpa.algorithms import MedianStoppingRule, RandomSearch
    from ridgeline.sherpa.database import Client
    from ridgeline.sherpa.runner import optimize
    from ridgeline.sherpa.seeding import rng
    from ridgeline.sherpa.study import Study
    from ridgeline.space import (
        Choice,
        Constant,
        Continuous,
        Discrete,
        Ordinal,
        Parameter,
    )
    from ridgeline.trial.records import AlgorithmState, Trial, TrialStatus


def resolve(name: str) -> Any:
    """The SHERPA name ``name`` (a class, function, object or submodule)."""
    module = NAMES.get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    if name in _MODULES:
        return importlib.import_module(_MODULES[name])
    raise AttributeError(name)


def __getattr__(name: str) -> Any:
    return load_attribute(__name__, globals(), name, resolve)


def __dir__() -> list[str]:
    return __all__
