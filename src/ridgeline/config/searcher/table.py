"""Every searcher name and its spec, in the order messages list them."""

from __future__ import annotations

from ridgeline.config.searcher.asha import ADAPTIVE_ASHA, ASYNC_HALVING
from ridgeline.config.searcher.fifo import AUTO, BAYESIAN, GRID, RANDOM, SINGLE, TPE
from ridgeline.config.searcher.halving import HYPERBAND, SYNC_HALVING
from ridgeline.config.searcher.pbt import PBT
from ridgeline.config.searcher.spec import SearcherSpec

__all__ = ["SPECS", "spec_for"]

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
