"""SHERPA's ``sherpa.core`` names (``Study``, ``Trial``, ``Parameter``, ``optimize``, ...).

``ridgeline.core`` is the Core-API module; it answers these names too, through this module,
so ``sherpa.core.Study`` keeps working under ``import ridgeline as sherpa``. Loaded lazily:
nothing heavy is imported until a name is used.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each SHERPA ``sherpa.core`` name and the module that defines it.
NAMES: dict[str, str] = {
    "Study": "ridgeline.sherpa.study",
    "optimize": "ridgeline.sherpa.runner",
    "Trial": "ridgeline.trial.records",
    "TrialStatus": "ridgeline.trial.records",
    "AlgorithmState": "ridgeline.trial.records",
    "Parameter": "ridgeline.space",
    "Continuous": "ridgeline.space",
    "Discrete": "ridgeline.space",
    "Choice": "ridgeline.space",
    "Ordinal": "ridgeline.space",
    "rng": "ridgeline.sherpa.seeding",
}

__all__ = sorted(NAMES)


def lookup(name: str) -> Any:
    """The SHERPA ``sherpa.core`` value called ``name``; AttributeError when it is not one."""
    module = NAMES.get(name)
    if module is None:
        raise AttributeError(f"SHERPA's sherpa.core has no name {name!r}")
    return getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> Any:
    try:
        value = lookup(name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
