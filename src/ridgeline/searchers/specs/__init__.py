"""One spec per searcher name (Determined's ``searcher.name``): config validation, building,
preview-search and budgets look the name up here. A new searcher is a ``SearcherSpec`` in a
module of this package and one entry in ``SPECS``.

Importing this package loads no searcher and no sampler: specs import them when they build.
"""

from __future__ import annotations

from ridgeline.searchers.specs.asha import ADAPTIVE_ASHA, ASYNC_HALVING
from ridgeline.searchers.specs.base import SearcherSpec
from ridgeline.searchers.specs.fifo import AUTO, BAYESIAN, GRID, RANDOM, SINGLE, TPE
from ridgeline.searchers.specs.halving import HYPERBAND, SYNC_HALVING
from ridgeline.searchers.specs.pbt import PBT

__all__ = ["SPECS", "SearcherSpec", "spec_for"]

#: Every searcher by name, in the order messages list them.
SPECS: dict[str, SearcherSpec] = {
    spec.name: spec
    for spec in (
        SINGLE,
        RANDOM,
        GRID,
        ADAPTIVE_ASHA,
        ASYNC_HALVING,
        SYNC_HALVING,
        HYPERBAND,
        PBT,
        BAYESIAN,
        TPE,
        AUTO,
    )
}


def spec_for(name: str) -> SearcherSpec:
    """The spec of a searcher name that config validation accepted."""
    return SPECS[name]
