"""Every searcher name and its spec. Each module of this package lists its specs in ``SPECS``;
a new module of specs is one more entry in ``FAMILIES``."""

from __future__ import annotations

from ridgeline.config.searcher import asha, fifo, halving, model, pbt
from ridgeline.config.searcher.spec import SearcherSpec

__all__ = ["FAMILIES", "SPECS", "spec_for"]

#: The modules of specs, in the order messages list their searchers.
FAMILIES = (fifo, asha, halving, pbt, model)
#: Every searcher by name.
SPECS: dict[str, SearcherSpec] = {spec.name: spec for family in FAMILIES for spec in family.SPECS}


def spec_for(name: str) -> SearcherSpec:
    """The spec of a searcher name that config validation accepted."""
    return SPECS[name]
