"""SHERPA's ``sherpa.core`` names (``Study``, ``Trial``, ``Parameter``, ``optimize``, ...).

``ridgeline.core`` is the Core-API module; it answers these names too, through this module,
so ``sherpa.core.Study`` keeps working under ``import ridgeline as sherpa``. Loaded lazily:
nothing heavy is imported until a name is used.
"""

from __future__ import annotations

from typing import Any

from ridgeline.lazy import load_attribute
from ridgeline.sherpa import NAMES as SHERPA_NAMES
from ridgeline.sherpa import resolve

#: Each SHERPA ``sherpa.core`` name and the module that defines it: the door's own entries.
NAMES: dict[str, str] = {
    name: SHERPA_NAMES[name]
    for name in (
        "AlgorithmState",
        "Choice",
        "Continuous",
        "Discrete",
        "Ordinal",
        "Parameter",
        "Study",
        "Trial",
        "TrialStatus",
        "optimize",
        "rng",
    )
}

__all__ = sorted(NAMES)


def lookup(name: str) -> Any:
    """The SHERPA ``sherpa.core`` value called ``name``; AttributeError when it is not one."""
    if name not in NAMES:
        raise AttributeError(f"SHERPA's sherpa.core has no name {name!r}")
    return resolve(name)


def __getattr__(name: str) -> Any:
    return load_attribute(__name__, globals(), name, lookup)


def __dir__() -> list[str]:
    return __all__
